// Package suite attacks the per-unit and block modes of a wasm.Runtime
// (Module.InstantiateGroups) and its planning call (Module.Plan) with
// hostile guests: the same suite for the in-process engine (runtime/wasm)
// and the sandboxed one (runtime/isolate). Its guests are the WebAssembly
// text and C files of the folder above, and modules written inline.
package suite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/wasm"
)

// dir is the folder of the guests' sources.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

var watCache sync.Map // sha256 of the source → []byte

// WAT compiles WebAssembly text with wat2wasm (skips without it), once per
// source.
func WAT(t testing.TB, src string) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte(src))
	if b, ok := watCache.Load(sum); ok {
		return b.([]byte)
	}
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install Debian's wabt (as .ci/run does)")
	}
	path := filepath.Join(t.TempDir(), "m.wat")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(wat2wasm, "-o", path+".wasm", path).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s\n%s", err, out, src)
	}
	b, err := os.ReadFile(path + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	watCache.Store(sum, b)
	return b
}

// WATFile is WAT of runtime/testdata/groups/<name>.wat.
func WATFile(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir(), name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	return WAT(t, string(src))
}

var cCache sync.Map // name and flags → []byte

// C builds runtime/testdata/groups/<name>.c with clang (skips without it),
// with guestbuild's flags and then flags.
func C(t testing.TB, name string, flags ...string) []byte {
	t.Helper()
	id := strings.Join(append([]string{name}, flags...), " ")
	if b, ok := cCache.Load(id); ok {
		return b.([]byte)
	}
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	// BuildC passes its arguments to clang after its own flags.
	b, err := guestbuild.BuildC(ctx, append(flags, filepath.Join(dir(), name+".c"))...)
	if err != nil {
		t.Fatal(err)
	}
	cCache.Store(id, b)
	return b
}

// Record is a record of int64 column "v" holding the groups one after the
// other, and the groups' bounds.
func Record(groups [][]int64) (arrow.RecordBatch, []uint32) {
	b := array.NewInt64Builder(memory.NewGoAllocator())
	defer b.Release()
	bounds := []uint32{0}
	for _, g := range groups {
		b.AppendValues(g, nil)
		bounds = append(bounds, bounds[len(bounds)-1]+uint32(len(g)))
	}
	a := b.NewArray()
	defer a.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{a}, int64(a.Len())), bounds
}

// Result is what one group gave: its contributions ("output row key
// value", rows counted from the group's first), its vectors, or failed.
type Result struct {
	Failed   bool
	Contribs []string
	Vectors  map[int][]float64
}

func (r *Result) String() string {
	if r == nil {
		return "<nothing>"
	}
	if r.Failed {
		return "failed"
	}
	return fmt.Sprintf("%v %v", r.Contribs, r.Vectors)
}

// Same reports whether two groups gave the same.
func Same(a, b *Result) bool { return a.String() == b.String() }

// Sink keeps every group's results and checks the sink contract: groups
// in order, nothing after Failed, rows within their group.
type Sink struct {
	t       testing.TB
	keyName func(uint32) string
	bounds  []uint32
	Res     []*Result
	last    int
}

// NewSink is a Sink for a run of bounds whose keys keyName resolves.
func NewSink(t testing.TB, keyName func(uint32) string, bounds []uint32) *Sink {
	return &Sink{t: t, keyName: keyName, bounds: bounds, Res: make([]*Result, max(len(bounds)-1, 0)), last: -1}
}

func (s *Sink) at(g int) *Result {
	if g < s.last || g >= len(s.Res) {
		s.t.Errorf("sink: group %d after group %d (of %d)", g, s.last, len(s.Res))
		return &Result{}
	}
	s.last = g
	if s.Res[g] == nil {
		s.Res[g] = &Result{}
	}
	if s.Res[g].Failed {
		s.t.Errorf("sink: group %d gave results after it failed", g)
	}
	return s.Res[g]
}

// Emit implements wasm.GroupSink.
func (s *Sink) Emit(g int, e wasm.Emission) error {
	r := s.at(g)
	for j, row := range e.Rows {
		if row < s.bounds[g] || row >= s.bounds[g+1] {
			s.t.Errorf("sink: group %d emits row %d outside [%d,%d)", g, row, s.bounds[g], s.bounds[g+1])
		}
		r.Contribs = append(r.Contribs, fmt.Sprintf("%d %d %q %v", e.Output, row-s.bounds[g], s.keyName(e.Keys[j]), e.Values[j]))
	}
	return nil
}

// Vector implements wasm.GroupSink.
func (s *Sink) Vector(g, o int, v []float64) error {
	r := s.at(g)
	if r.Vectors == nil {
		r.Vectors = map[int][]float64{}
	}
	if _, ok := r.Vectors[o]; ok {
		s.t.Errorf("sink: group %d gave output %d's vector twice", g, o)
	}
	r.Vectors[o] = slices.Clone(v)
	return nil
}

// Failed implements wasm.GroupSink.
func (s *Sink) Failed(g int) error {
	r := s.at(g)
	if len(r.Contribs) > 0 || len(r.Vectors) > 0 {
		s.t.Errorf("sink: group %d failed after it gave results", g)
	}
	r.Failed = true
	return nil
}

// Run runs groups through inst and returns each group's result.
func Run(t testing.TB, inst wasm.GroupInstance, groups [][]int64) []*Result {
	t.Helper()
	rec, bounds := Record(groups)
	defer rec.Release()
	sink := NewSink(t, inst.KeyName, bounds)
	if err := inst.RunGroups(context.Background(), rec, bounds, sink); err != nil {
		t.Fatalf("RunGroups: %v", err)
	}
	for g, r := range sink.Res {
		if r == nil {
			sink.Res[g] = &Result{} // a group that gave nothing
		}
	}
	return sink.Res
}

// Oracle runs each group alone in a fresh instance of mod.
func Oracle(t testing.TB, mod wasm.Module, outputs []string, cfg wasm.GroupConfig, groups [][]int64) []*Result {
	t.Helper()
	out := make([]*Result, len(groups))
	for g, rows := range groups {
		inst, err := mod.InstantiateGroups(context.Background(), outputs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out[g] = Run(t, inst, [][]int64{rows})[0]
		_ = inst.Close(context.Background())
	}
	return out
}

// CheckOrders runs groups rounds times through inst, in order and then in
// random orders, and checks every group's result against want (the
// oracle's); it returns the number of groups compared.
func CheckOrders(t testing.TB, inst wasm.GroupInstance, want []*Result, groups [][]int64, rounds int, rng *rand.Rand) int {
	t.Helper()
	n := 0
	for round := range rounds {
		perm := rng.Perm(len(groups))
		if round == 0 {
			slices.Sort(perm)
		}
		shuffled := make([][]int64, len(groups))
		for k, g := range perm {
			shuffled[k] = groups[g]
		}
		got := Run(t, inst, shuffled)
		for k, g := range perm {
			n++
			if !Same(got[k], want[g]) {
				t.Errorf("round %d: group %d (at %d): got %v, alone %v", round, g, k, got[k], want[g])
			}
		}
	}
	return n
}

// LeakyGroups are n groups of one to three rows of values below 2^20.
func LeakyGroups(rng *rand.Rand, n int) [][]int64 {
	groups := make([][]int64, n)
	for g := range groups {
		for range 1 + rng.IntN(3) {
			groups[g] = append(groups[g], rng.Int64N(1<<20))
		}
	}
	return groups
}

func compile(t testing.TB, rt wasm.Runtime, bin []byte) wasm.Module {
	t.Helper()
	m, err := rt.Compile(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
