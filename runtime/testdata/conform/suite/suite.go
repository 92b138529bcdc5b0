// Package suite runs the ABI conformance program (package job) on a
// wasm.Runtime and compares every contribution with guest.RunLocal's: the
// same suite for the Go guest, the C guest, the wazero and wasmer engines,
// in process and isolated.
package suite

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/runtime/testdata/conform/job"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/sdk/guest"
)

// Record is job.Data as an Arrow record batch: the dictionary column has
// int8 indices, the timestamp is in milliseconds.
func Record(mem memory.Allocator) arrow.RecordBatch {
	d := job.Data
	i64 := array.NewInt64Builder(mem)
	i64.AppendValues(d.I64, d.Valid)
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues(d.I32, nil)
	f64 := array.NewFloat64Builder(mem)
	f64.AppendValues(d.F64, d.Valid)
	s := array.NewStringBuilder(mem)
	s.AppendValues(d.S, d.Valid)
	b := array.NewBooleanBuilder(mem)
	b.AppendValues(d.B, nil)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	db := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
	sb := array.NewStringBuilder(mem)
	sb.AppendValues(d.Dict, nil)
	dictValues := sb.NewStringArray()
	sb.Release()
	if err := db.InsertStringDictValues(dictValues); err != nil {
		panic(err)
	}
	dictValues.Release()
	for i, ix := range d.DictIx {
		if !d.Valid[i] {
			db.AppendNull()
		} else if err := db.AppendString(d.Dict[ix]); err != nil {
			panic(err)
		}
	}
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"})
	for _, v := range d.TS {
		ts.Append(arrow.Timestamp(v))
	}
	date := array.NewDate32Builder(mem)
	for _, v := range d.DT {
		date.Append(arrow.Date32(v))
	}
	builders := []array.Builder{i64, i32, f64, s, b, db, ts, date}
	names := []string{"i64", "i32", "f64", "s", "b", "d", "ts", "dt"}
	var fields []arrow.Field
	var cols []arrow.Array
	for i, bl := range builders {
		a := bl.NewArray()
		bl.Release()
		fields = append(fields, arrow.Field{Name: names[i], Type: a.DataType(), Nullable: true})
		cols = append(cols, a)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(d.I64)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// Reference is what the program contributes on rows [from, to), by RunLocal.
func Reference(t testing.TB, from, to int) []string {
	t.Helper()
	got, err := guest.RunLocal(job.Process, job.Outputs, job.Local(from, to)...)
	if err != nil {
		t.Fatalf("reference run: %v", err)
	}
	var out []string
	for _, c := range got {
		out = append(out, fmt.Sprintf("%s row=%d key=%q value=%g", c.Output, c.Row, c.Key, c.Value))
	}
	slices.Sort(out)
	return out
}

// Cases are the slices of Data the suite runs: non-zero offsets exercise
// bitmap and offset re-basing.
var Cases = []struct {
	Name     string
	From, To int
}{{"whole", 0, 11}, {"offset slice", 3, 10}, {"empty", 2, 2}}

// Engine is a runtime to run the suite on: New makes a fresh one for a test
// (and arranges its Close); when New is nil the engine is not in this build
// and its subtests are skipped with Skip as the reason.
type Engine struct {
	Name string
	New  func(t testing.TB) wasm.Runtime
	Skip string
}

// Guest is a build of the program: Build returns the module (or skips).
type Guest struct {
	Name  string
	Build func(t testing.TB) []byte
}

// RunMatrix runs the suite for every engine and guest, as subtests
// engine/guest: the same suite on every pair.
func RunMatrix(t *testing.T, engines []Engine, guests []Guest) {
	for _, e := range engines {
		t.Run(e.Name, func(t *testing.T) {
			if e.New == nil {
				t.Skip(e.Skip)
			}
			for _, g := range guests {
				t.Run(g.Name, func(t *testing.T) {
					Run(t, e.New(t), g.Build(t))
				})
			}
		})
	}
}

// Run runs the suite on rt with module, the program's build.
func Run(t *testing.T, rt wasm.Runtime, module []byte) {
	t.Helper()
	ctx := context.Background()
	m, err := rt.Compile(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	full := Record(mem)
	defer full.Release()
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			rec := full.NewSlice(int64(c.From), int64(c.To))
			defer rec.Release()
			// Ranged emissions read through Emission.Each, and the same
			// contributions expanded by ProcessBatch, from a second instance.
			var got, listed []string
			ranged := 0
			for _, runs := range []bool{true, false} {
				inst, err := m.Instantiate(ctx, job.Outputs)
				if err != nil {
					t.Fatal(err)
				}
				defer inst.Close(ctx)
				var out []string
				emits := int64(0)
				consume := func(em wasm.Emission) error {
					if em.Runs != nil {
						ranged++
					}
					emits += em.Len()
					return em.Each(func(row, key uint32, v float64) error {
						out = append(out, fmt.Sprintf("%s row=%d key=%q value=%g", job.Outputs[em.Output], row, inst.KeyName(key), v))
						return nil
					})
				}
				if runs {
					err = inst.ProcessBatchRuns(ctx, rec, consume)
				} else {
					err = inst.ProcessBatch(ctx, rec, func(em wasm.Emission) error {
						if em.Runs != nil {
							return fmt.Errorf("ProcessBatch handed a ranged emission")
						}
						return consume(em)
					})
				}
				if err != nil {
					t.Fatal(err)
				}
				if emits != int64(len(out)) || inst.Emits() != emits {
					t.Errorf("Len() sums to %d, Emits() %d, for %d contributions", emits, inst.Emits(), len(out))
				}
				if runs {
					got = out
				} else {
					listed = out
				}
			}
			if !slices.Equal(got, listed) {
				t.Errorf("ProcessBatchRuns and ProcessBatch differ\n runs   %q\n listed %q", got, listed)
			}
			if c.To-c.From > 2 && ranged == 0 {
				t.Errorf("no ranged emission: the host kernels' ranged form is not exercised")
			}
			slices.Sort(got)
			want := Reference(t, c.From, c.To)
			if !slices.Equal(got, want) {
				t.Errorf("contributions differ from RunLocal's\n got %d: %q\nwant %d: %q", len(got), got, len(want), want)
			}
			if c.To > c.From && len(want) < 40 {
				t.Errorf("reference has only %d contributions: the program is not exercised", len(want))
			}
		})
	}
}
