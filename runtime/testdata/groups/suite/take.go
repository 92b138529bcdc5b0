package suite

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// concatParts is a record of rec's rows [from, to) of each part, one part
// after the other.
func concatParts(t testing.TB, mem memory.Allocator, rec arrow.RecordBatch, parts [][2]int) arrow.RecordBatch {
	t.Helper()
	cols := make([]arrow.Array, rec.NumCols())
	rows := int64(0)
	for _, p := range parts {
		rows += int64(p[1] - p[0])
	}
	for c := range cols {
		var pieces []arrow.Array
		for _, p := range parts {
			pieces = append(pieces, array.NewSlice(rec.Column(c), int64(p[0]), int64(p[1])))
		}
		a, err := array.Concatenate(pieces, mem)
		for _, x := range pieces {
			x.Release()
		}
		if err != nil {
			t.Fatal(err)
		}
		cols[c] = a
	}
	out := array.NewRecordBatch(rec.Schema(), cols, rows)
	for _, a := range cols {
		a.Release()
	}
	return out
}
