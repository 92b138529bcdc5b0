package isolate

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/runtime/testdata/conform/job"
)

// idlePIDs waits until the engine's pool holds n live sandboxes and returns
// their process ids. The bound only guards against a hang.
func idlePIDs(t *testing.T, e *Engine, n int) []int {
	t.Helper()
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(5 * time.Millisecond) {
		e.poolMu.Lock()
		var pids []int
		for _, p := range e.idle {
			select {
			case <-p.done:
			default:
				pids = append(pids, p.cmd.Process.Pid)
			}
		}
		starting := e.starting
		e.poolMu.Unlock()
		if len(pids) == n && starting == 0 {
			return pids
		}
	}
	t.Fatalf("the pool never held %d idle sandboxes", n)
	return nil
}

// childPIDs lists this process's child processes (zombies included).
func childPIDs(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	me := os.Getpid()
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(me) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPoolSandboxUsedOnce: a Compile and each Instantiate take a sandbox
// from the pool, and each sandbox serves one of them and ends with it.
func TestPoolSandboxUsedOnce(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, testConfig().WithPool(2))
	bin := goGuest(t, "../testdata/conform/goguest")
	pooled := idlePIDs(t, e, 2)
	m, err := e.Compile(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for k := range 3 {
		pooled = idlePIDs(t, e, 2)
		inst, err := m.Instantiate(ctx, job.Outputs)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := inst.(*instance).probe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pooled, pr.PID) {
			t.Errorf("instance %d ran in process %d, not one of the idle sandboxes %v", k, pr.PID, pooled)
		}
		if seen[pr.PID] {
			t.Errorf("instance %d reused the sandbox process %d", k, pr.PID)
		}
		seen[pr.PID] = true
		p := inst.(*instance).p
		_ = inst.Close(ctx)
		<-p.done // the sandbox ended with its instance
		if err := syscall.Kill(pr.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("sandbox %d still exists after its instance closed: %v", pr.PID, err)
		}
		if slices.Contains(idlePIDs(t, e, 2), pr.PID) {
			t.Errorf("sandbox %d went back to the pool", pr.PID)
		}
	}
	if err := runGood(e, bin); err != nil {
		t.Fatal(err)
	}
}

// TestPoolNone: pool 0 starts each sandbox when needed and keeps none.
func TestPoolNone(t *testing.T) {
	e := newEngine(t, testConfig().WithPool(0))
	if err := runGood(e, goGuest(t, "../testdata/conform/goguest")); err != nil {
		t.Fatal(err)
	}
	e.poolMu.Lock()
	defer e.poolMu.Unlock()
	if len(e.idle) != 0 || e.starting != 0 {
		t.Fatalf("pool 0 keeps %d idle sandboxes, %d starting", len(e.idle), e.starting)
	}
}

// TestPoolIdleKilled: an idle sandbox killed from outside is discarded and
// replaced, and jobs still succeed.
func TestPoolIdleKilled(t *testing.T) {
	e := newEngine(t, testConfig().WithPool(2))
	bin := goGuest(t, "../testdata/conform/goguest")
	pids := idlePIDs(t, e, 2)
	e.poolMu.Lock()
	victims := slices.Clone(e.idle)
	e.poolMu.Unlock()
	for _, p := range victims {
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	if err := runGood(e, bin); err != nil {
		t.Fatalf("job after the idle sandboxes were killed: %v", err)
	}
	for _, pid := range idlePIDs(t, e, 2) {
		if slices.Contains(pids, pid) {
			t.Errorf("killed sandbox %d still in the pool", pid)
		}
	}
	if err := runGood(e, bin); err != nil {
		t.Fatal(err)
	}
}

// TestPoolCloseKillsIdle: Engine.Close leaves no sandbox process behind,
// idle or still starting.
func TestPoolCloseKillsIdle(t *testing.T) {
	ctx := context.Background()
	before := childPIDs(t)
	for _, wait := range []bool{true, false} {
		e, err := NewEngine(ctx, testConfig().WithPool(3))
		if err != nil {
			t.Fatal(err)
		}
		if wait {
			idlePIDs(t, e, 3)
		}
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for _, pid := range childPIDs(t) {
			if !slices.Contains(before, pid) {
				t.Errorf("process %d left after Close (pool full: %v)", pid, wait)
			}
		}
		if _, err := e.Compile(ctx, goGuest(t, "../testdata/conform/goguest")); err != nil {
			t.Fatalf("a closed engine still starts sandboxes on demand: %v", err)
		}
		e.poolMu.Lock()
		n := len(e.idle) + e.starting
		e.poolMu.Unlock()
		if n != 0 {
			t.Errorf("a closed engine refilled its pool: %d", n)
		}
	}
}

// TestPoolSandboxesNotSignaledWhileIdle: a pooled sandbox's start ends by
// canceling its context right after the exchange; that must not reach the
// sandbox as a stray SIGTERM canceling the job that later takes it (select
// picks at random between a closed stop and a done context). Many jobs in a
// row, each on pooled sandboxes, all succeed.
func TestPoolSandboxesNotSignaledWhileIdle(t *testing.T) {
	e := newEngine(t, testConfig().WithPool(2))
	bin := goGuest(t, "../testdata/conform/goguest")
	for k := range 20 {
		idlePIDs(t, e, 2) // the pool is full: the next run takes pooled ones
		if err := runGood(e, bin); err != nil {
			t.Fatalf("run %d on pooled sandboxes: %v", k, err)
		}
	}
}
