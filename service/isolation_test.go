package service_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
)

// childrenCPU is the CPU time of this process's children that have ended
// and been waited for (getrusage RUSAGE_CHILDREN).
func childrenCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestGuestsRunInSandboxes: by default the server runs each guest in a
// sandbox process, not in its own: the air-quality job's guest work shows
// up as the CPU time of ended child processes; with InProcessGuests it
// does not.
func TestGuestsRunInSandboxes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race binary does not fit a sandbox's address-space limit")
	}
	for _, inProcess := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		// No pool: every sandbox is started for the job and ends with it.
		e := startServer(t, t.TempDir(), service.Options{Workers: 1, InProcessGuests: inProcess})
		e.issue(t)
		e.setupDemo(t)
		op := e.client(t, "operator")
		before := childrenCPU(t)
		ex := examples.AirQuality()
		if _, err := op.SubmitAndWait(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module}, nil); err != nil {
			t.Fatal(err)
		}
		e.stop() // ends the sandbox waiting for the operator's next job
		used := childrenCPU(t) - before
		t.Logf("in process %v: children's CPU time during the job %v", inProcess, used)
		if !inProcess && used == 0 {
			t.Error("default server: no child process ran the guest")
		}
		if inProcess && used != 0 {
			t.Errorf("in-process guests: child processes used %v of CPU", used)
		}
		cancel()
	}
}

// TestPooledSandboxesRunJobs: with a pool of idle sandboxes, jobs in a row
// all release.
func TestPooledSandboxesRunJobs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race binary does not fit a sandbox's address-space limit")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t, t.TempDir(), service.Options{Workers: 2, SandboxPool: 2})
	e.issue(t)
	e.setupDemo(t)
	op := e.client(t, "operator")
	ex := examples.PM25Days() // per unit: one call per station-day
	for k := range 8 {        // 8 × ε 0.31 within the demo grant's cap
		if _, err := op.SubmitAndWait(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module}, nil); err != nil {
			t.Fatalf("job %d: %v", k, err)
		}
	}
}

// liveChildren lists this process's child processes that have not ended.
func liveChildren(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
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
		// pid (comm) state ppid ...: comm may hold spaces.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSandboxReuse: a sandbox may serve one operator's next instance of the
// same module over the same data (runtime/isolate's TestReuse), but only
// whole-batch instances, which run on mock data only; a sandbox that ran a
// job's per-unit calls is never reused, so with reuse on or off none
// outlives its job, and none the server.
func TestSandboxReuse(t *testing.T) {
	if raceEnabled {
		t.Skip("the race binary does not fit a sandbox's address-space limit")
	}
	for _, reuse := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		e := startServer(t, t.TempDir(), service.Options{Workers: 1, NoSandboxReuse: !reuse})
		e.issue(t)
		e.setupDemo(t)
		ex := examples.PM25Days()
		var after [][]int
		for k := range 3 {
			if _, err := e.client(t, "operator").SubmitAndWait(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module}, nil); err != nil {
				t.Fatalf("job %d: %v", k, err)
			}
			after = append(after, liveChildren(t))
		}
		t.Logf("reuse %v: live sandboxes after each job %v", reuse, after)
		if len(after[0])+len(after[1])+len(after[2]) != 0 {
			t.Errorf("sandboxes of per-unit jobs outlived their jobs: %v", after)
		}
		e.stop()
		if left := liveChildren(t); len(left) != 0 {
			t.Errorf("sandboxes left after the server closed: %v", left)
		}
		cancel()
	}
}
