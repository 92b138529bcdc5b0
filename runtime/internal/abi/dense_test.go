package abi

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// randomBatch makes n rows of every kernel type with nulls, NaN, -0, the
// key separator and runs of equal values, sliced from a larger batch so
// that bitmaps start at an offset.
func randomBatch(rng *rand.Rand, mem memory.Allocator, n int) arrow.RecordBatch {
	pre := rng.IntN(70)
	total := pre + n + rng.IntN(9)
	strs := []string{"", "a", "b", "a\x1fb", "é", "aa", "Aotizhongxin", "Aotizhongxio", "zz"}
	nullP := []float64{0, 0.02, 0.3}[rng.IntN(3)]
	null := func() bool { return rng.Float64() < nullP }
	// runLen keeps values for a while, like sorted data.
	runLen := 1 + rng.IntN(20)
	i64 := array.NewInt64Builder(mem)
	i32 := array.NewInt32Builder(mem)
	f64 := array.NewFloat64Builder(mem)
	str := array.NewStringBuilder(mem)
	bo := array.NewBooleanBuilder(mem)
	dict := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond})
	d32 := array.NewDate32Builder(mem)
	d64 := array.NewDate64Builder(mem)
	var vi int64
	var vs string
	var vf float64
	for r := 0; r < total; r++ {
		if r%runLen == 0 || rng.IntN(10) == 0 {
			vi = int64(rng.IntN(7)) - 3
			vs = strs[rng.IntN(len(strs))]
			vf = []float64{0, math.Copysign(0, -1), 1.5, -2, math.NaN(), 1e300, 3}[rng.IntN(7)]
		}
		add := func(b array.Builder, f func()) {
			if null() {
				b.AppendNull()
			} else {
				f()
			}
		}
		add(i64, func() { i64.Append(vi * 1000003) })
		add(i32, func() { i32.Append(int32(vi)) })
		add(f64, func() { f64.Append(vf) })
		add(str, func() { str.Append(vs) })
		add(bo, func() { bo.Append(vi%2 == 0) })
		add(dict, func() { _ = dict.AppendString(vs) })
		add(ts, func() { ts.Append(arrow.Timestamp(vi)) })
		add(d32, func() { d32.Append(arrow.Date32(vi)) })
		add(d64, func() { d64.Append(arrow.Date64(vi * 86400000)) })
	}
	builders := []array.Builder{i64, i32, f64, str, bo, dict, ts, d32, d64}
	names := []string{"i64", "i32", "f64", "s", "b", "d", "ts", "d32", "d64"}
	var cols []arrow.Array
	var fields []arrow.Field
	for k, b := range builders {
		a := b.NewArray()
		b.Release()
		cols = append(cols, a)
		fields = append(fields, arrow.Field{Name: names[k], Type: a.DataType(), Nullable: true})
	}
	full := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(total))
	for _, c := range cols {
		c.Release()
	}
	defer full.Release()
	return full.NewSlice(int64(pre), int64(pre+n))
}

// step is one kernel call of a random pipeline.
type step struct {
	kind string // filter, bucket, emit, read
	col  uint32
	op   uint32
	arg  []byte
	cols []uint32
}

func randomPipeline(rng *rand.Rand, rec arrow.RecordBatch) []step {
	ncols := uint32(rec.NumCols())
	arg := func(col uint32) []byte {
		code, _ := TypeCode(rec.Column(int(col)).DataType())
		var b [8]byte
		switch code {
		case TypeUTF8, TypeDictUTF8:
			return []byte([]string{"", "a", "a\x1fb", "b", "zz", "Aotizhongxin"}[rng.IntN(6)])
		case TypeFloat64:
			binary.LittleEndian.PutUint64(b[:], math.Float64bits([]float64{0, -2, 1.5, math.NaN(), 3}[rng.IntN(5)]))
		default:
			x := int64(rng.IntN(9)) - 4
			if rng.IntN(8) == 0 {
				x = []int64{math.MaxInt32 + 1, math.MinInt32 - 1, 3000009}[rng.IntN(3)]
			}
			binary.LittleEndian.PutUint64(b[:], uint64(x))
		}
		return b[:]
	}
	var out []step
	filters := func(k int) {
		for range k {
			c := rng.Uint32N(ncols)
			out = append(out, step{kind: "filter", col: c, op: rng.Uint32N(8), arg: arg(c)})
		}
	}
	filters(rng.IntN(3))
	out = append(out, step{kind: "read"})
	var key []uint32
	for range rng.IntN(4) {
		key = append(key, rng.Uint32N(ncols))
	}
	out = append(out, step{kind: "bucket", cols: key})
	filters(rng.IntN(2))
	out = append(out, step{kind: "read"})
	col := uint32(NoColumn)
	if rng.IntN(4) != 0 {
		col = rng.Uint32N(ncols)
	}
	out = append(out, step{kind: "emit", col: col})
	return out
}

// contribution is one expanded contribution, by key name.
type contribution struct {
	row   uint32
	key   string
	value float64
}

// expand lists e's contributions in order.
func expand(s *State, e *Emission) []contribution {
	var out []contribution
	if e.Runs == nil {
		for j, r := range e.Rows {
			out = append(out, contribution{r, s.KeyName(e.Keys[j]), e.Values[j]})
		}
		return out
	}
	for _, run := range e.Runs {
		for r := run.Start; r < run.End; r++ {
			if e.Select[r>>6]&(1<<(r&63)) == 0 {
				continue
			}
			v := 1.0
			if e.ByRow != nil {
				v = e.ByRow[r]
			}
			out = append(out, contribution{r, s.KeyName(run.Key), v})
		}
	}
	return out
}

// runPipeline runs steps from handle start (dense: 0; listed: every row as
// a listed vec) and describes every result.
func runPipeline(rec arrow.RecordBatch, steps []step, listed bool) []string {
	s := NewState(Limits{MaxEmits: 1 << 40, MaxKeyBytes: 64, MaxKeys: 1 << 20, MaxKeyTotalBytes: 1 << 30}, []string{"o"})
	mem := make([]byte, 4096)
	var log []string
	s.BeginBatch(rec, func(e *Emission) error {
		if e.Runs != nil {
			// The ranged form's invariants: ascending disjoint runs, every
			// selected row inside one.
			end := uint32(0)
			for _, r := range e.Runs {
				if r.Start < end || r.End <= r.Start || r.End > uint32(rec.NumRows()) {
					log = append(log, fmt.Sprintf("bad run %v", r))
				}
				end = r.End
			}
			if CountRuns(e.Select, e.Runs) != int64(count(e.Select)) {
				log = append(log, "selected rows outside the runs")
			}
		}
		c := expand(s, e)
		log = append(log, fmt.Sprintf("emit %d: %v", len(c), c))
		return nil
	})
	defer s.EndBatch()
	h := uint32(0)
	if listed {
		rows := make([]uint32, rec.NumRows())
		for i := range rows {
			rows[i] = uint32(i)
		}
		s.handles = append(s.handles, vec{rows: rows})
		h = 1
	}
	grouped := false
	for _, st := range steps {
		var err error
		switch st.kind {
		case "filter":
			copy(mem[64:], st.arg)
			h, err = s.KFilter(mem, h, st.col, st.op, 64, uint32(len(st.arg)))
		case "bucket":
			for i, c := range st.cols {
				binary.LittleEndian.PutUint32(mem[256+4*i:], c)
			}
			h, err = s.KBucket(mem, h, 256, uint32(len(st.cols)))
			grouped = err == nil
		case "emit":
			err = s.KEmit(0, h, st.col)
		case "read":
			n, _ := s.KLen(h)
			var rows, keys []uint32
			from := n / 3
			got, _ := s.KRead(mem, h, 0, from, 1024, 200)
			for i := range got {
				rows = append(rows, binary.LittleEndian.Uint32(mem[1024+4*i:]))
			}
			if grouped {
				got, _ = s.KRead(mem, h, 1, from, 1024, 200)
				for i := range got {
					keys = append(keys, binary.LittleEndian.Uint32(mem[1024+4*i:]))
				}
			}
			names := make([]string, len(keys))
			for i, k := range keys {
				names[i] = s.KeyName(k)
			}
			log = append(log, fmt.Sprintf("len %d rows %v keys %q", n, rows, names))
		}
		if err != nil {
			log = append(log, fmt.Sprintf("%s: %v", st.kind, err))
			break
		}
	}
	keys := make([]string, s.NumKeys())
	for i := range keys {
		keys[i] = s.KeyName(uint32(i))
	}
	return append(log, fmt.Sprintf("keys %q, emits %d", keys, s.Emits()))
}

// TestDenseMatchesListed runs random kernel pipelines on random batches
// from handle 0 (bitmaps and runs) and from a listed handle of the same
// rows (one row and key per element): every result, contribution, key id
// and error must be the same.
func TestDenseMatchesListed(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		n := []int{0, 1, 5, 63, 64, 65, 130, 200 + rng.IntN(300)}[rng.IntN(8)]
		rec := randomBatch(rng, mem, n)
		steps := randomPipeline(rng, rec)
		dense, listed := runPipeline(rec, steps, false), runPipeline(rec, steps, true)
		if !slices.Equal(dense, listed) {
			rec.Release()
			t.Fatalf("case %d (%d rows, %v):\ndense  %q\nlisted %q", i, n, steps, dense, listed)
		}
		rec.Release()
	}
}

// TestSelectAscendingIsDense: k_select of ascending rows makes a bitmap,
// of rows out of order or repeated a listed vec that keeps them as given.
func TestSelectAscendingIsDense(t *testing.T) {
	rec := twoRows()
	defer rec.Release()
	s := NewState(Limits{MaxEmits: 100, MaxKeyBytes: 8, MaxKeys: 8, MaxKeyTotalBytes: 64}, []string{"o"})
	var got []contribution
	s.BeginBatch(rec, func(e *Emission) error { got = append(got, expand(s, e)...); return nil })
	defer s.EndBatch()
	mem := make([]byte, 64)
	for _, c := range []struct {
		rows  []uint32
		dense bool
	}{{[]uint32{0, 1}, true}, {[]uint32{1}, true}, {[]uint32{1, 0}, false}, {[]uint32{1, 1}, false}} {
		for i, r := range c.rows {
			binary.LittleEndian.PutUint32(mem[4*i:], r)
		}
		h, err := s.KSelect(mem, 0, uint32(len(c.rows)))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.handle(h); v.dense != c.dense {
			t.Errorf("rows %v: dense %v", c.rows, v.dense)
		}
		g, err := s.KBucket(mem, h, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		if err := s.KEmit(0, g, 0); err != nil {
			t.Fatal(err)
		}
		var rows []uint32
		for _, x := range got {
			rows = append(rows, x.row)
		}
		if !slices.Equal(rows, c.rows) {
			t.Errorf("rows %v: contributions of rows %v", c.rows, rows)
		}
	}
}

func TestCountRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]uint64, 4)
	for i := range b {
		b[i] = rng.Uint64()
	}
	for from := 0; from <= 256; from += 7 {
		for to := from; to <= 256; to += 5 {
			want := 0
			for r := from; r < to; r++ {
				want += int(b[r>>6] >> (r & 63) & 1)
			}
			if got := countRange(b, from, to); got != want {
				t.Fatalf("[%d,%d): %d, want %d", from, to, got, want)
			}
		}
	}
}

// TestHandleBudget: groupings of keys that change every row cost two
// elements per row, bitmaps of the batch rows/32, listed selections a row
// each: the budget of 16 × rows + 65,536 refuses the same pipelines as
// when every handle was listed.
func TestHandleBudget(t *testing.T) {
	const n = 1 << 17
	b := array.NewInt64Builder(memory.NewGoAllocator())
	for r := range n {
		b.Append(int64(r * 7919 % 1000))
	}
	a := b.NewArray()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "k", Type: a.DataType()}}, nil), []arrow.Array{a}, n)
	a.Release()
	defer rec.Release()
	mem := make([]byte, 64)
	for _, c := range []struct {
		name string
		call func(s *State) (uint32, error)
		max  int // handles made before the limit
	}{
		{"grouping by a key changing every row", func(s *State) (uint32, error) { return s.KBucket(mem, 0, 0, 1) }, (16*n + handleSlack) / (2 * n)},
		{"bitmap selection", func(s *State) (uint32, error) { return s.KFilter(mem, 0, 0, OpNotNull, 0, 0) }, MaxHandles},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewState(Limits{MaxEmits: 1, MaxKeyBytes: 64, MaxKeys: 1 << 20, MaxKeyTotalBytes: 1 << 30}, []string{"o"})
			s.BeginBatch(rec, func(*Emission) error { return nil })
			defer s.EndBatch()
			made := 0
			for {
				if _, err := c.call(s); err != nil {
					if !isKind(err, KindLimit) {
						t.Fatal(err)
					}
					break
				}
				made++
			}
			if made != c.max {
				t.Errorf("%d handles before the limit, want %d", made, c.max)
			}
		})
	}
}
