package isolate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/testdata/conform/job"
	"github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// scoped is a runtime whose instances all start under one scope: the
// conformance suite run on it shows that a reused sandbox serves each new
// instance from a clean state (keys interned anew, emissions its own).
type scoped struct {
	wasm.Runtime
	scope string
}

func (s scoped) Compile(ctx context.Context, bin []byte) (wasm.Module, error) {
	m, err := s.Runtime.Compile(ctx, bin)
	return scopedModule{m, s.scope}, err
}

type scopedModule struct {
	wasm.Module
	scope string
}

func (m scopedModule) Instantiate(ctx context.Context, outputs []string) (wasm.Instance, error) {
	return m.Module.Instantiate(wasm.WithScope(ctx, m.scope), outputs)
}

func TestConformanceReusedSandboxes(t *testing.T) {
	engines := []suite.Engine{
		{Name: "wazero", New: func(t testing.TB) wasm.Runtime {
			return scoped{newEngine(t, testConfig().WithReuse(4, time.Minute, 64)), "op\x00ds"}
		}},
		{Name: "wasmer", New: func(t testing.TB) wasm.Runtime {
			return scoped{newEngine(t, testConfig().WithEngine(EngineWasmer).WithReuse(4, time.Minute, 64)), "op\x00ds"}
		}},
	}
	if !haveWasmer {
		engines[1] = suite.Engine{Name: "wasmer", Skip: "the wasmer engine needs -tags wasmer (and cgo)"}
	}
	suite.RunMatrix(t, engines, []suite.Guest{
		{Name: "go", Build: func(t testing.TB) []byte { return goGuest(t, "../testdata/conform/goguest") }},
		{Name: "c", Build: func(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform.c") }},
	})
}

// runIn runs the conformance job's batch in a new instance of m under
// scope and returns the sandbox's process id and the instance.
func runIn(t *testing.T, m wasm.Module, scope string, emit func(wasm.Emission) error) (int, *instance, error) {
	t.Helper()
	ctx := context.Background()
	if scope != "" {
		ctx = wasm.WithScope(ctx, scope)
	}
	inst, err := m.Instantiate(ctx, job.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := inst.(*instance).probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := suite.Record(memory.NewGoAllocator())
	defer rec.Release()
	err = inst.ProcessBatch(ctx, rec, emit)
	_ = inst.Close(ctx)
	return pr.PID, inst.(*instance), err
}

func count(n *int) func(wasm.Emission) error {
	return func(em wasm.Emission) error { *n += len(em.Rows); return nil }
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// ended waits for a sandbox to end; the bound only guards against a hang.
func ended(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("sandbox %d did not end", p.cmd.Process.Pid)
	}
}

// TestReuse: a sandbox serves the next instance of its module and scope,
// and only that: not another scope, not an unscoped instance, not after a
// failure, not past its uses, not past its idle time, not on mock runs.
func TestReuse(t *testing.T) {
	ctx := context.Background()
	bin := cGuest(t)
	compile := func(t *testing.T, cfg Config) wasm.Module {
		m, err := newEngine(t, cfg).Compile(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("same scope", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(4, time.Minute, 64))
		var n1, n2 int
		pid1, _, err1 := runIn(t, m, "a", count(&n1))
		pid2, i2, err2 := runIn(t, m, "a", count(&n2))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if pid1 != pid2 {
			t.Errorf("second instance of scope a ran in %d, not in the waiting sandbox %d", pid2, pid1)
		}
		if n1 != n2 || n1 < 40 {
			t.Errorf("contributions %d then %d", n1, n2)
		}
		if i2.p.uses != 2 {
			t.Errorf("uses %d", i2.p.uses)
		}
	})
	t.Run("other scope or none", func(t *testing.T) {
		e := newEngine(t, testConfig().WithReuse(4, time.Minute, 64))
		m, err := e.Compile(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		pidA, _, _ := runIn(t, m, "a", count(&n))
		pidB, _, _ := runIn(t, m, "b", count(&n))
		pidNone, iNone, _ := runIn(t, m, "", count(&n))
		if pidA == pidB || pidNone == pidA || pidNone == pidB {
			t.Errorf("scopes shared a sandbox: a %d, b %d, none %d", pidA, pidB, pidNone)
		}
		ended(t, iNone.p) // an unscoped sandbox ends with its instance
		if !alive(pidA) || !alive(pidB) {
			t.Error("a waiting sandbox ended early")
		}
		m2, err := e.Compile(ctx, goGuest(t, "../testdata/conform/goguest"))
		if err != nil {
			t.Fatal(err)
		}
		if pid, _, _ := runIn(t, m2, "a", count(&n)); pid == pidA {
			t.Error("another module ran in scope a's sandbox")
		}
	})
	t.Run("failed instance", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(4, time.Minute, 64))
		boom := errors.New("boom")
		pid1, i1, err := runIn(t, m, "a", func(wasm.Emission) error { return boom })
		if err != boom {
			t.Fatalf("err = %v", err)
		}
		ended(t, i1.p)
		var n int
		if pid2, _, err := runIn(t, m, "a", count(&n)); err != nil || pid2 == pid1 {
			t.Errorf("after a failure: pid %d (failed one %d), %v", pid2, pid1, err)
		}
	})
	t.Run("uses", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(4, time.Minute, 2))
		var n int
		pid1, _, _ := runIn(t, m, "a", count(&n))
		pid2, i2, _ := runIn(t, m, "a", count(&n))
		ended(t, i2.p) // its second use was its last
		pid3, _, _ := runIn(t, m, "a", count(&n))
		if pid1 != pid2 || pid3 == pid2 {
			t.Errorf("pids %d %d %d: want two uses of one sandbox, then a new one", pid1, pid2, pid3)
		}
	})
	t.Run("idle time", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(4, 50*time.Millisecond, 64))
		var n int
		_, i1, _ := runIn(t, m, "a", count(&n))
		ended(t, i1.p)
	})
	t.Run("idle limit", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(1, time.Minute, 64))
		var n int
		_, iA, _ := runIn(t, m, "a", count(&n))
		_, iB, _ := runIn(t, m, "b", count(&n))
		ended(t, iB.p) // no room: a's waits
		select {
		case <-iA.p.done:
			t.Error("the one sandbox allowed to wait ended")
		default:
		}
	})
	t.Run("engine close", func(t *testing.T) {
		e, err := NewEngine(ctx, testConfig().WithReuse(4, time.Minute, 64))
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Compile(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		_, i1, _ := runIn(t, m, "a", count(&n))
		e.Close(ctx)
		ended(t, i1.p)
	})
	t.Run("mock runs", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(4, time.Minute, 64).WithDebugOutput(writerFunc(func(p []byte) (int, error) { return len(p), nil })))
		var n int
		_, i1, _ := runIn(t, m, "a", count(&n))
		ended(t, i1.p)
	})
	t.Run("off", func(t *testing.T) {
		m := compile(t, testConfig().WithReuse(0, time.Minute, 64))
		var n int
		_, i1, _ := runIn(t, m, "a", count(&n))
		ended(t, i1.p)
	})
}

// TestReuseHammer: goroutines run instances of three scopes at once, with
// fewer waiting places than scopes: every instance gets its full result,
// and after Close no sandbox is left.
func TestReuseHammer(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, testConfig().WithReuse(2, time.Minute, 5))
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(ctx, cGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	var want int
	runIn(t, m, "", count(&want))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	pids := make(chan int, 64)
	for g := range 8 {
		wg.Go(func() {
			for k := range 6 {
				sctx := wasm.WithScope(ctx, fmt.Sprint("scope-", (g+k)%3))
				inst, err := m.Instantiate(sctx, job.Outputs)
				if err != nil {
					errs <- err
					return
				}
				pids <- inst.(*instance).p.cmd.Process.Pid
				rec := suite.Record(memory.NewGoAllocator())
				n := 0
				err = inst.ProcessBatch(sctx, rec, count(&n))
				rec.Release()
				_ = inst.Close(sctx)
				if err != nil || n != want {
					errs <- fmt.Errorf("goroutine %d run %d: %d contributions (want %d), %v", g, k, n, want, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Error(err)
	}
	distinct := map[int]bool{}
	for p := range pids {
		distinct[p] = true
	}
	t.Logf("48 instances in %d sandboxes", len(distinct))
	if len(distinct) >= 48 {
		t.Error("no sandbox was reused")
	}
	e.Close(ctx)
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		left := 0
		for p := range distinct {
			if alive(p) && !zombie(p) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d sandboxes left after Close", left)
		}
	}
}

// zombie reports whether process pid has ended but not been waited for.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}
