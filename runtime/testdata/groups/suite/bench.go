package suite

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/wasm"
)

// benchUnits is a record of units units of rows rows each: column v the
// values, column dirty the bytes the guest writes per unit.
func benchUnits(units, rows int, dirty int64) (arrow.RecordBatch, []uint32) {
	mem := memory.NewGoAllocator()
	v, d := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
	defer v.Release()
	defer d.Release()
	bounds := make([]uint32, 0, units+1)
	for u := range units {
		bounds = append(bounds, uint32(u*rows))
		for r := range rows {
			v.Append(int64(u*rows + r))
			d.Append(dirty)
		}
	}
	bounds = append(bounds, uint32(units*rows))
	va, da := v.NewArray(), d.NewArray()
	defer va.Release()
	defer da.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}, {Name: "dirty", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{va, da}, int64(units*rows)), bounds
}

// countSink counts contributions.
type countSink struct{ n, failed int }

func (s *countSink) Emit(_ int, e wasm.Emission) error { s.n += len(e.Rows); return nil }
func (s *countSink) Vector(int, int, []float64) error  { return nil }
func (s *countSink) Failed(int) error                  { s.failed++; return nil }

// Bench measures the cost of a unit in per-unit mode with the C guest of
// runtime/testdata/groups/bench.c dirtying a few KiB, 1000 units of 10
// rows per RunGroups: µs per unit, and its parts from GroupStats, the
// restore (dirty pages copied back, globals, host state) and the call
// (the rows encoded into guest memory, cove_alloc, cove_batch).
func Bench(b *testing.B, newRT func(testing.TB) wasm.Runtime) {
	for _, bc := range []struct {
		name  string
		flags []string
		dirty int64
	}{
		{"dirty=0KiB", nil, 0},
		{"dirty=4KiB", nil, 4 << 10},
		// memset as memory.fill: one checked, marked fill instead of a
		// checked, marked store per word.
		{"dirty=4KiB/bulk-memory", []string{"-mbulk-memory"}, 4 << 10},
		{"dirty=64KiB/bulk-memory", []string{"-mbulk-memory"}, 64 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bin, dirty := C(b, "bench", bc.flags...), bc.dirty
			ctx := context.Background()
			mod := compile(b, newRT(b), bin)
			inst, err := mod.InstantiateGroups(ctx, []string{"out"}, wasm.NewGroupConfig().WithMemoryPages(64))
			if err != nil {
				b.Fatal(err)
			}
			defer inst.Close(ctx)
			const units = 1000
			rec, bounds := benchUnits(units, 10, dirty)
			defer rec.Release()
			before := inst.Stats()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				sink := &countSink{}
				if err := inst.RunGroups(ctx, rec, bounds, sink); err != nil {
					b.Fatal(err)
				}
				if sink.n != units || sink.failed != 0 {
					b.Fatalf("%d contributions, %d failed units", sink.n, sink.failed)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			st := inst.Stats()
			n := float64(st.Groups - before.Groups)
			b.ReportMetric(float64(elapsed.Microseconds())/n, "µs/unit")
			b.ReportMetric(float64((st.RestoreTime-before.RestoreTime).Nanoseconds())/n/1e3, "restore-µs/unit")
			b.ReportMetric(float64((st.CallTime-before.CallTime).Nanoseconds())/n/1e3, "call-µs/unit")
			b.ReportMetric(float64(st.RestoredPages-before.RestoredPages)/n, "pages/unit")
			b.ReportMetric(0, "ns/op")
		})
	}
}
