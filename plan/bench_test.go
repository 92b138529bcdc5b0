package plan

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

var beijingStations = []string{
	"Aotizhongxin", "Changping", "Dingling", "Dongsi", "Guanyuan", "Gucheng",
	"Huairou", "Nongzhanguan", "Shunyi", "Tiantan", "Wanliu", "Wanshouxigong",
}

// beijing builds a batch shaped like the Beijing air-quality data: station
// dictionary<utf8> (12 values), year int64 2013–2017, PM2.5 float64 with
// about 2% nulls.
func beijing(mem memory.Allocator, rows int) arrow.RecordBatch {
	r := rand.New(rand.NewPCG(1, 2))
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	sb := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
	defer sb.Release()
	yb := array.NewInt64Builder(mem)
	defer yb.Release()
	pb := array.NewFloat64Builder(mem)
	defer pb.Release()
	for i := range rows {
		// Rows come station by station, hour by hour, as in the files.
		st := i * len(beijingStations) / rows
		_ = sb.AppendString(beijingStations[st])
		yb.Append(2013 + int64(i%35064)*5/35064)
		if r.IntN(50) == 0 {
			pb.AppendNull()
		} else {
			pb.Append(float64(r.IntN(500)) + 0.5)
		}
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "station", Type: dt, Nullable: true},
		{Name: "year", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	cols := []arrow.Array{sb.NewArray(), yb.NewArray(), pb.NewArray()}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	return array.NewRecordBatch(schema, cols, int64(rows))
}

var beijingSchema = []Field{
	{Name: "station", Type: "dictionary<values=utf8, indices=int32, ordered=false>"},
	{Name: "year", Type: "int64"},
	{Name: "month", Type: "int64"},
	{Name: "PM2.5", Type: "float64"},
}

func beijingPlan(tb testing.TB) *Plan {
	tb.Helper()
	years := []string{"2013", "2014", "2015", "2016", "2017"}
	where, err := ParseExpr("`PM2.5` IS NOT NULL")
	if err != nil {
		tb.Fatal(err)
	}
	lit := Literal{
		Version: 1,
		Where:   &where,
		Outputs: []Output{{
			Name:    "pm25_mean",
			GroupBy: []Expr{colExpr("station"), colExpr("year")},
			Value:   ptr(colExpr("PM2.5")),
		}},
	}
	p, err := Compile(lit, beijingSchema, []OutputSpec{{
		Name: "pm25_mean", Aggregate: "mean", UsesValue: true,
		GroupBy: []GroupSpec{{Values: beijingStations}, {Values: years}},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// BenchmarkEvaluator runs the plan of the benchmark (mean PM2.5 per
// station × year of the rows where PM2.5 is not null) over a 1M-row batch,
// summing per partition as a consumer would, against a native tight loop
// computing the same sums from the same Arrow arrays.
func BenchmarkEvaluator(b *testing.B) {
	const rows = 1 << 20
	rec := beijing(memory.DefaultAllocator, rows)
	defer rec.Release()
	p := beijingPlan(b)
	ev := p.NewEvaluator()

	sums := make([]float64, 60)
	counts := make([]int64, 60)
	var planNs, nativeNs float64
	b.Run("plan", func(b *testing.B) {
		b.SetBytes(rows)
		for b.Loop() {
			clear(sums)
			clear(counts)
			outs, err := ev.Batch(rec)
			if err != nil {
				b.Fatal(err)
			}
			o := outs[0]
			val := o.Value[:len(o.Part)]
			for k, pt := range o.Part {
				if pt >= 0 {
					sums[pt] += val[k]
					counts[pt]++
				}
			}
		}
		planNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(rows/(planNs/1e9), "rows/s")
	})
	planSums := append([]float64(nil), sums...)

	b.Run("batch", func(b *testing.B) { // the evaluator alone
		b.SetBytes(rows)
		for b.Loop() {
			if _, err := ev.Batch(rec); err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(rows/(ns/1e9), "rows/s")
	})

	b.Run("native", func(b *testing.B) {
		b.SetBytes(rows)
		for b.Loop() {
			clear(sums)
			clear(counts)
			nativeSums(rec, sums, counts)
		}
		nativeNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(rows/(nativeNs/1e9), "rows/s")
	})
	for i := range sums {
		if sums[i] != planSums[i] {
			b.Fatalf("partition %d: plan sum %v, native %v", i, planSums[i], sums[i])
		}
	}
	if planNs > 0 && nativeNs > 0 {
		b.Logf("plan/native throughput ratio: %.2f", nativeNs/planNs)
	}
}

// nativeSums is the strong native baseline: integer group codes from the
// dictionary and a year offset, no string keys per row.
func nativeSums(rec arrow.RecordBatch, sums []float64, counts []int64) {
	st := rec.Column(0).(*array.Dictionary)
	dict := st.Dictionary().(*array.String)
	code := make([]int32, dict.Len())
	for i := range code {
		code[i] = -1
		for j, s := range beijingStations {
			if dict.Value(i) == s {
				code[i] = int32(j)
			}
		}
	}
	idx := st.Indices().(*array.Int32).Int32Values()
	years := rec.Column(1).(*array.Int64).Int64Values()
	pm := rec.Column(2).(*array.Float64)
	vals := pm.Float64Values()
	for k, ix := range idx {
		if pm.IsNull(k) {
			continue
		}
		y := years[k] - 2013
		if y < 0 || y >= 5 {
			continue
		}
		g := code[ix]*5 + int32(y)
		sums[g] += vals[k]
		counts[g]++
	}
}

// BenchmarkKernels compares the evaluator's a + b and a > 250 over float64
// columns (chunk by chunk, as Batch runs them) with arrow/compute's kernels
// over the same arrays (see the note in kernels.go).
func BenchmarkKernels(b *testing.B) {
	const rows = 1 << 20
	mem := memory.DefaultAllocator
	fb1, fb2 := array.NewFloat64Builder(mem), array.NewFloat64Builder(mem)
	r := rand.New(rand.NewPCG(3, 4))
	for range rows {
		fb1.Append(r.Float64() * 500)
		fb2.Append(r.Float64() * 500)
	}
	a1, a2 := fb1.NewArray(), fb2.NewArray()
	defer a1.Release()
	defer a2.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Float64}, {Name: "b", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{a1, a2}, rows)
	defer rec.Release()
	fields := []Field{{Name: "a", Type: "float64"}, {Name: "b", Type: "float64"}}
	for _, tc := range []struct{ name, expr, fn string }{
		{name: "add", expr: "a + b", fn: "add_unchecked"},
		{name: "greater", expr: "a > 250", fn: "greater"},
	} {
		lit := Literal{Version: 1, Derive: []Derived{{Name: "x", Expr: mustParse(b, tc.expr)}},
			Outputs: []Output{{Name: "o", GroupBy: []Expr{colExpr("x")}}}}
		p, err := Compile(lit, fields, []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Private: true}}}})
		if err != nil {
			b.Fatal(err)
		}
		ev := p.NewEvaluator()
		if err := ev.bind(rec); err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/plan", func(b *testing.B) {
			b.SetBytes(rows)
			for b.Loop() {
				for lo := 0; lo < rows; lo += chunkRows {
					ev.lo, ev.hi = lo, min(rows, lo+chunkRows)
					ev.stamp++
					ev.eval(p.derived[0])
				}
			}
		})
		b.Run(tc.name+"/compute", func(b *testing.B) {
			ctx := context.Background()
			args := []compute.Datum{compute.NewDatum(a1), compute.NewDatum(a2)}
			if tc.fn == "greater" {
				args[1] = compute.NewDatum(scalar.NewFloat64Scalar(250))
			}
			b.SetBytes(rows)
			for b.Loop() {
				out, err := compute.CallFunction(ctx, tc.fn, nil, args...)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
	}
}
