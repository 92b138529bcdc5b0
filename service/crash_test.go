package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/sdk/client"
	"github.com/covedata/cove/service"
	"github.com/covedata/cove/store"
)

// child is a server process running this test binary.
type child struct {
	cmd *exec.Cmd
	url string
}

func startChild(t *testing.T, dir string, workers int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "COVE_SERVE_CHILD="+dir, fmt.Sprintf("COVE_SERVE_WORKERS=%d", workers))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %v", err)
	}
	c := &child{cmd: cmd, url: strings.TrimSpace(strings.TrimPrefix(line, "listening on "))}
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	}
}

// TestCrashMidJobEndsOnce SIGKILLs the server while jobs run or wait in its
// queue, restarts it, and checks over repeated runs that every job ends
// exactly once: released (one release entry, debited once) or failed with
// its reservation refunded; the ledger verifies and the budget adds up.
func TestCrashMidJobEndsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	placeDemoFiles(t, dir)
	toks, err := service.OpenTokens(ctx, filepath.Join(dir, service.TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	authTok, _, _ := toks.Create(ctx, service.Authority, "admin", "")
	opTok, _, _ := toks.Create(ctx, service.Operator, operatorA, "")
	toks.Close()

	ch := startChild(t, dir, 1)
	auth, _ := client.New(ch.url, client.WithToken(authTok))
	for _, d := range demoCatalog() {
		if _, err := auth.RegisterDataset(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	g := demoGrant(grantA, operatorA)
	g.EpsilonCap["beijing-air-quality"] = 100
	if _, err := auth.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	aq := examples.AirQuality()
	rng := rand.New(rand.NewPCG(1, 2))
	const runs = 6
	var all []string
	for run := range runs {
		op, _ := client.New(ch.url, client.WithToken(opTok))
		// Two jobs on one worker: the first runs, the second waits queued.
		var ids []string
		for range 2 {
			j, err := op.Submit(ctx, client.Submission{Manifest: aq.Manifest, Module: aq.Module})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		all = append(all, ids...)
		// Kill at a random moment of the first job's run (or just after).
		if _, err := op.JobChange(ctx, ids[0], client.StateAdmitted, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		before, _ := op.Job(ctx, ids[0])
		ch.kill()
		ch = startChild(t, dir, 1)
		op, _ = client.New(ch.url, client.WithToken(opTok))
		var states []string
		for _, id := range ids {
			j, err := op.Wait(ctx, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != client.StateReleased && j.State != client.StateFailed {
				t.Errorf("run %d: job %s ended %s", run, id, j.State)
			}
			states = append(states, j.State+" "+j.Reason)
		}
		t.Logf("run %d: killed while the first job was %s; after restart: %q", run, before.State, states)
	}
	ch.kill()

	// Count, from the ledger, how each job ended.
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.VerifyLedger(ctx); err != nil {
		t.Fatalf("ledger after %d crashes: %v", runs, err)
	}
	releases, failures := map[string]int{}, map[string]int{}
	var debited, refunded float64
	for e, err := range st.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Debited  float64 `json:"epsilon_debited"`
			Refunded float64 `json:"epsilon_refunded"`
		}
		json.Unmarshal(e.Body, &body)
		switch e.Kind {
		case ledger.Released:
			releases[e.Subject]++
			debited += body.Debited
		case ledger.JobFailed, ledger.JobCancelled:
			failures[e.Subject]++
			refunded += body.Refunded
		}
	}
	var released int
	for _, id := range all {
		j, err := st.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		r, f := releases[id], failures[id]
		switch {
		case r+f != 1:
			t.Errorf("job %s: %d releases and %d failures in the ledger, want one end", id, r, f)
		case j.State == store.StateReleased && r != 1, j.State == store.StateFailed && f != 1:
			t.Errorf("job %s is %s but the ledger says %d releases, %d failures", id, j.State, r, f)
		}
		if r == 1 {
			released++
			if _, err := st.StoredRelease(ctx, id); err != nil {
				t.Errorf("released job %s has no stored release", id)
			}
		}
	}
	b, err := st.Budget(ctx, grantA, "beijing-air-quality")
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(released) * 0.5; abs(b.Spent-want) > 1e-9 || abs(debited-want) > 1e-9 || b.Reserved != 0 {
		t.Errorf("budget %+v (debited %.2f in the ledger): want spent %.2f for %d releases, nothing reserved", b, debited, want, released)
	}
	t.Logf("%d crashes, %d jobs: %d released, %d failed and refunded (ε %.2f refunded); budget spent %.2f",
		runs, len(all), released, len(all)-released, refunded, b.Spent)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
