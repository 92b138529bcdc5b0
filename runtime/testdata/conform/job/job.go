// Package job is the ABI conformance program: every column type read per
// row, and every host kernel. The Go guest (../goguest) runs it under Cove,
// the suite runs it with guest.RunLocal as the reference, and the C guest
// (../c/conform.c) is a line-by-line translation.
package job

import "github.com/covedata/cove/sdk/guest"

// Outputs are the program's outputs.
var Outputs = []string{"rows", "kern"}

// Process is the program.
func Process(b *guest.Batch) error {
	rows, kern := guest.Output("rows"), guest.Output("kern")
	i64, i32, f64 := b.Int64("i64"), b.Int32("i32"), b.Float64("f64")
	s, bo, d := b.String("s"), b.Bool("b"), b.String("d")
	ts, dt := b.Timestamp("ts"), b.Date("dt")
	for i := 0; i < b.Len(); i++ {
		if !i64.IsNull(i) {
			rows.Add(i, guest.Key("i64"), float64(i64.Value(i)))
		}
		if !i32.IsNull(i) {
			rows.Add(i, guest.Key("i32"), float64(i32.Value(i)))
		}
		if !f64.IsNull(i) {
			rows.Add(i, guest.Key("f64"), f64.Value(i))
		}
		if !s.IsNull(i) {
			rows.Count(i, guest.Key("s", s.Value(i)))
		}
		if !bo.IsNull(i) {
			v := "false"
			if bo.Value(i) {
				v = "true"
			}
			rows.Count(i, guest.Key("b", v))
		}
		if !d.IsNull(i) {
			rows.Count(i, guest.Key("d", d.Value(i)))
		}
		if !ts.IsNull(i) {
			rows.Add(i, guest.Key("ts"), float64(ts.Value(i)))
		}
		if !dt.IsNull(i) {
			rows.Add(i, guest.Key("dt"), float64(dt.Days(i)))
		}
	}
	kern.AddColumn(b.All().NotNull("f64").WhereFloat("f64", guest.Gt, 0).GroupBy("s", "i32"), "f64")
	kern.CountRows(b.All().WhereString("d", guest.Eq, "yy").GroupBy("d", "b"))
	kern.AddColumn(b.All().WhereInt("ts", guest.Ge, 2000).WhereInt("i64", guest.Ne, 7).GroupBy("dt"), "i64")
	var even []uint32
	for i := 0; i < b.Len(); i += 2 {
		even = append(even, uint32(i))
	}
	kern.AddColumn(b.Select(even).GroupBy(), "i32")
	kern.AddColumn(b.All().IsNull("s").GroupBy("b"), "ts")
	kern.CountRows(b.All().WhereString("s", guest.Lt, "b").WhereInt("b", guest.Eq, 1).GroupBy("f64"))
	g := b.All().GroupBy("d")
	idx := g.Indices()
	sum := 0
	for _, r := range idx {
		sum += int(r)
	}
	if b.Len() > 0 {
		kern.Add(0, guest.Key("len"), float64(g.Len()))
		kern.Add(0, guest.Key("sumidx"), float64(sum))
		kern.Add(0, guest.Key("keyids"), float64(len(g.KeyIDs())))
	}
	return nil
}

// Data is the suite's batch: 11 rows, nulls in most columns.
var Data = struct {
	Valid  []bool
	I64    []int64
	I32    []int32
	F64    []float64
	S      []string
	B      []bool
	Dict   []string
	DictIx []int32
	TS     []int64 // milliseconds
	DT     []int32
}{
	Valid:  []bool{true, true, false, true, true, false, true, true, true, true, true},
	I64:    []int64{-3, 7, 0, 1 << 40, 7, 0, -9, 12, 7, 100, 5},
	I32:    []int32{1, -2, 0, 3, 3, 0, 1, 1, -2, 3, 1},
	F64:    []float64{0.5, -1.25, 0, 2, 3.5, 0, 1e-3, 0, 7, 2, 1.5},
	S:      []string{"a", "b\x1fc", "", "é", "a", "", "zz", "a", "b\x1fc", "a", ""},
	B:      []bool{true, false, true, true, false, true, false, true, true, false, true},
	Dict:   []string{"x", "yy", "zzz"},
	DictIx: []int32{1, 0, 2, 1, 1, 0, 2, 1, 0, 1, 2},
	TS:     []int64{1000, 2000, 3000, 2500, 1999, 0, 5000, 2000, 100000, -5, 2001},
	DT:     []int32{19000, 19001, 19000, 19002, 19000, 0, 19001, 19001, 19002, 19000, 19003},
}

// Local is rows [from, to) of Data as RunLocal columns.
func Local(from, to int) []guest.LocalColumn {
	d := Data
	v := d.Valid[from:to]
	return []guest.LocalColumn{
		guest.LocalInt64("i64", d.I64[from:to], v),
		guest.LocalInt32("i32", d.I32[from:to], nil),
		guest.LocalFloat64("f64", d.F64[from:to], v),
		guest.LocalString("s", d.S[from:to], v),
		guest.LocalBool("b", d.B[from:to], nil),
		guest.LocalDictString("d", d.Dict, d.DictIx[from:to], v),
		guest.LocalTimestamp("ts", guest.Millisecond, d.TS[from:to], nil),
		guest.LocalDate32("dt", d.DT[from:to], nil),
	}
}
