package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// tcol is a test column: values are Go values, nil for null.
type tcol struct {
	name string
	typ  arrow.DataType
	vals []any
}

var dictUTF8 = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

func date(s string) arrow.Date32 {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return arrow.Date32FromTime(t)
}

func tsUS(s string) arrow.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return arrow.Timestamp(t.UnixMicro())
}

// buildArray builds one column with mem.
func buildArray(mem memory.Allocator, c tcol) arrow.Array {
	b := array.NewBuilder(mem, c.typ)
	defer b.Release()
	for _, v := range c.vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch bb := b.(type) {
		case *array.Int64Builder:
			bb.Append(int64(toInt(v)))
		case *array.Int32Builder:
			bb.Append(int32(toInt(v)))
		case *array.Int8Builder:
			bb.Append(int8(toInt(v)))
		case *array.Uint32Builder:
			bb.Append(uint32(toInt(v)))
		case *array.Float64Builder:
			bb.Append(v.(float64))
		case *array.Float32Builder:
			bb.Append(float32(v.(float64)))
		case *array.StringBuilder:
			bb.Append(v.(string))
		case *array.LargeStringBuilder:
			bb.Append(v.(string))
		case *array.BooleanBuilder:
			bb.Append(v.(bool))
		case *array.Date32Builder:
			bb.Append(v.(arrow.Date32))
		case *array.Date64Builder:
			bb.Append(arrow.Date64FromTime(v.(arrow.Date32).ToTime()))
		case *array.TimestampBuilder:
			bb.Append(v.(arrow.Timestamp))
		case *array.BinaryDictionaryBuilder:
			if err := bb.AppendString(v.(string)); err != nil {
				panic(err)
			}
		default:
			panic(fmt.Sprintf("no builder for %T", b))
		}
	}
	return b.NewArray()
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	}
	panic(fmt.Sprintf("not an int: %T", v))
}

// record builds a batch of cols; the caller releases it.
func record(mem memory.Allocator, cols []tcol) arrow.RecordBatch {
	var fields []arrow.Field
	var arrs []arrow.Array
	rows := 0
	for _, c := range cols {
		fields = append(fields, arrow.Field{Name: c.name, Type: c.typ, Nullable: true})
		arrs = append(arrs, buildArray(mem, c))
		rows = len(c.vals)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func fieldsOf(cols []tcol) []Field {
	var fs []Field
	for _, c := range cols {
		fs = append(fs, Field{Name: c.name, Type: c.typ.String()})
	}
	return fs
}

func mustParse(t testing.TB, sql string) Expr {
	t.Helper()
	e, err := ParseExpr(sql)
	if err != nil {
		t.Fatalf("ParseExpr(%q): %v", sql, err)
	}
	return e
}

// checked returns a checked allocator asserting, at the test's end, that
// everything allocated was released.
func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// keysOf evaluates sql over rec by grouping on it in a private output: per
// row, the expression's key form, or "NULL".
func keysOf(t *testing.T, rec arrow.RecordBatch, fields []Field, sql string) []string {
	t.Helper()
	lit := Literal{Version: 1, Outputs: []Output{{Name: "x", GroupBy: []Expr{mustParse(t, sql)}}}}
	p, err := Compile(lit, fields, []OutputSpec{{Name: "x", GroupBy: []GroupSpec{{Private: true}}}})
	if err != nil {
		t.Fatalf("Compile(%q): %v", sql, err)
	}
	outs, err := p.NewEvaluator().Batch(rec)
	if err != nil {
		t.Fatalf("Batch(%q): %v", sql, err)
	}
	got := make([]string, len(outs[0].Part))
	for k, pt := range outs[0].Part {
		if pt < 0 {
			got[k] = "NULL"
		} else {
			got[k] = outs[0].Keys[pt]
		}
	}
	return got
}
