package jobs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// The HE test world: three key holders (two air-quality station groups and
// a health department), a sandbox holding the public columns of a slice of
// the Beijing air-quality table and the PM2.5 column encrypted by the east
// station group, and an operator with its own key.
var heProviders = []string{"env-east", "env-west", "health"}

type heWorld struct {
	st       *store.Store
	dataDir  string
	provDirs map[string]string
	operator *he.Operator
	recHash  string
	eng      wasm.Runtime
	module   []byte
	// exact per year (2013..2017) of the clamped PM2.5 sum and of the rows
	// with a value: what the releases estimate.
	exactSum, exactN []float64
}

const heManifest = `version: 1
name: pm25-by-year
grant: g-he
purpose: research
dataset: air-he
mechanism: he
recipient: %s
columns: [station, year]
privacy_unit: {per_row: true}
outputs:
  - name: pm25_sum
    column: PM2.5
    aggregate: sum
    epsilon: 0.5
    group_by: [{column: year, values: ["2013", "2014", "2015", "2016", "2017"]}]
  - name: pm25_n
    column: PM2.5.present
    aggregate: count
    epsilon: 0.5
    group_by: [{column: year, values: ["2013", "2014", "2015", "2016", "2017"]}]
`

// airSchema is the providers' tables' schema: station, year, PM2.5.
var airSchema = arrow.NewSchema([]arrow.Field{{Name: "station", Type: arrow.BinaryTypes.String}, {Name: "year", Type: arrow.PrimitiveTypes.Int64},
	{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)

// airRows reads the air-quality table's station, year and PM2.5 and hands
// each row to into, which returns the builder (of airSchema) the row goes
// to, or nil to skip it; station counts the stations seen so far (from 1).
// It returns the exact clamped PM2.5 sums and value counts per year over
// the rows kept.
func airRows(t *testing.T, into func(station string, stations int) *array.RecordBuilder) (sum, n []float64) {
	t.Helper()
	b, err := demodata.Open(demodata.AirQuality)
	if err != nil {
		t.Fatal(err)
	}
	r, err := connectors.OpenBytes("air.parquet", b, connectors.Options{Columns: []string{"station", "year", "PM2.5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	sum, n = make([]float64, 5), make([]float64, 5)
	last, stations := "", 0
	for r.Next() {
		rec := r.RecordBatch()
		st, yr, pm := rec.Column(0).(*array.String), rec.Column(1).(*array.Int64), rec.Column(2).(*array.Float64)
		for i := range int(rec.NumRows()) {
			if s := st.Value(i); stations == 0 || s != last {
				last, stations = s, stations+1
			}
			fb := into(st.Value(i), stations)
			if fb == nil {
				continue
			}
			fb.Field(0).(*array.StringBuilder).Append(st.Value(i))
			fb.Field(1).(*array.Int64Builder).Append(yr.Value(i))
			if pm.IsNull(i) {
				fb.Field(2).AppendNull()
				continue
			}
			fb.Field(2).(*array.Float64Builder).Append(pm.Value(i))
			sum[yr.Value(i)-2013] += min(max(pm.Value(i), 0), 1000)
			n[yr.Value(i)-2013]++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return sum, n
}

// airSlice writes the provider's table (two stations, with PM2.5) and the
// sandbox's public table (the same rows, without PM2.5), and returns the
// exact aggregates per year.
func airSlice(t *testing.T, provTable, publicTable string) (sum, n []float64) {
	t.Helper()
	fb := array.NewRecordBuilder(memory.DefaultAllocator, airSchema)
	defer fb.Release()
	sum, n = airRows(t, func(station string, _ int) *array.RecordBuilder {
		if station != "Aotizhongxin" && station != "Changping" {
			return nil
		}
		return fb
	})
	rec := fb.NewRecordBatch()
	defer rec.Release()
	writeParquet(t, provTable, rec)
	pub := array.NewRecordBatch(arrow.NewSchema(airSchema.Fields()[:2], nil), rec.Columns()[:2], rec.NumRows())
	defer pub.Release()
	writeParquet(t, publicTable, pub)
	return sum, n
}

func writeParquet(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// newHEWorld runs the set-up as the commands would: the sandbox registers
// the setup (seed bound to the ledger), each provider makes its keygen share
// in its own directory, the sandbox combines and registers the keys, the
// east group encrypts PM2.5 (nulls as 0, with the presence indicator) and
// the sandbox attaches both columns; the operator registers its key.
func newHEWorld(t *testing.T) *heWorld {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	w := &heWorld{dataDir: filepath.Join(root, "sandbox"), provDirs: map[string]string{}}
	if err := os.MkdirAll(w.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.st, err = store.Open(ctx, filepath.Join(w.dataDir, "cove.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.st.Close() })

	provTable := filepath.Join(root, "env-east-table.parquet")
	w.exactSum, w.exactN = airSlice(t, provTable, filepath.Join(w.dataDir, "air-public.parquet"))
	d := policy.Dataset{Name: "air-he", Location: "air-public.parquet", Provider: "env-east", Sharing: policy.Conditional, Level: 2,
		Columns: []policy.Column{{Name: "station", Type: "utf8"}, {Name: "year", Type: "int64"},
			{Name: "PM2.5", Type: "float64", Role: policy.Sensitive}, {Name: "PM2.5.present", Type: "float64", Role: policy.Sensitive}}}
	if err := w.st.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := w.st.CreateGrant(ctx, policy.Grant{ID: "g-he", Operator: "acme", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismHE},
		Pricing: policy.PublicWelfare, Purposes: []string{"research"}, Datasets: []string{"air-he"},
		Columns:    map[string][]string{"air-he": {"station", "year", "PM2.5", "PM2.5.present"}},
		EpsilonCap: map[string]float64{"air-he": 10}, ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	params, _ := json.Marshal(he.DefaultCKKS())
	su, err := w.st.RegisterHESetup(ctx, store.HESetup{Name: "air-fusion", Params: params, Providers: heProviders})
	if err != nil {
		t.Fatal(err)
	}
	shares := map[string][]byte{}
	for _, p := range heProviders {
		w.provDirs[p] = filepath.Join(root, "provider-"+p)
		if shares[p], err = ProviderKeygen(w.provDirs[p], p, su); err != nil {
			t.Fatal(err)
		}
		again, err := ProviderKeygen(w.provDirs[p], "", su)
		if err != nil || string(again) != string(shares[p]) {
			t.Fatalf("keygen asked again did not return the stored share: %v", err)
		}
		if fi, err := os.Stat(filepath.Join(w.provDirs[p], secretFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret share file: %v, %v", fi.Mode(), err)
		}
	}
	keys, sums, err := CombineKeys(su, shares)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := RegisterKeys(ctx, w.st, su, keys, sums, filepath.Join(w.dataDir, "air-fusion.keys"), "air-fusion.keys")
	if err != nil {
		t.Fatal(err)
	}

	// The east group encrypts on its side with the public keys only.
	col, present, err := EncryptColumn(keys, provTable, "PM2.5", EncryptOptions{Lo: 0, Hi: 1000, Nulls: NullsZero})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := EncryptColumn(keys, provTable, "PM2.5", EncryptOptions{Lo: 0, Hi: 1000}); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("nulls refused by default: %v", err)
	}
	for name, c := range map[string]*he.Column{"PM2.5": col, "PM2.5.present": present} {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		file := name + ".he"
		if err := AttachColumn(ctx, w.st, keys, b, filepath.Join(w.dataDir, file), file,
			store.HEColumn{Dataset: "air-he", Column: name, Provider: "env-east", Nulls: NullsZero}); err != nil {
			t.Fatal(err)
		}
	}
	if reg, err := w.st.HEColumnOf(ctx, "air-he", "PM2.5"); err != nil || reg.Keys != fp {
		t.Fatalf("column registration: %+v %v", reg, err)
	}

	if w.operator, err = he.NewOperator(keys.Params()); err != nil {
		t.Fatal(err)
	}
	if w.recHash, err = RegisterRecipient(ctx, w.st, "acme", w.operator.Key()); err != nil {
		t.Fatal(err)
	}
	wcfg := wasm.NewConfig().WithMemoryLimitPages(512).WithCompilationCacheDir(filepath.Join(os.TempDir(), "cove-test-wasm-cache"))
	if w.eng, err = wasm.NewEngine(ctx, wcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.eng.Close(ctx) })
	w.module = guestModule(t, "heweights")
	return w
}

func (w *heWorld) runner(src ShareSource) *Runner {
	return NewRunner(w.st, w.eng, NewConfig().WithDeadline(time.Minute).WithDataDir(w.dataDir).WithShareSource(src))
}

// submit submits an HE job and has the authority approve it (conditional data).
func (w *heWorld) submit(t *testing.T, r *Runner, id string) {
	t.Helper()
	ctx := context.Background()
	job, err := r.Submit(ctx, Submission{ID: id, Operator: "acme", Manifest: []byte(fmt.Sprintf(heManifest, w.recHash))})
	if err != nil {
		t.Fatal(err)
	}
	if job.State != store.StateInReview {
		t.Fatalf("job %s is %s, want in review (conditional data)", id, job.State)
	}
	if err := r.Review(ctx, id, true, "authority", "HE release of yearly PM2.5"); err != nil {
		t.Fatal(err)
	}
}

func (w *heWorld) dirSource() DirShareSource { return DirShareSource{Store: w.st, Dirs: w.provDirs} }

// recordingSource keeps every request it forwards and can fail on a provider.
type recordingSource struct {
	inner    ShareSource
	failOn   string // this provider's share is withheld
	mu       sync.Mutex
	requests map[string][][]byte
	given    int
}

func (s *recordingSource) Share(ctx context.Context, provider string, req []byte) ([]byte, error) {
	s.mu.Lock()
	if s.requests == nil {
		s.requests = map[string][][]byte{}
	}
	s.requests[provider] = append(s.requests[provider], req)
	s.mu.Unlock()
	if provider == s.failOn {
		return nil, errors.New("provider unreachable")
	}
	b, err := s.inner.Share(ctx, provider, req)
	if err == nil {
		s.mu.Lock()
		s.given++
		s.mu.Unlock()
	}
	return b, err
}

func (w *heWorld) budget(t *testing.T) policy.Budget {
	t.Helper()
	b, err := w.st.Budget(context.Background(), "g-he", "air-he")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countEntries(t *testing.T, st *store.Store, kind ledger.Kind, subject string) int {
	t.Helper()
	n := 0
	for e, err := range st.Entries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == kind && e.Subject == subject {
			n++
		}
	}
	return n
}

func (w *heWorld) shareLogLines(t *testing.T) int {
	t.Helper()
	n := 0
	for _, dir := range w.provDirs {
		n += (&FileShareLog{Path: filepath.Join(dir, shareLogFile)}).Count()
	}
	return n
}

// TestHE runs the HE path end to end through the Runner and its failure
// cases on one sandbox (the key generation and encryption are done once).
func TestHE(t *testing.T) {
	t0 := time.Now()
	w := newHEWorld(t)
	t.Logf("setup (3 keygen shares, collective keys, 2 encrypted columns of %.0f rows): %v", sum(w.exactN)+0, time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()

	t.Run("release", func(t *testing.T) {
		src := &recordingSource{inner: w.dirSource()}
		r := w.runner(src)
		w.submit(t, r, "he-1")
		t0 := time.Now()
		if _, err := r.Execute(ctx, "he-1"); err != nil {
			t.Fatal(err)
		}
		t.Logf("execute (guest, 2 encrypted aggregates × 5 groups, noise, 6 shares, combine): %v", time.Since(t0).Round(time.Millisecond))
		if src.given != 6 {
			t.Fatalf("%d shares given, want 6", src.given)
		}
		// What the sandbox stored is what the operator reads and opens.
		stored, err := r.Release(ctx, "he-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range stored.Outputs {
			if o.HE == nil || len(o.Rows) != 0 {
				t.Fatalf("output %s: stored without its encrypted result, or with clear values", o.Name)
			}
		}
		opened, err := OpenHE(w.operator, stored)
		if err != nil {
			t.Fatal(err)
		}
		for i, exact := range [][]float64{w.exactSum, w.exactN} {
			o := opened.Outputs[i]
			nz := o.HE.Noise
			tol := nz.Interval(1e-9)
			same := 0
			t.Logf("%s: DP std %.4g (ε %v, L∞ %v), flooding std %.3g, grid %.3g; tolerance %.4g", o.Name, nz.Std, nz.Epsilon, nz.LInf, nz.FloodStdOut, nz.Rounding, tol)
			for g, row := range o.Rows {
				t.Logf("  %s: released %.2f exact %.2f (95%% CI %.1f..%.1f)", strings.Join(row.Key, ""), row.Value, exact[g], row.CILow, row.CIHigh)
				if math.Abs(row.Value-exact[g]) > tol {
					t.Errorf("%s %v: released %v, exact %v, beyond ±%v", o.Name, row.Key, row.Value, exact[g], tol)
				}
				if row.Value == exact[g] {
					same++
				}
			}
			// One value may round to the exact one (grid 0.25); all of them cannot.
			if same == len(o.Rows) {
				t.Errorf("%s: every released value is exact: no noise was added", o.Name)
			}
		}
		if b := w.budget(t); b.Spent != 1 || b.Reserved != 0 {
			t.Fatalf("budget after the release: %+v", b)
		}
		if n := countEntries(t, w.st, ledger.HEApproved, "he-1"); n != 2 {
			t.Errorf("%d approvals in the ledger, want 2", n)
		}
		if n := countEntries(t, w.st, ledger.KeyShareGiven, "he-1"); n != 6 {
			t.Errorf("%d shares in the ledger, want 6", n)
		}
		if _, err := w.st.VerifyLedger(ctx); err != nil {
			t.Fatal(err)
		}
		// Asking again returns the stored release: nothing is re-noised or re-shared.
		before := w.shareLogLines(t)
		if _, err := r.Execute(ctx, "he-1"); err != nil {
			t.Fatal(err)
		}
		if after := w.shareLogLines(t); after != before || src.given != 6 {
			t.Fatalf("executing a released job again gave shares (%d → %d)", before, after)
		}
		// A replay of a request of the released job is refused by every holder.
		for p, reqs := range src.requests {
			if _, err := ProviderShare(ctx, w.provDirs[p], w.st, reqs[0]); !errors.Is(err, cove.ErrPrivacy) {
				t.Errorf("%s answered a replayed request: %v", p, err)
			}
		}
	})

	t.Run("withheld share blocks the release", func(t *testing.T) {
		src := &recordingSource{inner: w.dirSource(), failOn: "health"}
		r := w.runner(src)
		before := w.budget(t)
		w.submit(t, r, "he-withheld")
		_, err := r.Execute(ctx, "he-withheld")
		if !errors.Is(err, cove.ErrPrivacy) {
			t.Fatalf("release without health's share: %v", err)
		}
		job, _ := w.st.Job(ctx, "he-withheld")
		if job.State != store.StateFailed {
			t.Fatalf("job is %s, want failed", job.State)
		}
		if b := w.budget(t); b.Spent != before.Spent || b.Reserved != 0 {
			t.Fatalf("budget not refunded: before %+v after %+v", before, b)
		}
		if countEntries(t, w.st, ledger.JobFailed, "he-withheld") != 1 {
			t.Fatal("the ledger does not record the failure")
		}
		if _, err := w.st.StoredRelease(ctx, "he-withheld"); !errors.Is(err, cove.ErrNotFound) {
			t.Fatalf("a release was stored: %v", err)
		}
	})

	t.Run("second share of a ciphertext is refused", func(t *testing.T) {
		// env-east is asked twice for the same request while the release is
		// approved and the job runs, by a fresh provider process each time
		// (the share log in its directory is all that remembers).
		var refused error
		src := shareFunc(func(ctx context.Context, p string, req []byte) ([]byte, error) {
			b, err := w.dirSource().Share(ctx, p, req)
			if err == nil && p == "env-east" {
				_, refused = ProviderShare(ctx, w.provDirs[p], w.st, req)
			}
			return b, err
		})
		r := w.runner(src)
		w.submit(t, r, "he-twice")
		if _, err := r.Execute(ctx, "he-twice"); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(refused, cove.ErrPrivacy) || !strings.Contains(refused.Error(), "already gave a share") {
			t.Fatalf("second share of the same ciphertext: %v", refused)
		}
	})

	t.Run("interrupted coordination, then retry", func(t *testing.T) {
		// The third holder's share never arrives: two shares were given.
		src := &recordingSource{inner: w.dirSource(), failOn: heProviders[2]}
		r := w.runner(src)
		before := w.budget(t)
		w.submit(t, r, "he-crash")
		if _, err := r.Execute(ctx, "he-crash"); !errors.Is(err, cove.ErrPrivacy) {
			t.Fatalf("interrupted release: %v", err)
		}
		if src.given != 2 {
			t.Fatalf("%d shares given before the interruption, want 2", src.given)
		}
		if b := w.budget(t); b.Spent != before.Spent || b.Reserved != 0 {
			t.Fatalf("budget not refunded: before %+v after %+v", before, b)
		}
		var a store.HEApproval
		for e, err := range w.st.Entries(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == ledger.HEApproved && e.Subject == "he-crash" {
				json.Unmarshal(e.Body, &a)
			}
		}
		lines := w.shareLogLines(t)

		// Retry: the same job id neither runs again nor gets anything shared.
		r2 := w.runner(&recordingSource{inner: w.dirSource()})
		if _, err := r2.Execute(ctx, "he-crash"); !errors.Is(err, cove.ErrExists) {
			t.Fatalf("retry of the failed job: %v", err)
		}
		if _, err := r2.Run(ctx, Submission{ID: "he-crash", Operator: "acme", Manifest: []byte(fmt.Sprintf(heManifest, w.recHash))}); err == nil {
			t.Fatal("resubmitting the failed job id ran it again")
		}
		// Replaying the interrupted requests: every holder refuses, and the
		// two that gave refuse by their share log too.
		second := 0
		for p, reqs := range src.requests {
			if _, err := ProviderShare(ctx, w.provDirs[p], w.st, reqs[0]); err == nil {
				second++
			}
			// Even with the approval check satisfied, the share log refuses.
			var ct [32]byte
			hex.Decode(ct[:], []byte(a.Ciphertext))
			log := &FileShareLog{Path: filepath.Join(w.provDirs[p], shareLogFile)}
			var fresh [32]byte
			copy(fresh[:], "a fresh session id for a retry!!")
			if p == heProviders[2] {
				continue // it never gave a share of this ciphertext
			}
			if err := log.Record(ctx, p, ct, fresh); !errors.Is(err, cove.ErrPrivacy) {
				t.Errorf("%s's share log accepted a second share of the ciphertext: %v", p, err)
			}
		}
		if _, err := w.st.ApproveHERelease(ctx, store.HEApproval{Job: "he-crash", Output: a.Output, Ciphertext: strings.Repeat("ab", 32),
			Recipient: a.Recipient, Session: strings.Repeat("cd", 32), Keys: a.Keys}); !errors.Is(err, cove.ErrPrivacy) {
			t.Fatalf("a fresh ciphertext of the failed job was approved: %v", err)
		}
		n, _ := w.st.HESharesGiven(ctx, a.Ciphertext)
		t.Logf("interrupted after %d shares; second shares for the same ciphertext: %d; share log lines %d → %d", n, second, lines, w.shareLogLines(t))
		if second != 0 || n != 2 || w.shareLogLines(t) != lines {
			t.Fatalf("second shares %d, recorded shares %d (want 0 and 2)", second, n)
		}
		if _, err := w.st.VerifyLedger(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

type shareFunc func(ctx context.Context, provider string, req []byte) ([]byte, error)

func (f shareFunc) Share(ctx context.Context, p string, req []byte) ([]byte, error) {
	return f(ctx, p, req)
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// TestHEManifest: what a manifest may say about the HE path.
func TestHEManifest(t *testing.T) {
	rec := strings.Repeat("0a", 32)
	base := func(mech, extra, output string) string {
		return "version: 1\nname: n\ngrant: g\npurpose: p\ndataset: d\nmechanism: " + mech + "\n" + extra +
			"columns: [year]\nprivacy_unit: {per_row: true}\noutputs:\n  - name: o\n    epsilon: 1\n    group_by: [{column: year, values: ['2013']}]\n" + output
	}
	tests := []struct {
		name, manifest, want string
	}{
		{"he sum", base("he", "recipient: "+rec+"\n", "    column: pm\n    aggregate: sum\n"), ""},
		{"he gaussian weighted sum", base("he", "recipient: "+rec+"\n", "    column: pm\n    aggregate: weighted_sum\n    noise: gaussian\n    delta: 1e-6\n"), ""},
		{"he without recipient", base("he", "", "    column: pm\n    aggregate: sum\n"), "recipient"},
		{"he without column", base("he", "recipient: "+rec+"\n", "    aggregate: sum\n"), "column"},
		{"he with bounds", base("he", "recipient: "+rec+"\n", "    column: pm\n    aggregate: sum\n    bounds: [0, 1]\n"), "bounds"},
		{"he quantiles", base("he", "recipient: "+rec+"\n", "    column: pm\n    aggregate: quantiles\n"), "aggregate"},
		{"he reads its encrypted column", base("he", "recipient: "+rec+"\n", "    column: year\n    aggregate: sum\n"), "cannot be among"},
		{"dp with column", base("dp", "", "    column: pm\n    aggregate: count\n"), "column is for mechanism he"},
		{"he per unit", strings.Replace(base("he", "recipient: "+rec+"\n", "    column: pm\n    aggregate: sum\n"), "per_row: true", "columns: [station]", 1), "per_row"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.manifest))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Epsilon() != 1 {
					t.Fatalf("cost ε %v, want 1", m.Epsilon())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}
