package abi

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Dense handles: a selection is a bitmap over the batch's rows (bit r%64 of
// word r/64), a grouping that bitmap and ascending, disjoint runs of rows
// that share a key; every set bit of a grouping lies in one of its runs.
// Kernels over them run column at a time, 64 rows per word, and k_emit hands
// the bitmap, the runs and the value column's Arrow buffer to the consumer
// without a contribution per row in memory (Emission, ranged form).

// pool hands out buffers for one batch's handles, reused batch after batch
// (a batch asks for the same sizes in the same order as the one before).
type pool[T any] struct {
	bufs [][]T
	n    int
}

// get returns a zeroed buffer of length n.
func (p *pool[T]) get(n int) []T {
	if p.n < len(p.bufs) && cap(p.bufs[p.n]) >= n {
		b := p.bufs[p.n][:n]
		p.n++
		clear(b)
		return b
	}
	b := make([]T, n)
	if p.n < len(p.bufs) {
		p.bufs[p.n] = b
	} else {
		p.bufs = append(p.bufs, b)
	}
	p.n++
	return b
}

// reset makes every buffer free again (at the end of a batch); a pool that
// grew past what batches use is trimmed.
func (p *pool[T]) reset() {
	if len(p.bufs) > 2*MaxHandles+16 {
		clear(p.bufs)
		p.bufs = p.bufs[:0]
	}
	p.n = 0
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// nwords is the words of a bitmap of n rows.
func nwords(n int) int { return (n + 63) >> 6 }

// loadBitmap reads n bits of an Arrow bitmap src from bit off into dst
// (nwords(n) words); bits past n are zero.
func loadBitmap(dst []uint64, src []byte, off, n int) {
	for w := range dst {
		start := off + 64*w
		i, sh := start>>3, uint(start&7)
		var x uint64
		if i+9 <= len(src) {
			x = binary.LittleEndian.Uint64(src[i:]) >> sh
			if sh != 0 {
				x |= uint64(src[i+8]) << (64 - sh)
			}
		} else {
			for k := 0; k < 64 && 64*w+k < n; k++ {
				j := start + k
				x |= uint64(src[j>>3]>>(uint(j)&7)&1) << uint(k)
			}
		}
		dst[w] = x
	}
	trim(dst, n)
}

// trim clears the bits of b at and past n.
func trim(b []uint64, n int) {
	if r := n & 63; r != 0 && len(b) > 0 {
		b[len(b)-1] &= 1<<uint(r) - 1
	}
}

func count(b []uint64) int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount64(x)
	}
	return n
}

// firstSet is the first set bit of b in [from, to), or -1.
func firstSet(b []uint64, from, to int) int {
	for w := from >> 6; w<<6 < to; w++ {
		x := b[w]
		if w == from>>6 {
			x &= ^uint64(0) << uint(from&63)
		}
		if x != 0 {
			r := w<<6 + bits.TrailingZeros64(x)
			if r < to {
				return r
			}
			return -1
		}
	}
	return -1
}

// allRows is the dense handle 0: every row of the batch.
func (s *State) allRows() vec {
	if s.all == nil {
		s.all = s.words.get(nwords(int(s.rows)))
		for w := range s.all {
			s.all[w] = ^uint64(0)
		}
		trim(s.all, int(s.rows))
	}
	return vec{dense: true, bits: s.all, n: int(s.rows)}
}

// validWords is the bitmap of the rows of col that are not null (and, for
// a dictionary, whose entry is not null), or nil when every row is.
func (s *State) validWords(col arrow.Array) []uint64 {
	b, off, slow := nullBits(col)
	if !slow && b == nil {
		return nil
	}
	n := int(s.rows)
	w := s.words.get(nwords(n))
	if slow {
		for r := 0; r < n; r++ {
			if !isNull(col, r) {
				w[r>>6] |= 1 << uint(r&63)
			}
		}
		return w
	}
	loadBitmap(w, b, off, n)
	return w
}

// dictIndices are the indices of a dictionary column as i32, and a bitmap
// of the rows whose index names an entry (nil when all do).
func (s *State) dictIndices(d *array.Dictionary) ([]int32, []uint64) {
	n := int(s.rows)
	idx := s.i32s.get(n)
	putIndicesInto(idx, d.Indices())
	entries := int32(d.Dictionary().Len())
	var in []uint64
	for r, x := range idx {
		if x < 0 || x >= entries {
			if in == nil {
				in = s.words.get(nwords(n))
				for w := range in {
					in[w] = ^uint64(0)
				}
				trim(in, n)
			}
			in[r>>6] &^= 1 << uint(r&63)
		}
	}
	return idx, in
}

func and(dst, a, b []uint64) {
	for w := range dst {
		dst[w] = a[w] & b[w]
	}
}

// filterDense is KFilter on a dense handle: the kept rows' bitmap, the
// grouping's runs shared.
func (s *State) filterDense(in vec, arr arrow.Array, code, op uint32, arg []byte) (vec, error) {
	out := vec{dense: true, grouped: in.grouped, runs: in.runs, bits: s.words.get(len(in.bits))}
	valid := s.validWords(arr)
	switch op {
	case OpNotNull:
		if valid == nil {
			copy(out.bits, in.bits)
		} else {
			and(out.bits, in.bits, valid)
		}
		out.n = count(out.bits)
		return out, nil
	case OpIsNull:
		if valid != nil {
			for w := range out.bits {
				out.bits[w] = in.bits[w] &^ valid[w]
			}
		}
		out.n = count(out.bits)
		return out, nil
	}
	sel := in.bits
	if valid != nil {
		and(out.bits, in.bits, valid)
		sel = out.bits
	}
	switch code {
	case TypeUTF8:
		a := arr.(*array.String)
		target := string(arg)
		eachSet(out.bits, sel, func(r int) bool { return cmpOp(op, compareString(a.Value(r), target)) })
	case TypeDictUTF8:
		d := arr.(*array.Dictionary)
		dict := d.Dictionary().(*array.String)
		target := string(arg)
		ok := make([]bool, dict.Len())
		for i := range ok {
			ok[i] = cmpOp(op, compareString(dict.Value(i), target))
		}
		idx, named := s.dictIndices(d)
		if named != nil {
			and(out.bits, sel, named)
			sel = out.bits
		}
		eachSet(out.bits, sel, func(r int) bool { return ok[idx[r]] })
	case TypeFloat64:
		if len(arg) != 8 {
			return vec{}, abiErr("filter on a float64 column needs an 8-byte f64 argument, got %d bytes", len(arg))
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(arg))
		cmpWords(out.bits, sel, arr.(*array.Float64).Float64Values(), op, x)
	default:
		if len(arg) != 8 {
			return vec{}, abiErr("filter on a %s column needs an 8-byte i64 argument, got %d bytes", TypeName(code), len(arg))
		}
		x := int64(binary.LittleEndian.Uint64(arg))
		switch a := arr.(type) {
		case *array.Int64:
			cmpWords(out.bits, sel, a.Int64Values(), op, x)
		case *array.Int32:
			cmpWords32(out.bits, sel, a.Int32Values(), op, x)
		case *array.Timestamp:
			cmpWords(out.bits, sel, asInt64(a.TimestampValues()), op, x)
		case *array.Date32:
			cmpWords32(out.bits, sel, asInt32(a.Date32Values()), op, x)
		case *array.Date64:
			cmpWords(out.bits, sel, asInt64(a.Date64Values()), op, x)
		case *array.Boolean:
			vals := s.boolWords(a)
			var m1, m0 uint64
			if cmpOp(op, cmp3(1, x)) {
				m1 = ^uint64(0)
			}
			if cmpOp(op, cmp3(0, x)) {
				m0 = ^uint64(0)
			}
			for w := range out.bits {
				out.bits[w] = sel[w] & (vals[w]&m1 | ^vals[w]&m0)
			}
		}
	}
	out.n = count(out.bits)
	return out, nil
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// boolWords is the values of a bool column as a bitmap.
func (s *State) boolWords(a *array.Boolean) []uint64 {
	w := s.words.get(nwords(int(s.rows)))
	if len(w) > 0 {
		loadBitmap(w, a.Data().Buffers()[1].Bytes(), a.Data().Offset(), int(s.rows))
	}
	return w
}

// eachSet sets in dst the bits of sel whose row passes (dst may be sel).
func eachSet(dst, sel []uint64, pass func(r int) bool) {
	for w, x := range sel {
		var m uint64
		for y := x; y != 0; y &= y - 1 {
			k := bits.TrailingZeros64(y)
			m |= b2u(pass(w<<6+k)) << uint(k)
		}
		dst[w] = m
	}
}

// cmpWords sets dst to the bits of sel whose value passes op x, 64 rows a
// word. NaN passes only OpNe.
func cmpWords[T int32 | int64 | float64](dst, sel []uint64, v []T, op uint32, x T) {
	full := len(v) >> 6
	for w, s := range sel {
		if s == 0 {
			dst[w] = 0
			continue
		}
		var m uint64
		if w < full {
			a := (*[64]T)(v[w<<6:])
			switch op {
			case OpEq:
				m = eqMask(a, x)
			case OpNe:
				m = ^eqMask(a, x)
			case OpLt:
				m = ltMask(a, x)
			case OpLe:
				m = leMask(a, x)
			case OpGt:
				m = gtMask(a, x)
			case OpGe:
				m = geMask(a, x)
			}
		} else {
			for k, y := range v[w<<6:] {
				m |= b2u(passes(op, y, x)) << uint(k)
			}
		}
		dst[w] = s & m
	}
}

// passes reports whether y op x holds (NaN passes only OpNe).
func passes[T int32 | int64 | float64](op uint32, y, x T) bool {
	switch op {
	case OpEq:
		return y == x
	case OpNe:
		return y != x
	case OpLt:
		return y < x
	case OpLe:
		return y <= x
	case OpGt:
		return y > x
	case OpGe:
		return y >= x
	}
	return false
}

// cmpWords32 is cmpWords for 32-bit columns against a 64-bit argument.
func cmpWords32(dst, sel []uint64, v []int32, op uint32, x int64) {
	if x >= math.MinInt32 && x <= math.MaxInt32 {
		cmpWords(dst, sel, v, op, int32(x))
		return
	}
	// Every value compares the same way with x.
	var m uint64
	if cmpOp(op, cmp3(0, x)) {
		m = ^uint64(0)
	}
	for w, s := range sel {
		dst[w] = s & m
	}
}

// The masks of 64 values against x, eight at a time (branch-free).

func eqMask[T int32 | int64 | float64](a *[64]T, x T) uint64 {
	var m uint64
	for k := 0; k < 64; k += 8 {
		c := (*[8]T)(a[k:])
		m |= (b2u(c[0] == x) | b2u(c[1] == x)<<1 | b2u(c[2] == x)<<2 | b2u(c[3] == x)<<3 |
			b2u(c[4] == x)<<4 | b2u(c[5] == x)<<5 | b2u(c[6] == x)<<6 | b2u(c[7] == x)<<7) << uint(k)
	}
	return m
}

func ltMask[T int32 | int64 | float64](a *[64]T, x T) uint64 {
	var m uint64
	for k := 0; k < 64; k += 8 {
		c := (*[8]T)(a[k:])
		m |= (b2u(c[0] < x) | b2u(c[1] < x)<<1 | b2u(c[2] < x)<<2 | b2u(c[3] < x)<<3 |
			b2u(c[4] < x)<<4 | b2u(c[5] < x)<<5 | b2u(c[6] < x)<<6 | b2u(c[7] < x)<<7) << uint(k)
	}
	return m
}

func leMask[T int32 | int64 | float64](a *[64]T, x T) uint64 {
	var m uint64
	for k := 0; k < 64; k += 8 {
		c := (*[8]T)(a[k:])
		m |= (b2u(c[0] <= x) | b2u(c[1] <= x)<<1 | b2u(c[2] <= x)<<2 | b2u(c[3] <= x)<<3 |
			b2u(c[4] <= x)<<4 | b2u(c[5] <= x)<<5 | b2u(c[6] <= x)<<6 | b2u(c[7] <= x)<<7) << uint(k)
	}
	return m
}

func gtMask[T int32 | int64 | float64](a *[64]T, x T) uint64 {
	var m uint64
	for k := 0; k < 64; k += 8 {
		c := (*[8]T)(a[k:])
		m |= (b2u(c[0] > x) | b2u(c[1] > x)<<1 | b2u(c[2] > x)<<2 | b2u(c[3] > x)<<3 |
			b2u(c[4] > x)<<4 | b2u(c[5] > x)<<5 | b2u(c[6] > x)<<6 | b2u(c[7] > x)<<7) << uint(k)
	}
	return m
}

func geMask[T int32 | int64 | float64](a *[64]T, x T) uint64 {
	var m uint64
	for k := 0; k < 64; k += 8 {
		c := (*[8]T)(a[k:])
		m |= (b2u(c[0] >= x) | b2u(c[1] >= x)<<1 | b2u(c[2] >= x)<<2 | b2u(c[3] >= x)<<3 |
			b2u(c[4] >= x)<<4 | b2u(c[5] >= x)<<5 | b2u(c[6] >= x)<<6 | b2u(c[7] >= x)<<7) << uint(k)
	}
	return m
}

// changes sets bit r (r ≥ 1) of chg where row r's value differs from row
// r-1's (a superset of the key changes is fine: equal neighbouring keys
// merge into one run). A word whose values all equal their neighbours (the
// usual case in sorted data) is one shifted memory comparison.
func changes[T int32 | int64 | float64](chg []uint64, v []T) {
	if len(v) < 2 {
		return
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*size)
	for w := range chg {
		base := w << 6
		lo, hi := max(base, 1), min(base+64, len(v))
		if lo >= hi || bytes.Equal(raw[lo*size:hi*size], raw[(lo-1)*size:(hi-1)*size]) {
			continue
		}
		var m uint64
		for r := lo; r < hi; r++ {
			m |= b2u(v[r] != v[r-1]) << uint(r-base)
		}
		chg[w] |= m
	}
}

// stringChanges is changes for a utf8 column. Rows [lo, hi) all equal
// their neighbours exactly when the offsets step by one length L and the
// bytes from row lo-1 to row hi-1 repeat with period L: one comparison of
// the span with itself shifted by L.
func stringChanges(chg []uint64, a *array.String) {
	o := a.ValueOffsets() // into the whole data buffer, slice or not
	var d []byte
	if b := a.Data().Buffers()[2]; b != nil {
		d = b.Bytes()
	}
	n := a.Len()
	for w := range chg {
		base := w << 6
		lo, hi := max(base, 1), min(base+64, n)
		if lo >= hi {
			continue
		}
		l := o[lo] - o[lo-1]
		same := true
		for r := lo; r < hi; r++ {
			if o[r+1]-o[r] != l {
				same = false
				break
			}
		}
		if same && bytes.Equal(d[o[lo-1]+l:o[hi]], d[o[lo-1]:o[hi]-l]) {
			continue
		}
		var m uint64
		for r := lo; r < hi; r++ {
			p, q, e := int(o[r-1]), int(o[r]), int(o[r+1])
			m |= b2u(q-p != e-q || !equalAt(d, p, q, e-q)) << uint(r-base)
		}
		chg[w] |= m
	}
}

// equalAt reports whether d[p:p+l] and d[q:q+l] are equal (p < q).
func equalAt(d []byte, p, q, l int) bool {
	return bytes.Equal(d[p:p+l], d[q:q+l])
}

// keyCol is one column of a dense bucket call.
type keyCol struct {
	arr  arrow.Array
	code uint32
	idx  []int32 // dictionary indices
}

// appendPart appends row r's value of c as a key part (docs/abi.md,
// "Host kernels": k_bucket).
func appendPart(b []byte, c keyCol, r int) []byte {
	str := func(v string) []byte {
		if strings.Contains(v, KeySeparator) {
			return append(b, keyPartString(v)...)
		}
		return append(b, v...)
	}
	switch a := c.arr.(type) {
	case *array.String:
		return str(a.Value(r))
	case *array.Dictionary:
		return str(a.Dictionary().(*array.String).Value(int(c.idx[r])))
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(r), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(r)), 10)
	case *array.Timestamp:
		return strconv.AppendInt(b, int64(a.Value(r)), 10)
	case *array.Date32:
		return strconv.AppendInt(b, int64(a.Value(r)), 10)
	case *array.Date64:
		return strconv.AppendInt(b, int64(a.Value(r)), 10)
	case *array.Float64:
		x := a.Value(r)
		if x == 0 {
			x = 0 // -0 and 0 are one key
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(r))
	}
	panic("abi: no key part for " + TypeName(c.code))
}

// bucketDense is KBucket on a dense handle: the rows not null in any key
// column, in runs of equal keys.
func (s *State) bucketDense(in vec, cols []uint32) (vec, error) {
	n := int(s.rows)
	if len(cols) == 0 {
		id, err := s.intern("")
		if err != nil {
			return vec{}, err
		}
		runs := []Run{}
		if in.n > 0 {
			runs = append(s.runs.get(1)[:0], Run{Start: 0, End: uint32(n), Key: id})
		}
		return vec{dense: true, grouped: true, bits: in.bits, n: in.n, runs: runs}, nil
	}
	sel := s.words.get(len(in.bits))
	copy(sel, in.bits)
	chg := s.words.get(len(in.bits))
	kc := make([]keyCol, len(cols))
	for i, c := range cols {
		arr, code, err := s.column(c)
		if err != nil {
			return vec{}, err
		}
		if code != TypeUTF8 && code != TypeDictUTF8 && code != TypeBool && width(code) == 0 {
			return vec{}, abiErr("bucket by a %s column", TypeName(code))
		}
		kc[i] = keyCol{arr: arr, code: code}
		if valid := s.validWords(arr); valid != nil {
			and(sel, sel, valid)
		}
		switch a := arr.(type) {
		case *array.String:
			stringChanges(chg, a)
		case *array.Dictionary:
			idx, named := s.dictIndices(a)
			if named != nil {
				and(sel, sel, named)
			}
			kc[i].idx = idx
			changes(chg, idx)
		case *array.Int64:
			changes(chg, a.Int64Values())
		case *array.Int32:
			changes(chg, a.Int32Values())
		case *array.Timestamp:
			changes(chg, asInt64(a.TimestampValues()))
		case *array.Date32:
			changes(chg, asInt32(a.Date32Values()))
		case *array.Date64:
			changes(chg, asInt64(a.Date64Values()))
		case *array.Float64:
			changes(chg, a.Float64Values())
		case *array.Boolean:
			v := s.boolWords(a)
			var carry uint64
			for w, x := range v {
				chg[w] |= x ^ (x<<1 | carry)
				carry = x >> 63
			}
		}
	}
	if n > 0 {
		chg[0] |= 1 // a run starts at row 0
	}
	trim(chg, n)
	out := vec{dense: true, grouped: true, bits: sel, n: count(sel)}
	out.runs = s.runs.get(count(chg))[:0]
	// Each stretch between two changes holds one key: a run from its first
	// kept row, merged into the run before when the key is the same.
	key, last := s.keyScratch[:0], s.lastKey[:0]
	lastID := ^uint32(0)
	start := -1
	segment := func(from, to int) error {
		r := firstSet(sel, from, to)
		if r < 0 {
			return nil
		}
		key = key[:0]
		for i, c := range kc {
			if i > 0 {
				key = append(key, KeySeparator...)
			}
			key = appendPart(key, c, r)
		}
		id := lastID
		if lastID == ^uint32(0) || !bytes.Equal(key, last) {
			var ok bool
			if id, ok = s.keyIDs[string(key)]; !ok {
				var err error
				if id, err = s.intern(string(key)); err != nil {
					return err
				}
			}
			last, lastID = append(last[:0], key...), id
		}
		if k := len(out.runs) - 1; k >= 0 && out.runs[k].Key == id {
			out.runs[k].End = uint32(to)
			return nil
		}
		out.runs = append(out.runs, Run{Start: uint32(r), End: uint32(to), Key: id})
		return nil
	}
	for w, x := range chg {
		for ; x != 0; x &= x - 1 {
			q := w<<6 + bits.TrailingZeros64(x)
			if start >= 0 {
				if err := segment(start, q); err != nil {
					return vec{}, err
				}
			}
			start = q
		}
	}
	if start >= 0 {
		if err := segment(start, n); err != nil {
			return vec{}, err
		}
	}
	s.keyScratch, s.lastKey = key, last
	return out, nil
}

// emitDense is KEmit on a dense grouping: a ranged emission of the
// grouping's runs, its rows where col is not null, and col's values.
func (s *State) emitDense(output uint32, v vec, col uint32) error {
	e := &s.emission
	*e = Emission{Output: int(output), Runs: v.runs, Select: v.bits}
	n := v.n
	if col != NoColumn {
		arr, code, err := s.column(col)
		if err != nil {
			return s.fail(err)
		}
		if code == TypeUTF8 || code == TypeDictUTF8 {
			return s.fail(abiErr("k_emit values from a %s column", TypeName(code)))
		}
		if valid := s.validWords(arr); valid != nil {
			sel := s.words.get(len(v.bits))
			and(sel, v.bits, valid)
			e.Select, n = sel, count(sel)
		}
		e.ByRow = s.byRow(arr, code)
	}
	if int64(n) > s.limits.MaxEmits-s.emits {
		return s.fail(limitErr("more than %d contributions", s.limits.MaxEmits))
	}
	s.emits += int64(n)
	if n == 0 {
		return nil
	}
	if err := s.emit(e); err != nil {
		return s.fail(err)
	}
	return nil
}

// byRow is the values of a numeric or bool column as f64, one per row of
// the batch: the Arrow buffer itself for float64.
func (s *State) byRow(arr arrow.Array, code uint32) []float64 {
	if a, ok := arr.(*array.Float64); ok {
		return a.Float64Values()
	}
	out := s.f64s.get(int(s.rows))
	switch a := arr.(type) {
	case *array.Int64:
		for r, x := range a.Int64Values() {
			out[r] = float64(x)
		}
	case *array.Int32:
		for r, x := range a.Int32Values() {
			out[r] = float64(x)
		}
	case *array.Timestamp:
		for r, x := range a.TimestampValues() {
			out[r] = float64(x)
		}
	case *array.Date32:
		for r, x := range a.Date32Values() {
			out[r] = float64(x)
		}
	case *array.Date64:
		for r, x := range a.Date64Values() {
			out[r] = float64(x)
		}
	default:
		get, _ := int64Getter(arr, code)
		for r := range out {
			out[r] = float64(get(r))
		}
	}
	return out
}

// selectDense makes a dense selection of rows listed in ascending order.
func (s *State) selectDense(rows []uint32) vec {
	b := s.words.get(nwords(int(s.rows)))
	for _, r := range rows {
		b[r>>6] |= 1 << (r & 63)
	}
	return vec{dense: true, bits: b, n: len(rows)}
}

// readDense copies up to len(dst)/4 rows (what 0) or keys (what 1) of a
// dense handle from element from into dst (u32 each) and returns how many.
func readDense(v vec, what uint32, from int, dst []byte) int {
	// Find the word holding element from.
	w, seen := 0, 0
	for ; w < len(v.bits); w++ {
		c := bits.OnesCount64(v.bits[w])
		if seen+c > from {
			break
		}
		seen += c
	}
	k, run := 0, 0
	for ; w < len(v.bits) && 4*k < len(dst); w++ {
		for x := v.bits[w]; x != 0 && 4*k < len(dst); x &= x - 1 {
			if seen < from {
				seen++
				continue
			}
			r := uint32(w<<6 + bits.TrailingZeros64(x))
			val := r
			if what == 1 {
				for v.runs[run].End <= r {
					run++
				}
				val = v.runs[run].Key
			}
			binary.LittleEndian.PutUint32(dst[4*k:], val)
			k++
		}
	}
	return k
}
