package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// Crash tests: a child process (this test binary) runs one job and is
// killed with SIGKILL at a step of the release (store.FailpointEnv); the
// parent reopens the state as a restarted service would and checks that no
// budget was debited twice, no release exists without its debit and ledger
// entry, and a retry never draws fresh noise.
const (
	crashDirEnv    = "COVE_CRASH_DIR"
	crashJobEnv    = "COVE_CRASH_JOB"
	crashModuleEnv = "COVE_CRASH_MODULE"
)

// TestCrashChild is the child's side; it does nothing unless the parent
// started it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashAtEveryReleaseStep")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig().WithCompilationCacheDir(filepath.Join(os.TempDir(), "cove-test-wasm-cache")))
	if err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(os.Getenv(crashModuleEnv))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(st, eng, NewConfig())
	if _, err := r.Run(ctx, Submission{ID: os.Getenv(crashJobEnv), Operator: "op", Manifest: []byte(leakManifest), Module: module}); err != nil {
		t.Fatal(err)
	}
}

func TestCrashAtEveryReleaseStep(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	steps := []string{"release:begin", "release:after-debit", "release:after-store", "release:after-ledger", "release:after-commit", ""}
	const runs = 3
	e := newEnv(t, time.Minute)
	dir := filepath.Dir(e.store.Path())
	modulePath := filepath.Join(t.TempDir(), "leak.wasm")
	if err := os.WriteFile(modulePath, guestModule(t, "leak"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	released := 0
	for run := 0; run < runs; run++ {
		for _, step := range steps {
			id := fmt.Sprintf("crash-%d-%s", run, strings.ReplaceAll(strings.TrimPrefix(step, "release:"), ":", "-"))
			if step == "" {
				id = fmt.Sprintf("crash-%d-none", run)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashJobEnv+"="+id, crashModuleEnv+"="+modulePath, store.FailpointEnv+"="+step)
			out, err := cmd.CombinedOutput()
			killed := err != nil && strings.Contains(err.Error(), "signal: killed")
			if (step != "") != killed {
				t.Fatalf("%s: child ended with %v, want killed=%v\n%s", id, err, step != "", out)
			}
			// The restarted service: fail what was left running, then check.
			if _, err := e.store.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			j, err := e.store.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			stored, relErr := e.store.StoredRelease(ctx, id)
			committed := step == "release:after-commit" || step == ""
			switch {
			case committed && (j.State != store.StateReleased || relErr != nil):
				t.Fatalf("%s: committed release lost: state %s, %v", id, j.State, relErr)
			case !committed && (j.State != store.StateFailed || relErr == nil):
				t.Fatalf("%s: uncommitted release survived: state %s, release %v", id, j.State, relErr)
			}
			if committed {
				released++
				// A retry returns the stored release: the same noise, no second debit.
				rel, err := e.runner.Run(ctx, Submission{ID: id, Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")})
				if err != nil {
					t.Fatalf("%s: retry: %v", id, err)
				}
				again, _ := json.Marshal(rel)
				var a, b any
				json.Unmarshal(stored, &a)
				json.Unmarshal(again, &b)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("%s: retry differs from the stored release", id)
				}
			} else if _, err := e.runner.Run(ctx, Submission{ID: id, Operator: "op", Manifest: []byte(leakManifest), Module: guestModule(t, "leak")}); !errors.Is(err, cove.ErrExists) {
				t.Fatalf("%s: retry of a failed job: %v", id, err)
			}
			checkBooks(t, e.store, released)
		}
	}
	t.Logf("%d crash runs (%d steps × %d): %d released, 0 double debits, 0 releases without debit or ledger entry, 0 fresh-noise re-releases",
		runs*len(steps), len(steps), runs, released)
}

// checkBooks: spending equals the releases, each release has exactly one
// ledger entry, nothing is reserved, the ledger verifies.
func checkBooks(t *testing.T, st *store.Store, released int) {
	t.Helper()
	ctx := context.Background()
	b, err := st.Budget(ctx, "g1", "secrets")
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.1 * float64(released); b.Spent < want-1e-9 || b.Spent > want+1e-9 || b.Reserved != 0 {
		t.Fatalf("budget %+v after %d releases", b, released)
	}
	entries := map[string]int{}
	for e, err := range st.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == ledger.Released {
			entries[e.Subject]++
		}
	}
	jobs, _ := st.Jobs(ctx, store.JobFilter{States: []string{store.StateReleased}})
	if len(jobs) != released || len(entries) != released {
		t.Fatalf("%d released jobs, %d in the ledger, want %d", len(jobs), len(entries), released)
	}
	for id, n := range entries {
		if n != 1 {
			t.Fatalf("job %s released %d times in the ledger", id, n)
		}
	}
	if _, err := st.VerifyLedger(ctx); err != nil {
		t.Fatal(err)
	}
}
