package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/sdk/client"
)

// TestEndToEndCLI builds the cove binary, starts `cove serve` on
// 127.0.0.1, and drives it with the CLI only: tokens, the demo datasets,
// a grant, both example jobs (the Adult one approved in review), waits,
// releases in json and csv, the ledger, statements, the report, a batch
// directory, and a mock run.
func TestEndToEndCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the cove binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := coveBinary(t)
	dir := filepath.Join(tmp, "data")
	placeDemoFiles(t, dir)
	tokFile := filepath.Join(tmp, "authority.token")
	srv := exec.CommandContext(ctx, bin, "serve", "-data-dir", dir, "-addr", "127.0.0.1:0", "-init-token", tokFile, "-workers", "2")
	srv.Stderr = os.Stderr
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(line[strings.Index(line, "http://"):strings.Index(line, " (data")])
	cove := func(token string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "COVE_SERVER="+url, "COVE_TOKEN="+token)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cove %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	auth := "@" + tokFile
	opTok := strings.TrimSpace(cove(auth, "token", "create", "-role", "operator", "-subject", operatorA))
	provTok := strings.TrimSpace(cove(auth, "token", "create", "-role", "provider", "-subject", "uci"))
	writeJSON := func(name string, v any) string {
		p := filepath.Join(tmp, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cat := demoCatalog()
	cove(auth, "dataset", "register", "-file", writeJSON("aq.json", cat[0]))
	cove(provTok, "dataset", "register", "-file", writeJSON("adult.json", cat[1]))
	if ls := cove(opTok, "dataset", "list"); !strings.Contains(ls, "beijing-air-quality") || !strings.Contains(ls, "adult") {
		t.Fatalf("dataset list:\n%s", ls)
	}
	cove(auth, "grant", "create", "-file", writeJSON("grant.json", demoGrant(grantA, operatorA)), "-server", url)

	aq, adult := examples.AirQuality(), examples.Adult()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	aqM, aqW := write("aq.yaml", aq.Manifest), write("aq.wasm", aq.Module)
	adM, adW := write("adult.yaml", adult.Manifest), write("adult.wasm", adult.Module)

	// The air-quality job: submit and wait, the release as JSON.
	var rel client.Release
	if err := json.Unmarshal([]byte(cove(opTok, "job", "submit", "-manifest", aqM, "-module", aqW, "-wait", "-output", "json")), &rel); err != nil || len(rel.Outputs) != 1 {
		t.Fatalf("air-quality release: %+v %v", rel, err)
	}
	// Uploaded once, then named by hash.
	var mod client.ModuleInfo
	if err := json.Unmarshal([]byte(cove(opTok, "job", "upload", "-module", aqW, "-output", "json")), &mod); err != nil || len(mod.SHA256) != 64 {
		t.Fatalf("job upload: %+v %v", mod, err)
	}
	if err := json.Unmarshal([]byte(cove(opTok, "job", "submit", "-manifest", aqM, "-module-sha256", mod.SHA256, "-wait", "-output", "json")), &rel); err != nil || len(rel.Outputs) != 1 {
		t.Fatalf("air-quality release by module hash: %+v %v", rel, err)
	}
	// The Adult job waits for review; the authority approves it by CLI.
	var j client.Job
	json.Unmarshal([]byte(cove(opTok, "job", "submit", "-manifest", adM, "-module", adW, "-output", "json")), &j)
	if j.State != client.StateInReview {
		t.Fatalf("adult job %+v: want in_review", j)
	}
	if rv := cove(auth, "review", "list", "-server", url); !strings.Contains(rv, j.ID) {
		t.Fatalf("review list lacks %s:\n%s", j.ID, rv)
	}
	cove(auth, "review", "approve", j.ID, "-reason", "aggregates only", "-server", url)
	cove(opTok, "job", "wait", j.ID)
	rows, err := csv.NewReader(strings.NewReader(cove(opTok, "job", "release", j.ID, "-output", "csv"))).ReadAll()
	if err != nil || len(rows) < 2 || rows[0][0] != "output" {
		t.Fatalf("release csv: %v %v", rows, err)
	}
	if st := cove(opTok, "job", "status", j.ID); !strings.Contains(st, "released") {
		t.Fatalf("status:\n%s", st)
	}
	cove(opTok, "job", "events", j.ID)
	cove(opTok, "grant", "budget", grantA, "-server", url)

	// A batch directory: two jobs, waited for together.
	batch := filepath.Join(tmp, "batch")
	for _, name := range []string{"one", "two"} {
		os.MkdirAll(filepath.Join(batch, name), 0o755)
		os.WriteFile(filepath.Join(batch, name, "manifest.yaml"), aq.Manifest, 0o644)
		os.WriteFile(filepath.Join(batch, name, "job.wasm"), aq.Module, 0o644)
	}
	if res := cove(opTok, "job", "submit-dir", batch, "-out", filepath.Join(tmp, "releases")); strings.Count(res, "released") != 2 {
		t.Fatalf("submit-dir:\n%s", res)
	}
	if _, err := os.Stat(filepath.Join(tmp, "releases", "two.json")); err != nil {
		t.Fatal(err)
	}

	// Ledger, statement, report.
	if v := cove(auth, "ledger", "verify", "-server", url); !strings.Contains(v, "ledger verified") {
		t.Fatalf("ledger verify:\n%s", v)
	}
	if v := cove("", "ledger", "verify", "-server", url); !strings.Contains(v, "latest checkpoint verified") {
		t.Fatalf("public ledger verify:\n%s", v)
	}
	key := write("ledger.pub", []byte(cove("", "ledger", "key", "-server", url)))
	proof := write("proof.json", []byte(cove("", "ledger", "prove", "-seq", "1", "-server", url)))
	if v := cove("", "ledger", "verify-proof", "-proof", proof, "-key", key); !strings.Contains(v, "inclusion proof verified") {
		t.Fatalf("verify-proof:\n%s", v)
	}
	if s := cove(opTok, "statement", "-server", url); !strings.Contains(s, operatorA) {
		t.Fatalf("statement:\n%s", s)
	}
	if r := cove("", "report", "-server", url); !strings.Contains(r, "disclosure: 1 grants, 5 products") {
		t.Fatalf("report:\n%s", r)
	}
	cove("", "report", "-server", url, "-html", filepath.Join(tmp, "disclosure.html"))

	// A mock run: the guest's rows shown, on synthetic data only.
	if m := cove(opTok, "job", "run", "--mock", "-manifest", adM, "-module", adW, "-rows", "200"); !strings.Contains(m, "contributions, row by row") {
		t.Fatalf("mock run:\n%s", m)
	}
	// Tokens: list and revoke.
	var toks []client.TokenInfo
	json.Unmarshal([]byte(cove(auth, "token", "list", "-output", "json")), &toks)
	if len(toks) != 3 {
		t.Fatalf("tokens: %+v", toks)
	}
	cove(auth, "token", "revoke", toks[2].ID)
	cmd := exec.CommandContext(ctx, bin, "dataset", "list", "-server", url, "-token", provTok)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unauthenticated") {
		t.Fatalf("revoked token still works: %v\n%s", err, out)
	}
}
