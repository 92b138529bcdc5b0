package suite

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/testdata/conform/job"
	conform "github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// conformGroups are groups of the conformance data: rows [from, to).
var conformGroups = [][2]int{{0, 3}, {3, 4}, {4, 4}, {4, 11}, {2, 9}}

// Conform runs the ABI conformance program (runtime/testdata/conform) per
// group in one instance, every group of conformGroups in one RunGroups,
// twice: each group's contributions must be the program's reference on
// those rows (the Go SDK's RunLocal), kernels, lazy columns and keys
// included.
func Conform(t *testing.T, rt wasm.Runtime, module []byte) {
	ctx := context.Background()
	mod := compile(t, rt, module)
	inst, err := mod.InstantiateGroups(ctx, job.Outputs, wasm.NewGroupConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full := conform.Record(mem)
	defer full.Release()
	// One record holding the groups one after the other.
	var parts [][2]int
	for range 2 {
		parts = append(parts, conformGroups...)
	}
	bounds := []uint32{0}
	for _, p := range parts {
		bounds = append(bounds, bounds[len(bounds)-1]+uint32(p[1]-p[0]))
	}
	rec := concatParts(t, mem, full, parts)
	defer rec.Release()
	got := make([][]string, len(parts))
	sink := &conformSink{inst: inst, bounds: bounds, got: got}
	if err := inst.RunGroups(ctx, rec, bounds, sink); err != nil {
		t.Fatal(err)
	}
	for g, p := range parts {
		slices.Sort(got[g])
		if want := conform.Reference(t, p[0], p[1]); !slices.Equal(got[g], want) {
			t.Errorf("group %d, rows [%d,%d):\n got  %q\n want %q", g, p[0], p[1], got[g], want)
		}
	}
	if st := inst.Stats(); st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

type conformSink struct {
	inst   wasm.GroupInstance
	bounds []uint32
	got    [][]string
	failed []int
}

func (s *conformSink) Emit(g int, e wasm.Emission) error {
	for j, row := range e.Rows {
		s.got[g] = append(s.got[g], fmt.Sprintf("%s row=%d key=%q value=%g", job.Outputs[e.Output], row-s.bounds[g], s.inst.KeyName(e.Keys[j]), e.Values[j]))
	}
	return nil
}
func (s *conformSink) Vector(int, int, []float64) error {
	return fmt.Errorf("a vector for a contribution output")
}
func (s *conformSink) Failed(g int) error { return fmt.Errorf("group %d failed", g) }
