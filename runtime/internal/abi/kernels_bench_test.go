package abi

import (
	"encoding/binary"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchBatch is one 64Ki-row batch shaped like bench/'s air-quality table:
// station (utf8, sorted), year (int64, sorted within a station), pm
// (float64, 2% null).
func benchBatch() arrow.RecordBatch {
	mem := memory.NewGoAllocator()
	const n = 64 << 10
	stations := []string{"Aotizhongxin", "Changping", "Dingling"}
	sb, yb, pb := array.NewStringBuilder(mem), array.NewInt64Builder(mem), array.NewFloat64Builder(mem)
	per := n / len(stations)
	for r := 0; r < n; r++ {
		st := min(r/per, len(stations)-1)
		sb.Append(stations[st])
		yb.Append(2013 + int64((r%per)*5/per))
		if r%50 == 7 {
			pb.AppendNull()
		} else {
			pb.Append(float64(r%997) / 3)
		}
	}
	cols := []arrow.Array{sb.NewArray(), yb.NewArray(), pb.NewArray()}
	schema := arrow.NewSchema([]arrow.Field{{Name: "station", Type: cols[0].DataType()}, {Name: "year", Type: cols[1].DataType()},
		{Name: "pm", Type: cols[2].DataType(), Nullable: true}}, nil)
	return array.NewRecordBatch(schema, cols, n)
}

// BenchmarkKernelsGroup runs kerngroup's kernels (not null, year >= 2014,
// group by station and year, emit pm) on the host alone.
func BenchmarkKernelsGroup(b *testing.B) {
	rec := benchBatch()
	s := NewState(Limits{MaxEmits: 1 << 62, MaxKeyBytes: 4096, MaxKeys: 1 << 20, MaxKeyTotalBytes: 1 << 30}, []string{"out"})
	mem := make([]byte, 64)
	binary.LittleEndian.PutUint64(mem[8:], 2014)
	binary.LittleEndian.PutUint32(mem[16:], 0)
	binary.LittleEndian.PutUint32(mem[20:], 1)
	var sum float64
	b.SetBytes(rec.NumRows())
	for range b.N {
		s.BeginBatch(rec, func(e *Emission) error {
			sum += float64(len(e.Runs))
			return nil
		})
		h, err := s.KFilter(mem, 0, 2, OpNotNull, 0, 0)
		if err == nil {
			h, err = s.KFilter(mem, h, 1, OpGe, 8, 8)
		}
		if err == nil {
			h, err = s.KBucket(mem, h, 16, 2)
		}
		if err == nil {
			err = s.KEmit(0, h, 2)
		}
		if err != nil {
			b.Fatal(err)
		}
		s.EndBatch()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rec.NumRows()), "ns/row")
}
