package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/store"
)

// cliShares answers the runner's share requests through `cove provider
// share`, as a provider would on its own machine: request file in, share
// file out.
type cliShares struct {
	tmp     string
	dataDir string
	dirs    map[string]string
}

func (c cliShares) Share(ctx context.Context, provider string, req []byte) ([]byte, error) {
	reqPath := filepath.Join(c.tmp, provider+".req")
	outPath := filepath.Join(c.tmp, provider+".share")
	if err := os.WriteFile(reqPath, req, 0o644); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"provider", "share", "-dir", c.dirs[provider], "-request", reqPath, "-data-dir", c.dataDir, "-out", outPath}, &out); err != nil {
		return nil, err
	}
	return os.ReadFile(outPath)
}

// TestProviderCommands runs the HE set-up through the commands — setup,
// keygen by three providers, combine, encrypt (CSV with a null), attach in
// two segments by two providers —
// then an HE job whose shares come from `cove provider share`, and a replay
// of a share request, which is refused.
func TestProviderCommands(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "sandbox")
	os.MkdirAll(dataDir, 0o755)
	st, err := store.Open(ctx, filepath.Join(dataDir, "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// The provider's table (with the sensitive column) and the sandbox's public one.
	var full, public strings.Builder
	full.WriteString("station,year,pm\n")
	public.WriteString("station,year\n")
	exact := map[string]float64{}
	for i := range 200 {
		year := fmt.Sprint(2013 + i%2)
		pm := fmt.Sprint(10 + i%50)
		if i == 7 {
			pm = "NA"
		} else {
			exact[year] += float64(10 + i%50)
		}
		fmt.Fprintf(&full, "s%d,%s,%s\n", i%3, year, pm)
		fmt.Fprintf(&public, "s%d,%s\n", i%3, year)
	}
	table := filepath.Join(tmp, "provider-table.csv")
	os.WriteFile(table, []byte(full.String()), 0o644)
	os.WriteFile(filepath.Join(dataDir, "public.csv"), []byte(public.String()), 0o644)
	d := policy.Dataset{Name: "air-he", Location: "public.csv", Sharing: policy.Open, Level: 1,
		Columns: []policy.Column{{Name: "station", Type: "utf8"}, {Name: "year", Type: "int64"}, {Name: "PM2.5", Type: "float64", Role: policy.Sensitive}}}
	if err := st.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, policy.Grant{ID: "g-he", Operator: "acme", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismHE},
		Pricing: policy.PublicWelfare, Purposes: []string{"research"}, Datasets: []string{"air-he"},
		Columns: map[string][]string{"air-he": {policy.AllColumns}}, EpsilonCap: map[string]float64{"air-he": 5},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"provider"}, args...), &out); err != nil {
			t.Fatalf("cove provider %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	setup := filepath.Join(tmp, "setup.json")
	t.Log(strings.TrimSpace(cli("setup", "-data-dir", dataDir, "-name", "air", "-providers", "east,west,health", "-out", setup)))
	dirs := map[string]string{}
	var shares []string
	for _, p := range []string{"east", "west", "health"} {
		dirs[p] = filepath.Join(tmp, "provider-"+p)
		share := filepath.Join(tmp, p+".keygen")
		cli("keygen", "-setup", setup, "-dir", dirs[p], "-id", p, "-out", share)
		shares = append(shares, p+"="+share)
	}
	keys := filepath.Join(tmp, "air.keys")
	t.Log(strings.TrimSpace(cli("combine", "-setup", setup, "-shares", strings.Join(shares, ","), "-data-dir", dataDir, "-out", keys)))
	col := filepath.Join(tmp, "pm.he")
	var out bytes.Buffer
	if err := run(ctx, []string{"provider", "encrypt", "-keys", keys, "-in", table, "-column", "pm", "-bounds", "0,100", "-out", col}, &out); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("a null column encrypted without a null policy: %v", err)
	}
	// Two segments: east encrypts and attaches rows [0, 120), west rows
	// [120, 200) (the table follows the public one's rows); the job fuses them.
	t.Log(strings.TrimSpace(cli("encrypt", "-keys", keys, "-in", table, "-column", "pm", "-bounds", "0,100", "-nulls", "zero", "-rows", "0:120", "-out", col)))
	t.Log(strings.TrimSpace(cli("attach", "-data-dir", dataDir, "-keys", keys, "-file", col, "-dataset", "air-he", "-column", "PM2.5", "-provider", "east", "-nulls", "zero", "-rows", "0:120")))
	colW := filepath.Join(tmp, "pm-west.he")
	cli("encrypt", "-keys", keys, "-in", table, "-column", "pm", "-bounds", "0,100", "-nulls", "zero", "-rows", "120:200", "-out", colW)
	if err := run(ctx, []string{"provider", "attach", "-data-dir", dataDir, "-keys", keys, "-file", colW, "-dataset", "air-he", "-column", "PM2.5",
		"-provider", "west", "-nulls", "zero", "-rows", "100:"}, &out); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("an overlapping segment: %v", err)
	}
	if err := run(ctx, []string{"provider", "attach", "-data-dir", dataDir, "-keys", keys, "-file", colW, "-dataset", "air-he", "-column", "PM2.5",
		"-provider", "west", "-nulls", "zero", "-rows", "120:150"}, &out); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("a range that is not the column's rows: %v", err)
	}
	t.Log(strings.TrimSpace(cli("attach", "-data-dir", dataDir, "-keys", keys, "-file", colW, "-dataset", "air-he", "-column", "PM2.5", "-provider", "west", "-nulls", "zero", "-rows", "120:")))

	// The operator's key, an HE job, and shares through the command.
	pk, err := readKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	op, err := he.NewOperator(pk.Params())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := jobs.RegisterRecipient(ctx, st, "acme", op.Key())
	if err != nil {
		t.Fatal(err)
	}
	module, err := guestbuild.Build(ctx, filepath.Join("..", "..", "jobs", "testdata", "heweights"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`version: 1
name: pm-by-year
grant: g-he
purpose: research
dataset: air-he
mechanism: he
mode: unit
recipient: %s
columns: [station, year]
privacy_unit: {per_row: true}
outputs:
  - {name: pm25_sum, column: PM2.5, aggregate: sum, epsilon: 1, group_by: [{column: year, values: ["2013", "2014"]}]}
  - {name: pm25_n, column: PM2.5, aggregate: weighted_sum, epsilon: 1, group_by: [{column: year, values: ["2013", "2014"]}]}
`, rec)
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	src := cliShares{tmp: tmp, dataDir: dataDir, dirs: dirs}
	r := jobs.NewRunner(st, eng, jobs.NewConfig().WithDataDir(dataDir).WithShareSource(src))
	rel, err := r.Run(ctx, jobs.Submission{ID: "he-cli", Operator: "acme", Manifest: []byte(manifest), Module: module})
	if err != nil {
		t.Fatal(err)
	}
	opened, err := jobs.OpenHE(op, rel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opened.Outputs {
		tol := o.HE.Noise.Interval(1e-9)
		for _, row := range o.Rows {
			if y := row.Key[0]; math.Abs(row.Value-exact[y]) > tol {
				t.Errorf("%s %s: released %v, exact %v, beyond ±%v", o.Name, y, row.Value, exact[y], tol)
			}
		}
	}
	// The operator opens the same release with the command, from its key
	// file: the values are those jobs.OpenHE gives.
	keyFile, relFile := filepath.Join(tmp, "op.key"), filepath.Join(tmp, "release.json")
	if err := client.WriteOperatorKey(keyFile, op); err != nil {
		t.Fatal(err)
	}
	rb, _ := json.Marshal(rel)
	if err := os.WriteFile(relFile, rb, 0o644); err != nil {
		t.Fatal(err)
	}
	var opOut bytes.Buffer
	if err := run(ctx, []string{"operator", "open", "-key", keyFile, "-release", relFile, "-json"}, &opOut); err != nil {
		t.Fatal(err)
	}
	var cliOpened client.Release
	if err := json.Unmarshal(opOut.Bytes(), &cliOpened); err != nil {
		t.Fatal(err)
	}
	for i, o := range opened.Outputs {
		for g, row := range o.Rows {
			if got := cliOpened.Outputs[i].Rows[g].Value; got != row.Value {
				t.Errorf("cove operator open: %s %v = %v, want %v", o.Name, row.Key, got, row.Value)
			}
		}
	}
	os.Chmod(keyFile, 0o644)
	if err := run(ctx, []string{"operator", "open", "-key", keyFile, "-release", relFile}, &opOut); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("a key file readable by others: %v", err)
	}
	// The last request, replayed through the command, is refused.
	if err := run(ctx, []string{"provider", "share", "-dir", dirs["health"], "-request", filepath.Join(tmp, "health.req"), "-data-dir", dataDir,
		"-out", filepath.Join(tmp, "again.share")}, &out); !errors.Is(err, cove.ErrPrivacy) {
		t.Fatalf("replayed share request: %v", err)
	}
}
