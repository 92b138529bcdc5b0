package isolate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/testdata/conform/job"
	"github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
)

var cacheDir string

func TestMain(m *testing.M) {
	ServeIfChild() // this binary is also the sandbox
	dir, err := os.MkdirTemp("", "cove-isolate-test-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// notices collects the engine's notices.
type notices struct {
	mu  sync.Mutex
	got []string
}

func (n *notices) logf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, format)
}

func testConfig() Config {
	return NewConfig(wasm.NewConfig().WithCompilationCacheDir(cacheDir).WithMaxEmits(10_000).WithMaxKeys(1000).WithMemoryLimitPages(1024)).
		WithCommand(os.Args[0]).WithLogf(func(string, ...any) {})
}

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func goGuest(t testing.TB, dir string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := guestbuild.Cached(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformanceIsolated runs the ABI conformance suite in sandboxes, on
// each engine a sandbox can run (wasmer with -tags wasmer), with the Go and
// the C guest.
func TestConformanceIsolated(t *testing.T) {
	engines := []suite.Engine{
		{Name: "wazero", New: func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) }},
		{Name: "wasmer", New: func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig().WithEngine(EngineWasmer)) }},
	}
	if !haveWasmer {
		engines[1] = suite.Engine{Name: "wasmer", Skip: "the wasmer engine needs -tags wasmer (and cgo)"}
	}
	suite.RunMatrix(t, engines, []suite.Guest{
		{Name: "go", Build: func(t testing.TB) []byte { return goGuest(t, "../testdata/conform/goguest") }},
		{Name: "c", Build: func(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform.c") }},
		{Name: "c-lazy", Build: func(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform_lazy.c") }},
	})
}

func cGuest(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform.c") }

func cGuestAt(t testing.TB, src string) []byte {
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	bin, err := guestbuild.BuildC(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestSandboxSees checks what a sandbox process can reach: its three pipes
// and nothing else, its own network namespace (or a notice saying why
// not), and its rlimits.
func TestSandboxSees(t *testing.T) {
	// Negative control: a descriptor the parent leaks (no FD_CLOEXEC), as a
	// careless library would.
	marker := filepath.Join(t.TempDir(), "leak-marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	leaked, err := syscall.Open(marker, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leaked)
	var n notices
	e := newEngine(t, testConfig().WithLogf(n.logf))
	ctx := context.Background()
	m, err := e.Compile(ctx, goGuest(t, "../testdata/conform/goguest"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, job.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	pr, err := inst.(*instance).probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox pid %d: fds %v, netns %s, RLIMIT_AS %d MiB, RLIMIT_CPU %d s; isolation: %s",
		pr.PID, pr.FDs, pr.NetNS, pr.AddressSpace>>20, pr.CPUSeconds, e.Isolation())
	// Descriptors the sandbox's Go runtime opened itself have FD_CLOEXEC;
	// any other one was inherited.
	for _, fd := range pr.FDs {
		num, target, _ := strings.Cut(fd, "=")
		switch {
		case num == "0" || num == "1" || num == "2":
			if !strings.HasPrefix(target, "pipe:") {
				t.Errorf("fd %s is %s, want a pipe", num, target)
			}
		case strings.HasSuffix(target, "(inherited)"):
			t.Errorf("sandbox inherited fd %s", fd)
		}
	}
	if strings.Contains(strings.Join(pr.FDs, " "), "leak-marker") {
		t.Errorf("the parent's leaked descriptor reached the sandbox: %v", pr.FDs)
	}
	if want := uint64(1024)*65536 + DefaultAddressSpaceSlack; pr.AddressSpace != want {
		t.Errorf("RLIMIT_AS = %d, want %d", pr.AddressSpace, want)
	}
	if pr.CPUSeconds == 0 || pr.CPUSeconds > 3600 {
		t.Errorf("RLIMIT_CPU = %d", pr.CPUSeconds)
	}
	mine, _ := os.Readlink("/proc/self/ns/net")
	switch {
	case strings.HasPrefix(e.Isolation(), "new"):
		if pr.NetNS == mine {
			t.Errorf("sandbox shares the network namespace %s despite %q", mine, e.Isolation())
		}
	default:
		if len(n.got) != 1 || !strings.Contains(e.Isolation(), "refused") {
			t.Errorf("no namespace and no notice: isolation %q, notices %q", e.Isolation(), n.got)
		}
	}
}

// TestNoNamespaceNotice: where the namespace is off, nothing is logged and
// Isolation says so; the fallback path (namespace refused) is covered by
// TestSandboxSees wherever the OS refuses.
func TestNoNamespace(t *testing.T) {
	var n notices
	e := newEngine(t, testConfig().WithNetworkNamespace(false).WithLogf(n.logf))
	if _, err := e.Compile(context.Background(), goGuest(t, "../testdata/conform/goguest")); err != nil {
		t.Fatal(err)
	}
	if e.Isolation() != "shared network namespace" || len(n.got) != 0 {
		t.Errorf("isolation %q, notices %q", e.Isolation(), n.got)
	}
}

func TestEmitErrorKillsSandbox(t *testing.T) {
	e := newEngine(t, testConfig())
	ctx := context.Background()
	m, err := e.Compile(ctx, goGuest(t, "../testdata/conform/goguest"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, job.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	mem := memory.NewGoAllocator()
	rec := suite.Record(mem)
	defer rec.Release()
	mine := errors.New("enclave full")
	if err := inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return mine }); err != mine {
		t.Fatalf("err = %v, want the callback's error unchanged", err)
	}
	if err := inst.ProcessBatch(ctx, rec, func(wasm.Emission) error { return nil }); !errors.Is(err, cove.ErrGuest) {
		t.Fatalf("second batch: %v", err)
	}
	if st := inst.(*instance).p.cmd.ProcessState; st == nil {
		t.Error("sandbox still running after a failure")
	}
}

func TestDebugOutputIsolated(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	e := newEngine(t, testConfig().WithDebugOutput(w))
	ctx := context.Background()
	_, err := e.Compile(ctx, []byte("\x00asm\x01\x00\x00\x00"))
	if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "no export cove_batch") {
		t.Fatalf("empty module: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
