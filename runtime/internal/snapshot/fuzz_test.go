package snapshot

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/covedata/cove"
)

var (
	fuzzOnce sync.Once
	fuzzRT   wazero.Runtime
)

// compiles reports whether wazero (interpreter, the standard features and
// tail calls) accepts bin.
func compiles(bin []byte) bool {
	fuzzOnce.Do(func() {
		fuzzRT = wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter().
			WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall))
	})
	c, err := fuzzRT.CompileModule(context.Background(), bin)
	if err != nil {
		return false
	}
	_ = c.Close(context.Background())
	return true
}

// FuzzInstrument: for any bytes and guest size, Instrument returns an error
// wrapping cove.ErrInvalid or a module; when wazero accepts the input, it
// accepts the rewrite too. It never panics.
func FuzzInstrument(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.wasm")
	more, _ := filepath.Glob("testdata/refuse/*.wasm")
	for _, s := range append(append(seeds, more...), "../../../examples/c/airquality/job.wasm") {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(4))
	}
	if fz := flag.Lookup("test.fuzz"); fz != nil && fz.Value.String() != "" {
		// Fuzzing: start from the specification tests' modules too (the
		// mutations that keep a module's structure reach the walker).
		if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output(); err == nil {
			dir := filepath.Join(strings.TrimSpace(string(out)), "internal/integration_test/spectest")
			for _, suite := range []string{"v2", "tail-call"} {
				files, _ := filepath.Glob(filepath.Join(dir, suite, "testdata", "*.wasm"))
				for _, s := range files {
					if b, err := os.ReadFile(s); err == nil && len(b) <= 4096 {
						f.Add(b, uint32(2))
					}
				}
			}
		}
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"), uint32(1))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01"), uint32(MaxGuestPages))
	f.Fuzz(func(t *testing.T, bin []byte, pages uint32) {
		pages %= MaxGuestPages + 2 // mostly valid, sometimes 0 or one too many
		if pages > 64 && pages < MaxGuestPages {
			pages %= 64 // keep wazero's allocations small
		}
		m, err := Instrument(bin, pages)
		if err != nil {
			if !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("error %v does not wrap cove.ErrInvalid", err)
			}
			return
		}
		sizes := 0
		for _, g := range m.Globals {
			if g.Size {
				sizes++
			}
		}
		if sizes != 1 || m.Layout.GuestPages != pages {
			t.Fatalf("layout %+v, globals %+v", m.Layout, m.Globals)
		}
		if pages <= 64 && compiles(bin) && !compiles(m.Wasm) {
			t.Fatalf("wazero compiles the input but not its rewrite")
		}
	})
}
