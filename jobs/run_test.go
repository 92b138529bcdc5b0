package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/isolate"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// Secrets are the values of the test dataset: none may appear in anything a
// job returns or records, except inside a noised release.
const (
	secretName  = "SECRET-NAME-7f3a"
	secretValue = 31337.0
)

func guestModule(t *testing.T, name string) []byte {
	t.Helper()
	b, err := guestbuild.Cached(context.Background(), filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	store  *store.Store
	runner *Runner
	alloc  *memory.CheckedAllocator
}

const leakManifest = `version: 1
name: leak-test
grant: g1
purpose: research
dataset: secrets
mode: unit
failure_epsilon: 0.05
columns: [name, value]
privacy_unit: {per_row: true}
outputs:
  - name: total
    aggregate: sum
    epsilon: 0.05
    bounds: [0, 100000]
    group_by: [{column: name, values: [all]}]
`

func newEnv(t *testing.T, deadline time.Duration) *env {
	t.Helper()
	return newEnvWith(t, deadline, nil)
}

func newEnvWith(t *testing.T, deadline time.Duration, classify func(*policy.Dataset)) *env {
	t.Helper()
	return newEnvEngine(t, deadline, classify, false)
}

// newEnvEngine sets up a dataset of secrets, a grant and a runner whose
// guests run in process or, isolated, in sandbox processes.
func newEnvEngine(t *testing.T, deadline time.Duration, classify func(*policy.Dataset), isolated bool) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.parquet")
	writeSecrets(t, path, 100)
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	schema, err := connectors.ReadSchema(path)
	if err != nil {
		t.Fatal(err)
	}
	d := policy.Dataset{Name: "secrets", Location: path, Sharing: policy.Open, Level: 1}
	for _, f := range schema.Fields() {
		d.Columns = append(d.Columns, policy.Column{Name: f.Name, Type: f.Type.String()})
	}
	if classify != nil {
		classify(&d)
	}
	if err := st.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, policy.Grant{ID: "g1", Operator: "op", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP},
		Pricing: policy.Industry, Purposes: []string{"research"}, Datasets: []string{"secrets"},
		Columns: map[string][]string{"secrets": {"name", "value"}}, EpsilonCap: map[string]float64{"secrets": 1},
		DeltaCap:  map[string]float64{"secrets": 1e-5},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wcfg := wasm.NewConfig().WithMemoryLimitPages(512).WithCompilationCacheDir(filepath.Join(os.TempDir(), "cove-test-wasm-cache"))
	var eng wasm.Runtime
	if isolated {
		eng, err = isolate.NewEngine(ctx, isolate.NewConfig(wcfg))
	} else {
		eng, err = wasm.NewEngine(ctx, wcfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(ctx) })
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { alloc.AssertSize(t, 0) })
	return &env{store: st, alloc: alloc, runner: NewRunner(st, eng, NewConfig().WithDeadline(deadline).WithAllocator(alloc))}
}

func writeSecrets(t *testing.T, path string, n int) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}, {Name: "value", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%s-%d", secretName, i))
		b.Field(1).(*array.Float64Builder).Append(secretValue)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
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

// ledgerText is the whole ledger as exported.
func ledgerText(t *testing.T, st *store.Store) string {
	t.Helper()
	var buf bytes.Buffer
	for e, err := range st.Entries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(&buf).Encode(e)
	}
	if _, err := st.VerifyLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// secretNumber finds the secret value written as a number of its own: a
// plain substring test also hits nanosecond timestamps and hashes
// ("…261231337Z"), which made the check flaky.
var secretNumber = regexp.MustCompile(`(^|[^0-9A-Za-z+/])31337([^0-9A-Za-z+/]|$)`)

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, "SECRET") {
		t.Errorf("%s carries data (%q): %s", where, "SECRET", s)
	}
	if secretNumber.MatchString(s) {
		t.Errorf("%s carries data (%q): %s", where, "31337", s)
	}
}

// TestGuestCannotGetRowsOut runs a guest that prints every row and emits
// contributions keyed by row values: the job releases exactly the declared
// partition and nothing of the data appears anywhere else.
func TestGuestCannotGetRowsOut(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	rel, err := e.runner.Run(context.Background(), Submission{ID: "leak-1", Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Outputs) != 1 || len(rel.Outputs[0].Rows) != 1 || strings.Join(rel.Outputs[0].Rows[0].Key, "") != "all" {
		t.Fatalf("release holds more than the declared partition: %+v", rel)
	}
	// The one released value is the noised sum of 100 clamped values.
	r := rel.Outputs[0].Rows[0]
	if exact := 100 * secretValue; r.Value < exact-6*r.NoiseStdDev || r.Value > exact+6*r.NoiseStdDev {
		t.Errorf("released %v, exact %v, σ %v", r.Value, exact, r.NoiseStdDev)
	}
	relJSON, _ := json.Marshal(rel)
	assertNoSecret(t, "release", strings.ReplaceAll(string(relJSON), fmt.Sprint(r.Value), ""))
	assertNoSecret(t, "ledger", strings.ReplaceAll(ledgerText(t, e.store), fmt.Sprint(r.Value), ""))
}

// TestUnitFailures: in unit mode a guest that traps, loops past its CPU
// limit, exhausts memory, fails with data in its error or exits fails that
// unit only: every unit contributes nothing, the job is released, the
// failures are a noisy count, and nothing of the data appears anywhere.
func TestUnitFailures(t *testing.T) {
	guests := []string{"trap", "loop", "oom", "leakfail", "leakexit"}
	for _, isolated := range []bool{false, true} {
		for _, guest := range guests {
			name := guest
			if isolated {
				name += "/isolated"
			}
			t.Run(name, func(t *testing.T) {
				if isolated && raceEnabled {
					// The sandbox is this race-instrumented binary: its shadow
					// memory does not fit the sandbox's address-space limit.
					// The isolated path is tested without -race.
					t.Skip("isolated guests under -race")
				}
				testUnitFailure(t, guest, isolated)
			})
		}
	}
}

func testUnitFailure(t *testing.T, guest string, isolated bool) {
	ctx := context.Background()
	e := newEnvEngine(t, time.Minute, nil, isolated)
	// 5 ms per unit keeps the looping guest's 100 units short.
	manifest := strings.Replace(leakManifest, "columns: [name, value]", "guest: {cpu_ms: 5}\ncolumns: [name, value]", 1)
	rel, err := e.runner.Run(ctx, Submission{ID: "job-" + guest, Operator: "op", Manifest: []byte(manifest), Module: guestModule(t, guest)})
	if err != nil {
		t.Fatalf("a unit's failure failed the job: %v", err)
	}
	r := rel.Outputs[0].Rows[0]
	if r.Value < -6*r.NoiseStdDev || r.Value > 6*r.NoiseStdDev {
		t.Errorf("released sum %v (σ %v): failed units contributed", r.Value, r.NoiseStdDev)
	}
	f := rel.Failures
	if f == nil || f.Of != "units" || math.Abs(float64(f.Count)-100) > 6*f.NoiseStdDev+1 {
		t.Fatalf("failures %+v, want ≈ 100 units", f)
	}
	t.Logf("%s: released %v (σ %.0f), failures %d (σ %.0f)", guest, r.Value, r.NoiseStdDev, f.Count, f.NoiseStdDev)
	relJSON, _ := json.Marshal(rel)
	assertNoSecret(t, "release", strings.ReplaceAll(string(relJSON), fmt.Sprint(r.Value), ""))
	assertNoSecret(t, "ledger", strings.ReplaceAll(ledgerText(t, e.store), fmt.Sprint(r.Value), ""))
	if b, _ := e.store.Budget(ctx, "g1", "secrets"); b.Spent != 0.1 || b.Reserved != 0 {
		t.Errorf("budget after the release: %+v", b)
	}
}

// TestJobFailures: a guest that fails before any unit (at initialization)
// or a job past its deadline ends the job with a clear error free of data;
// the reservation is refunded and the ledger records the failure.
func TestJobFailures(t *testing.T) {
	tests := []struct {
		guest    string
		is       error
		deadline time.Duration
	}{
		{"initpanic", cove.ErrGuest, 10 * time.Second},
		{"slow", cove.ErrDeadline, 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.guest, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, tc.deadline)
			_, err := e.runner.Run(ctx, Submission{ID: "job-" + tc.guest, Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, tc.guest)})
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			assertNoSecret(t, "error", err.Error())
			b, _ := e.store.Budget(ctx, "g1", "secrets")
			if b.Spent != 0 || b.Reserved != 0 {
				t.Errorf("budget after failure: %+v", b)
			}
			j, _ := e.store.Job(ctx, "job-"+tc.guest)
			if j.State != store.StateFailed || j.Reason == "" {
				t.Errorf("job state %s reason %q", j.State, j.Reason)
			}
			assertNoSecret(t, "ledger", ledgerText(t, e.store))
			var last ledger.Entry
			for en := range e.store.Entries(ctx) {
				last = en
			}
			if last.Kind != ledger.JobFailed || !strings.Contains(string(last.Body), `"epsilon_refunded":0.1`) {
				t.Errorf("last ledger entry %s %s", last.Kind, last.Body)
			}
		})
	}
}

// TestBatchModeRefusedOnRealData: a guest that sees whole batches could copy
// one unit's data onto others; mode batch runs on mock data only.
func TestBatchModeRefusedOnRealData(t *testing.T) {
	e := newEnv(t, time.Minute)
	manifest := strings.Replace(leakManifest, "mode: unit\nfailure_epsilon: 0.05\n", "mode: batch\n", 1)
	manifest = strings.Replace(manifest, "    epsilon: 0.05", "    epsilon: 0.1", 1)
	_, err := e.runner.Submit(context.Background(), Submission{ID: "batch-1", Operator: "op", Manifest: []byte(manifest), Module: guestModule(t, "leak")})
	if !errors.Is(err, cove.ErrOutOfScope) || !strings.Contains(err.Error(), "mock data only") {
		t.Fatalf("mode batch on real data: %v", err)
	}
	if _, err := e.store.Job(context.Background(), "batch-1"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("a refused batch job was recorded: %v", err)
	}
}

// TestRetryReturnsStoredRelease: the same job id submitted again returns the
// stored release, with no new noise and no second debit.
func TestRetryReturnsStoredRelease(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 30*time.Second)
	sub := Submission{ID: "retry-1", Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")}
	first, err := e.runner.Run(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.runner.Run(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if first.Outputs[0].Rows[0].Value != second.Outputs[0].Rows[0].Value {
		t.Fatalf("retry drew fresh noise: %v then %v", first.Outputs[0].Rows[0].Value, second.Outputs[0].Rows[0].Value)
	}
	if b, _ := e.store.Budget(ctx, "g1", "secrets"); b.Spent != 0.1 {
		t.Fatalf("spent %v after a retry, want 0.1", b.Spent)
	}
	sub.Manifest = []byte(strings.Replace(leakManifest, "    epsilon: 0.05", "    epsilon: 0.15", 1))
	if _, err := e.runner.Run(ctx, sub); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("same id with another manifest: %v", err)
	}
}

// TestRevocationStopsRunningJob revokes the grant of a job whose guest runs
// forever: the job must end within 1 s, release nothing, be refunded, and
// the ledger must hold the revocation and the cancellation.
func TestRevocationStopsRunningJob(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, time.Minute)
	job, err := e.runner.Submit(ctx, Submission{ID: "long-1", Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "loop")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.runner.Execute(ctx, job.ID)
		done <- err
	}()
	// Wait until the guest runs.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if j, _ := e.store.Job(ctx, job.ID); j.State == store.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	ids, err := e.runner.Revoke(ctx, "g1", "breach of terms")
	if err != nil {
		t.Fatal(err)
	}
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("job still running 5 s after revocation")
	}
	stopped := time.Since(start)
	t.Logf("revoked job stopped %v after revocation: %v", stopped, runErr)
	if stopped > time.Second {
		t.Errorf("job took %v to stop, want ≤ 1 s", stopped)
	}
	if len(ids) != 1 || ids[0] != job.ID || !errors.Is(runErr, cove.ErrGrantInactive) {
		t.Fatalf("cancelled %v, run error %v", ids, runErr)
	}
	j, _ := e.store.Job(ctx, job.ID)
	b, _ := e.store.Budget(ctx, "g1", "secrets")
	if j.State != store.StateCancelled || b.Spent != 0 || b.Reserved != 0 {
		t.Fatalf("after revocation: state %s, budget %+v", j.State, b)
	}
	if _, err := e.store.StoredRelease(ctx, job.ID); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("released after revocation: %v", err)
	}
	text := ledgerText(t, e.store)
	for _, kind := range []string{`"grant.revoked"`, `"job.cancelled"`} {
		if !strings.Contains(text, kind) {
			t.Errorf("ledger lacks %s", kind)
		}
	}
	// Nothing is admitted under a revoked grant.
	if _, err := e.runner.Submit(ctx, Submission{ID: "after-1", Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")}); !errors.Is(err, cove.ErrGrantInactive) {
		t.Fatalf("submission after revocation: %v", err)
	}
}

// TestReviewFlow: a job on conditional data waits for review; rejected, it is
// refunded; approved, it runs.
func TestReviewFlow(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, time.Minute, func(d *policy.Dataset) { d.Sharing = policy.Conditional })
	sub := Submission{ID: "rev-1", Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")}
	if _, err := e.runner.Run(ctx, sub); !errors.Is(err, cove.ErrInReview) {
		t.Fatalf("run on conditional data: %v", err)
	}
	if b, _ := e.store.Budget(ctx, "g1", "secrets"); b.Reserved != 0.1 {
		t.Fatalf("budget in review: %+v", b)
	}
	if err := e.runner.Review(ctx, "rev-1", false, "authority", "purpose unclear"); err != nil {
		t.Fatal(err)
	}
	if b, _ := e.store.Budget(ctx, "g1", "secrets"); b.Reserved != 0 {
		t.Fatalf("rejected job not refunded: %+v", b)
	}
	sub.ID = "rev-2"
	job, err := e.runner.Submit(ctx, sub)
	if err != nil || job.State != store.StateInReview {
		t.Fatalf("submit: %+v %v", job, err)
	}
	if err := e.runner.Review(ctx, "rev-2", true, "authority", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner.Execute(ctx, "rev-2"); err != nil {
		t.Fatal(err)
	}
	if b, _ := e.store.Budget(ctx, "g1", "secrets"); b.Spent != 0.1 {
		t.Fatalf("approved job not debited: %+v", b)
	}
}

// TestPrivatePartitionsHideRareKeys runs the leaking guest with private
// partition selection: the keys it makes from single rows (one unit each)
// must not be released; the key every row shares is.
func TestPrivatePartitionsHideRareKeys(t *testing.T) {
	manifest := strings.NewReplacer(
		"    group_by: [{column: name, values: [all]}]", "    delta: 1.0e-6\n    max_partitions: 2\n    partitions: private\n    group_by: [{column: name}]",
		"    epsilon: 0.05", "    epsilon: 0.95",
	).Replace(leakManifest)
	e := newEnv(t, 30*time.Second)
	rel, err := e.runner.Run(context.Background(), Submission{ID: "private-1", Operator: "op", Manifest: []byte(manifest), Module: guestModule(t, "leak")})
	if err != nil {
		t.Fatal(err)
	}
	o := rel.Outputs[0]
	if !o.PrivatePartitions || len(o.Rows) != 1 || o.Rows[0].Key[0] != "all" {
		t.Fatalf("released %+v", o)
	}
	relJSON, _ := json.Marshal(rel)
	assertNoSecret(t, "release", strings.ReplaceAll(string(relJSON), fmt.Sprint(o.Rows[0].Value), ""))
	t.Logf("released 1 partition; suppressed (noisy count) %d ± %.1f of the 100 single-row keys", o.Suppressed, o.SuppressedNoiseStdDev)
}
