package service_test

import (
	"context"
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
		used := childrenCPU(t) - before
		t.Logf("in process %v: children's CPU time during the job %v", inProcess, used)
		if !inProcess && used == 0 {
			t.Error("default server: no child process ran the guest")
		}
		if inProcess && used != 0 {
			t.Errorf("in-process guests: child processes used %v of CPU", used)
		}
		e.stop()
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
	ex := examples.AirQualityC()
	for k := range 8 { // 8 × ε 0.5 within the demo grant's cap of 5
		if _, err := op.SubmitAndWait(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module}, nil); err != nil {
			t.Fatalf("job %d: %v", k, err)
		}
	}
}
