//go:build wasmer

package isolate

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// TestWasmerLoopKilledAtDeadline: wasmer cannot interrupt a guest, so a
// loop that never calls the host ends only by the watchdog's SIGKILL at
// deadline + grace, and reports the deadline.
func TestWasmerLoopKilledAtDeadline(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install Debian's wabt (as .ci/run does)")
	}
	src := filepath.Join(t.TempDir(), "loop.wat")
	if err := os.WriteFile(src, []byte(wat{batch: `(loop $l (br $l)) (i32.const 0)`}.source()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(wat2wasm, "-o", src+".wasm", src).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(src + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	const deadline, grace = 300 * time.Millisecond, 400 * time.Millisecond
	e := newEngine(t, testConfig().WithEngine(EngineWasmer).WithGrace(grace))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	var peak int64
	err = runHostile(ctx, e, bin, memory.NewGoAllocator(), &peak)
	took := time.Since(start)
	if !errors.Is(err, cove.ErrDeadline) || !strings.Contains(err.Error(), "sandbox killed") {
		t.Fatalf("err = %v, want the deadline with the sandbox killed", err)
	}
	// It cannot end before the kill; how soon after depends on the
	// machine's load, so only a hang (far past the kill) fails.
	if took < deadline+grace || took > deadline+grace+10*time.Second {
		t.Errorf("ended after %v, want at deadline + grace (%v), not hanging past it", took, deadline+grace)
	}
	t.Logf("looping wasmer guest killed %v after its start (deadline %v + grace %v)", took, deadline, grace)
}
