package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// TestGatherMatchesArrow: gathering rows from per-batch arrays gives what
// arrow-go's Concatenate and compute.Take give (dictionaries decoded to
// utf8), for every type guests are given, with nulls and sliced arrays; and
// scattering them to a permutation puts every row where gathering by the
// inverse permutation does.
func TestGatherMatchesArrow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r := rand.New(rand.NewPCG(5, 6))
	build := func(kind string, n int) arrow.Array {
		var b array.Builder
		switch kind {
		case "int64":
			b = array.NewInt64Builder(mem)
		case "int32":
			b = array.NewInt32Builder(mem)
		case "float64":
			b = array.NewFloat64Builder(mem)
		case "bool":
			b = array.NewBooleanBuilder(mem)
		case "utf8":
			b = array.NewStringBuilder(mem)
		case "dict":
			b = array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String})
		case "date32":
			b = array.NewDate32Builder(mem)
		case "timestamp":
			b = array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
		}
		defer b.Release()
		for range n {
			if r.IntN(7) == 0 {
				b.AppendNull()
				continue
			}
			v := r.IntN(50)
			switch b := b.(type) {
			case *array.Int64Builder:
				b.Append(int64(v) - 20)
			case *array.Int32Builder:
				b.Append(int32(v))
			case *array.Float64Builder:
				b.Append(float64(v) / 3)
			case *array.BooleanBuilder:
				b.Append(v%2 == 0)
			case *array.StringBuilder:
				b.Append(string(rune('a'+v%26)) + "x")
			case *array.BinaryDictionaryBuilder:
				b.AppendString([]string{"Dongsi", "Tiantan", "Wanliu"}[v%3])
			case *array.Date32Builder:
				b.Append(arrow.Date32(v))
			case *array.TimestampBuilder:
				b.Append(arrow.Timestamp(v * 1000))
			}
		}
		return b.NewArray()
	}
	for _, kind := range []string{"int64", "int32", "float64", "bool", "utf8", "dict", "date32", "timestamp"} {
		t.Run(kind, func(t *testing.T) {
			var srcs []arrow.Array
			var where []uint64
			for b := range 4 {
				a := build(kind, 40+b)
				if b == 2 { // a sliced batch
					s := array.NewSlice(a, 3, int64(a.Len()-2))
					a.Release()
					a = s
				}
				srcs = append(srcs, a)
				for row := range a.Len() {
					where = append(where, uint64(b)<<32|uint64(row))
				}
			}
			defer func() {
				for _, a := range srcs {
					a.Release()
				}
			}()
			idx := make([]uint32, 100)
			for i := range idx {
				idx[i] = uint32(r.IntN(len(where)))
			}
			g, err := newGatherer([][]arrow.Array{srcs})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.gather(where, idx[:7]); err != nil { // buffers reused by the next gather
				t.Fatal(err)
			}
			cols, err := g.gather(where, idx)
			if err != nil {
				t.Fatal(err)
			}
			got := cols[0]
			defer got.Release()
			all, err := array.Concatenate(srcs, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer all.Release()
			ib := array.NewUint32Builder(mem)
			ib.AppendValues(idx, nil)
			ia := ib.NewArray()
			ib.Release()
			defer ia.Release()
			want, err := compute.TakeArray(compute.WithAllocator(context.Background(), mem), all, ia)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Release()
			if !arrow.TypeEqual(got.DataType(), gatheredType(want.DataType())) || got.Len() != want.Len() || got.NullN() != want.NullN() {
				t.Fatalf("got %s of %d (%d nulls), want %s of %d (%d nulls)", got.DataType(), got.Len(), got.NullN(), want.DataType(), want.Len(), want.NullN())
			}
			for i := range got.Len() {
				if got.IsNull(i) != want.IsNull(i) || (!got.IsNull(i) && got.ValueStr(i) != want.ValueStr(i)) {
					t.Fatalf("row %d: got %q, want %q", i, got.ValueStr(i), want.ValueStr(i))
				}
			}
			// (got is reused by the next gather: checked above.)
			// Scatter: row i of the batches in order to place perm[i].
			perm := r.Perm(len(where))
			dest := make([]uint32, len(perm))
			inv := make([]uint32, len(perm))
			for i, p := range perm {
				dest[i], inv[p] = uint32(p), uint32(i)
			}
			sc, err := g.scatter(mem, dest)
			if err != nil {
				t.Fatal(err)
			}
			scattered := sc[0]
			defer scattered.Release()
			byInv, err := g.gather(where, inv) // the same rows, gathered
			if err != nil {
				t.Fatal(err)
			}
			defer byInv[0].Release()
			for i := range scattered.Len() {
				a, b := scattered, byInv[0]
				if a.IsNull(i) != b.IsNull(i) || (!a.IsNull(i) && a.ValueStr(i) != b.ValueStr(i)) {
					t.Fatalf("scattered row %d: %q, want %q", i, a.ValueStr(i), b.ValueStr(i))
				}
			}
			if scattered.NullN() != byInv[0].NullN() {
				t.Fatalf("scattered %d nulls, want %d", scattered.NullN(), byInv[0].NullN())
			}
		})
	}
	f := array.NewFloat32Builder(mem)
	f.Append(1)
	a := f.NewArray()
	f.Release()
	defer a.Release()
	if _, err := newGatherer([][]arrow.Array{{a}}); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("a float32 column: %v", err)
	}
}
