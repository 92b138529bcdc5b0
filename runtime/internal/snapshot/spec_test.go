package snapshot

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/covedata/cove"
)

// specDir is the WebAssembly specification test suite that wazero's module
// (in the module cache) carries, compiled by wast2json; "" when absent.
func specDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Skip("wazero's module not found")
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "internal/integration_test/spectest")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("wazero's spec tests not in the module cache")
	}
	return dir
}

// The proposals whose tests the corpus runs: the standard (v1, v2) and tail
// calls; threads, exception handling and typed function references are
// refused or unknown to the walker, so their modules only check that
// Instrument fails cleanly.
var specSuites = []string{"v1", "v2", "tail-call", "extended-const", "threads", "exception-handling", "typed-function-references"}

type specFile struct {
	Commands []specCommand `json:"commands"`
}

type specCommand struct {
	Type     string     `json:"type"`
	Filename string     `json:"filename"`
	Name     string     `json:"name"`
	Action   specAction `json:"action"`
}

type specAction struct {
	Type   string      `json:"type"`
	Module string      `json:"module"`
	Field  string      `json:"field"`
	Args   []specValue `json:"args"`
}

type specValue struct {
	Type     string          `json:"type"`
	LaneType string          `json:"lane_type"`
	Value    json.RawMessage `json:"value"`
}

// encode turns an argument into wazero's stack words.
func (v specValue) encode() ([]uint64, bool) {
	if v.Type == "v128" {
		var lanes []string
		if json.Unmarshal(v.Value, &lanes) != nil {
			return nil, false
		}
		bits := map[string]int{"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}[v.LaneType]
		if bits == 0 || len(lanes)*bits != 128 {
			return nil, false
		}
		var b [16]byte
		for i, l := range lanes {
			x, err := strconv.ParseUint(l, 10, bits)
			if err != nil {
				return nil, false
			}
			for k := 0; k < bits/8; k++ {
				b[i*bits/8+k] = byte(x >> (8 * k))
			}
		}
		return []uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}, true
	}
	var s string
	if json.Unmarshal(v.Value, &s) != nil {
		return nil, false
	}
	if s == "null" {
		return []uint64{0}, true
	}
	x, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, false
	}
	if v.Type == "externref" || v.Type == "funcref" {
		x++
	}
	return []uint64{x}, true
}

// TestSpecCorpus instruments every module of the specification tests: the
// rewriter never panics; when wazero compiles the original and Instrument
// succeeds, wazero compiles the rewrite; and every assertion of the
// script then gives the same outcome on the original and on the rewrite
// (with M = the declared initial pages, so that memory bounds coincide),
// except where the original's memory grew or starts smaller than one page,
// where accesses between the virtual size and M differ by design.
func TestSpecCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole specification suite")
	}
	dir := specDir(t)
	ctx := context.Background()
	var stats struct{ modules, compiled, instrumented, refused, asserts, excused int }
	refusals := map[string]int{}
	for _, suite := range specSuites {
		scripts, _ := filepath.Glob(filepath.Join(dir, suite, "testdata", "*.json"))
		rt := newRuntime(t)
		host := rt.NewHostModuleBuilder("spectest")
		for _, name := range []string{"print", "print_i32", "print_i64", "print_f32", "print_f64", "print_i32_f32", "print_f64_f64"} {
			var params []api.ValueType
			for _, p := range strings.Split(strings.TrimPrefix(name, "print"), "_")[1:] {
				params = append(params, map[string]api.ValueType{"i32": api.ValueTypeI32, "i64": api.ValueTypeI64, "f32": api.ValueTypeF32, "f64": api.ValueTypeF64}[p])
			}
			host.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(context.Context, []uint64) {}), params, nil).Export(name)
		}
		if _, err := host.Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, script := range scripts {
			js, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			var sf specFile
			if err := json.Unmarshal(js, &sf); err != nil {
				t.Fatalf("%s: %v", script, err)
			}
			var o, in api.Module
			var mod *Module
			compare := false
			for _, c := range sf.Commands {
				if c.Filename != "" && strings.HasSuffix(c.Filename, ".wasm") {
					bin, err := os.ReadFile(filepath.Join(filepath.Dir(script), c.Filename))
					if err != nil {
						continue
					}
					stats.modules++
					closeAll(o, in)
					o, in, mod, compare = nil, nil, nil, false
					m, bin, ok := specModule(t, rt, c.Filename, bin, &stats.compiled, &stats.instrumented, &stats.refused, refusals)
					if !ok || c.Type != "module" {
						continue
					}
					mod = m
					o, in = specInstantiate(rt, bin), specInstantiate(rt, m.Wasm)
					compare = o != nil && in != nil
					continue
				}
				if !compare || c.Action.Module != "" {
					continue
				}
				switch c.Type {
				case "assert_return", "assert_trap", "action":
				default:
					continue
				}
				ro, oknum := specDo(o, c.Action)
				ri, _ := specDo(in, c.Action)
				if !oknum {
					continue
				}
				stats.asserts++
				if ro == ri {
					continue
				}
				if excused(in, mod, ro, ri) {
					stats.excused++
					compare = false
					continue
				}
				t.Errorf("%s %s(%v): original %s, rewritten %s", filepath.Base(script), c.Action.Field, c.Action.Args, ro, ri)
				compare = false
			}
			closeAll(o, in)
			o, in = nil, nil
		}
	}
	t.Logf("%d modules, %d compile, %d instrumented (%d refused), %d assertions compared, %d modules stopped where the virtual size differs",
		stats.modules, stats.compiled, stats.instrumented, stats.refused, stats.asserts, stats.excused)
	t.Logf("refusals: %v", refusals)
}

// specModule instruments one module of the corpus and checks the rewrite
// compiles when the original does.
func specModule(t *testing.T, rt wazero.Runtime, name string, bin []byte, compiled, instrumented, refused *int, refusals map[string]int) (*Module, []byte, bool) {
	ctx := context.Background()
	c, cerr := rt.CompileModule(ctx, bin)
	pages := uint32(1)
	if cerr == nil {
		*compiled++
		_ = c.Close(ctx)
		if m, err := parse(bin); err == nil {
			if m.memories == 0 {
				// Not a guest (guests have a memory), but its code is worth
				// walking: give it an empty memory.
				bin = withMemory(m)
			}
			pages = max(pages, min(m.memMin, 1024))
		}
	}
	mod, err := Instrument(bin, pages)
	if err != nil {
		if !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("%s: error %v does not wrap ErrInvalid", name, err)
		}
		if cerr == nil {
			*refused++
			msg := err.Error()
			if i := strings.Index(msg, " ("); i > 0 {
				msg = msg[:i]
			}
			if i := strings.Index(msg, ":"); i > 0 && len(msg) > 60 {
				msg = msg[:60]
			}
			refusals[msg]++
		}
		return nil, nil, false
	}
	if cerr != nil {
		return nil, nil, false // the rewrite of an invalid module may be anything
	}
	if mod.Layout.GuestPages > 1024 {
		return nil, nil, false
	}
	*instrumented++
	c2, err := rt.CompileModule(ctx, mod.Wasm)
	if err != nil {
		t.Errorf("%s: original compiles, rewrite does not: %v", name, err)
		return nil, nil, false
	}
	_ = c2.Close(ctx)
	return mod, bin, true
}

// withMemory is m's binary with a memory of no pages.
func withMemory(m *module) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	added := false
	for _, s := range m.sections {
		if s.id == secMemory {
			continue // empty
		}
		if !added && s.id != secCustom && sectionOrder[s.id] > sectionOrder[secMemory] {
			out = appendSection(out, secMemory, []byte{1, 0, 0})
			added = true
		}
		out = appendSection(out, s.id, s.body)
	}
	if !added {
		out = appendSection(out, secMemory, []byte{1, 0, 0})
	}
	return out
}

func closeAll(ms ...api.Module) {
	for _, m := range ms {
		if m != nil {
			_ = m.Close(context.Background())
		}
	}
}

func specInstantiate(rt wazero.Runtime, bin []byte) api.Module {
	ctx := context.Background()
	c, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return nil
	}
	m, err := rt.InstantiateModule(ctx, c, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil
	}
	return m
}

// specDo runs an action and describes its outcome.
func specDo(m api.Module, a specAction) (string, bool) {
	switch a.Type {
	case "get":
		g := m.ExportedGlobal(a.Field)
		if g == nil {
			return "", false
		}
		return strconv.FormatUint(g.Get(), 16), true
	case "invoke":
		f := m.ExportedFunction(a.Field)
		if f == nil {
			return "", false
		}
		var args []uint64
		for _, v := range a.Args {
			w, ok := v.encode()
			if !ok {
				return "", false
			}
			args = append(args, w...)
		}
		res, err := f.Call(context.Background(), args...)
		if err != nil {
			if strings.Contains(err.Error(), "stack overflow") || strings.Contains(err.Error(), "call stack") {
				return "", false // exhaustion depends on frame sizes, which the rewrite changes
			}
			return "trap", true
		}
		var s []string
		for _, r := range res {
			s = append(s, strconv.FormatUint(r, 16))
		}
		return strings.Join(s, " "), true
	}
	return "", false
}

// excused reports whether a divergence is one the rewrite makes by design:
// a load past M reads the map rather than trapping (only stores are
// checked), the guest sees fewer pages than M, or it may have grown (the
// rewrite caps growth at M, the original at its maximum).
func excused(in api.Module, mod *Module, ro, ri string) bool {
	if ro == "trap" && ri != "trap" {
		mem, _ := in.Memory().Read(0, in.Memory().Size())
		for _, b := range mem[mod.Layout.MapOffset:] {
			if b > 1 {
				return false // something other than a mark reached the map
			}
		}
		return true
	}
	for _, g := range mod.Globals {
		if g.Size {
			vs := in.ExportedGlobal(g.Name).Get()
			return vs < uint64(mod.Layout.GuestPages) || usesGrow(mod)
		}
	}
	return false
}

// usesGrow reports whether a rewritten module has memory.grow's rewrite
// (an if of type i32 right after subtracting $vs from the cap).
func usesGrow(mod *Module) bool {
	var vs uint32
	for _, g := range mod.Globals {
		if g.Size {
			vs = g.Index
		}
	}
	pattern := appendU32([]byte{opGlobalGet}, vs)
	pattern = append(pattern, opI32Sub)
	return strings.Contains(string(mod.Wasm), string(pattern))
}
