package plan

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/covedata/cove"
)

// chunkRows is how many rows the evaluator computes at a time: every
// intermediate vector of a chunk stays in cache (a float64 vector is 32 KiB).
// A multiple of 64.
const chunkRows = 4096

// OutputBatch is what one output receives from one batch.
type OutputBatch struct {
	// Part is, per row, the row's partition: for public partitions the
	// row-major index over the group_by parts' values (first part
	// outermost); for private partitions an index into Keys; -1 when the
	// row contributes nothing (filtered out, a null part or value, a value
	// not among the public ones).
	Part []int32
	// Keys are, for private partitions, this batch's distinct keys (parts
	// formatted and joined by U+001F), in order of first appearance.
	Keys []string
	// Value is, per row, the contributed value, meaningful where Part >= 0;
	// nil when the output takes no value (a count).
	Value []float64
}

// Evaluator runs a plan over record batches. It reuses its buffers between
// batches and is not safe for concurrent use; make one per goroutine.
type Evaluator struct {
	p      *Plan
	cols   []colState
	st     []nodeState
	outs   []OutputBatch
	ost    []outState
	stamp  uint64 // chunk number, for per-chunk memos
	bstamp uint64 // batch number, for per-batch memos
	lo, hi int
	rows   int
	sel    []uint8 // the plan's where, this chunk (nil: every row)
	selBuf []uint8
	mask   []uint8
	ctx    context.Context
}

// nodeState is one node's evaluation state.
type nodeState struct {
	stamp uint64
	res   vec
	buf   buffers
	argv  []vec
	// Materialized form of a dictionary-form result.
	fstamp uint64
	flat   vec
	fbuf   buffers
	// Dictionary-mapped result: the node over a dictionary's entries.
	dstamp uint64
	dres   vec
	dbuf   buffers
	// A literal broadcast to litN rows.
	lit  vec
	lbuf buffers
	litN int
}

type outState struct {
	part   []int32
	value  []float64
	direct bool // Value is a float64 column's own buffer
	parts  []partState
	// private outputs
	keys   []string
	pairs  map[uint64]int32
	tuples map[string]int32
	tkey   []byte
	ids    [][]int32
	xs     []*vec
	tuple  []int32
}

// NewEvaluator returns an evaluator of p.
func (p *Plan) NewEvaluator() *Evaluator {
	e := &Evaluator{
		p:    p,
		cols: make([]colState, len(p.cols)),
		st:   make([]nodeState, p.nnodes),
		outs: make([]OutputBatch, len(p.outs)),
		ost:  make([]outState, len(p.outs)),
		ctx:  context.Background(),
	}
	for i := range e.ost {
		e.ost[i].parts = make([]partState, len(p.outs[i].parts))
		e.ost[i].ids = make([][]int32, len(p.outs[i].parts))
	}
	return e
}

// Batch evaluates the plan over rec. Columns are found by name; a missing
// column, or one whose Arrow type does not map to the plan's type of it, is
// an error wrapping cove.ErrInvalid. No data value makes Batch fail. The
// result, one OutputBatch per output in the order given to Compile, is
// valid until the next call; a Value may alias rec's buffers.
func (e *Evaluator) Batch(rec arrow.RecordBatch) ([]OutputBatch, error) {
	if err := e.bind(rec); err != nil {
		return nil, err
	}
	n := e.rows
	e.bstamp++
	for i := range e.p.outs {
		o := &e.p.outs[i]
		os := &e.ost[i]
		os.part = grow(os.part, n)
		ob := OutputBatch{Part: os.part}
		if o.value != nil {
			f, ok := e.directValue(o.value)
			os.direct = ok
			if ok {
				ob.Value = f
			} else {
				os.value = grow(os.value, n)
				ob.Value = os.value
			}
		}
		if o.private {
			e.resetPrivate(os)
		}
		e.outs[i] = ob
	}
	for lo := 0; lo < n; lo += chunkRows {
		e.lo, e.hi = lo, min(n, lo+chunkRows)
		e.stamp++
		e.chunk()
	}
	for i := range e.p.outs {
		o := &e.p.outs[i]
		switch {
		case !o.private:
		case len(o.parts) == 1 && o.parts[0].index == nil:
			e.outs[i].Keys = e.ost[i].parts[0].names
		default:
			e.outs[i].Keys = e.ost[i].keys
		}
	}
	return e.outs, nil
}

// chunk evaluates rows [e.lo, e.hi).
func (e *Evaluator) chunk() {
	rows := e.hi - e.lo
	e.sel = nil
	if e.p.where != nil {
		w := e.flatOf(e.p.where)
		e.selBuf = grow(e.selBuf, rows)
		e.sel = truth(e.selBuf, w)
	}
	for i := range e.p.outs {
		e.output(i, rows)
	}
}

// truth returns, per row, whether a bool vec is true (valid and set): its
// values themselves when it has no nulls, else their AND with validity in
// dst.
func truth(dst []uint8, x *vec) []uint8 {
	if x.v == nil {
		return x.b
	}
	return andInto(dst[:len(x.b)], x.b, x.v)
}

// andMask clears mask where m (nil: all set) is 0.
func andMask(mask, m []uint8) {
	if m == nil {
		return
	}
	andBytes(mask, mask, m)
}

func (e *Evaluator) output(i, rows int) {
	o := &e.p.outs[i]
	os := &e.ost[i]
	ob := &e.outs[i]
	e.mask = grow(e.mask, rows)
	mask := e.mask
	if e.sel != nil {
		copy(mask, e.sel)
	} else {
		fill(mask, 1)
	}
	if o.where != nil {
		w := e.flatOf(o.where)
		andMask(mask, w.b)
		andMask(mask, w.v)
	}
	if o.value != nil {
		x := e.flatOf(o.value)
		andMask(mask, x.v)
		if !os.direct {
			copy(ob.Value[e.lo:e.hi], x.f)
		}
	}
	part := os.part[e.lo:e.hi]
	if o.private {
		e.privateParts(o, os, part, mask)
	} else {
		e.publicParts(o, os, part, mask)
	}
	applyMask(part, mask)
}

// applyMask sets part to -1 where mask is 0, skipping eight rows at a time
// where all are kept.
func applyMask(part []int32, mask []uint8) {
	const ones = 0x0101010101010101
	mask = mask[:len(part)]
	k := 0
	for ; k+8 <= len(part); k += 8 {
		if binary.LittleEndian.Uint64(mask[k:]) == ones {
			continue
		}
		p, m := part[k:k+8:k+8], mask[k:k+8:k+8]
		for j := range p {
			p[j] |= int32(m[j]) - 1
		}
	}
	for ; k < len(part); k++ {
		part[k] |= int32(mask[k]) - 1
	}
}

// directValue reports whether a value expression is a float64 column read
// as it is: then Value is the column's own buffer.
func (e *Evaluator) directValue(n *node) ([]float64, bool) {
	for n.op == opRef {
		n = e.p.derived[n.ref]
	}
	if n.op != opCol || n.t != tFloat {
		return nil, false
	}
	return e.cols[n.ref].f[:e.rows], true
}

// eval returns n's value over the current chunk, computing it once.
func (e *Evaluator) eval(n *node) *vec {
	s := &e.st[n.id]
	if s.stamp == e.stamp {
		return &s.res
	}
	rows := e.hi - e.lo
	switch n.op {
	case opLit:
		s.res = e.litVec(n, rows)
	case opCol:
		s.res = e.colVec(n.ref)
	case opRef:
		s.res = *e.eval(e.p.derived[n.ref])
	default:
		s.res = e.evalOp(n, s, rows)
	}
	s.stamp = e.stamp
	return &s.res
}

// flatOf returns n's value in flat form.
func (e *Evaluator) flatOf(n *node) *vec {
	x := e.eval(n)
	if !x.isDict() {
		return x
	}
	s := &e.st[n.id]
	if s.fstamp != e.stamp {
		s.flat = gather(n.t, x, &s.fbuf)
		s.fstamp = e.stamp
	}
	return &s.flat
}

func (e *Evaluator) evalOp(n *node, s *nodeState, rows int) vec {
	args := s.argv[:0]
	for _, a := range n.args {
		args = append(args, *e.eval(a))
	}
	s.argv = args
	if strict(n.op) {
		// A strict op whose only non-literal operands are one dictionary
		// column's values is computed once per batch over the dictionary's
		// entries; rows then index the result.
		src, ok, d := -1, true, -1
		for k, a := range n.args {
			switch {
			case args[k].isDict() && (src < 0 || src == args[k].src):
				src, d = args[k].src, k
			case a.op != opLit:
				ok = false
			}
		}
		if ok && d >= 0 {
			return e.dictMap(n, s, args, d)
		}
	}
	for k, a := range n.args {
		if args[k].isDict() {
			args[k] = *e.flatOf(a)
		}
	}
	return e.apply(n, args, rows, &s.buf)
}

func (e *Evaluator) dictMap(n *node, s *nodeState, args []vec, d int) vec {
	ent := args[d].ent
	if s.dstamp != e.bstamp {
		m := ent.n
		eargs := make([]vec, len(args))
		for k, a := range n.args {
			if args[k].isDict() {
				eargs[k] = *args[k].ent
			} else {
				eargs[k] = e.litVec(a, m)
			}
		}
		s.dres = e.apply(n, eargs, m, &s.dbuf)
		s.dstamp = e.bstamp
	}
	return vec{n: args[d].n, v: args[d].v, idx: args[d].idx, ent: &s.dres, src: args[d].src}
}

// litVec is literal n broadcast to rows rows (filled once, reused).
func (e *Evaluator) litVec(n *node, rows int) vec {
	s := &e.st[n.id]
	if s.litN < rows {
		size := max(rows, chunkRows)
		b := &s.lbuf
		x := vec{}
		if n.lit.null {
			x.v = b.valid(size)
			fill(x.v, 0)
		}
		switch n.t {
		case tBool:
			x.b = b.bools(size)
			fill(x.b, b2u8(n.lit.b))
		case tInt, tDate, tTimestamp:
			x.i = b.ints(size)
			fill(x.i, n.lit.i)
		case tFloat:
			x.f = b.flts(size)
			fill(x.f, n.lit.f)
		case tString:
			x.s = b.strs(size)
			fill(x.s, n.lit.s)
		}
		s.lit, s.litN = x, size
	}
	x := s.lit
	x.n = rows
	if x.v != nil {
		x.v = x.v[:rows]
	}
	switch n.t {
	case tBool:
		x.b = x.b[:rows]
	case tInt, tDate, tTimestamp:
		x.i = x.i[:rows]
	case tFloat:
		x.f = x.f[:rows]
	case tString:
		x.s = x.s[:rows]
	}
	return x
}

// gather materializes a dictionary-form vec.
func gather(t typ, x *vec, b *buffers) vec {
	n := len(x.idx)
	ent := x.ent
	m := uint32(ent.n)
	out := vec{n: n, v: b.valid(n)}
	for k, ix := range x.idx {
		ok := uint32(ix) < m
		if ok {
			ok = ent.valid(int(ix)) && x.valid(k)
		}
		out.v[k] = b2u8(ok)
	}
	switch t {
	case tBool:
		out.b = b.bools(n)
		for k, ix := range x.idx {
			if uint32(ix) < m {
				out.b[k] = ent.b[ix]
			}
		}
	case tInt, tDate, tTimestamp:
		out.i = b.ints(n)
		for k, ix := range x.idx {
			if uint32(ix) < m {
				out.i[k] = ent.i[ix]
			}
		}
	case tFloat:
		out.f = b.flts(n)
		for k, ix := range x.idx {
			if uint32(ix) < m {
				out.f[k] = ent.f[ix]
			}
		}
	case tString:
		out.s = b.strs(n)
		for k, ix := range x.idx {
			if uint32(ix) < m {
				out.s[k] = ent.s[ix]
			} else {
				out.s[k] = ""
			}
		}
	}
	return out
}

// colState is one bound column of the current batch.
type colState struct {
	t    typ
	conv arrow.Array // a converted copy (released at the next batch)
	v    []uint8     // validity per row; nil: no nulls
	vbuf []uint8
	i    []int64
	ibuf []int64
	f    []float64
	b    []uint8
	bbuf []uint8
	// utf8: offsets and data, views made per chunk
	offs32 []int32
	offs64 []int64
	data   []byte
	sbuf   []string
	// dictionary<utf8>
	dict  bool
	idx   []int32
	xbuf  []int32
	ent   vec
	ebuf  buffers
	evbuf []uint8
}

// bind finds the plan's columns in rec and prepares their views.
func (e *Evaluator) bind(rec arrow.RecordBatch) error {
	schema := rec.Schema()
	e.rows = int(rec.NumRows())
	for slot, ci := range e.p.cols {
		idx := schema.FieldIndices(ci.name)
		if len(idx) == 0 {
			return fmt.Errorf("%w: plan: column %q is not in the batch", cove.ErrInvalid, ci.name)
		}
		if len(idx) > 1 {
			return fmt.Errorf("%w: plan: column %q appears %d times in the batch", cove.ErrInvalid, ci.name, len(idx))
		}
		arr := rec.Column(idx[0])
		if t, ok := typeOfArrow(arr.DataType()); !ok || t != ci.t {
			return fmt.Errorf("%w: plan: column %q is %s in the batch, the plan reads it as %s", cove.ErrInvalid, ci.name, arr.DataType(), ci.t)
		}
		if arr.Len() < e.rows {
			return fmt.Errorf("%w: plan: column %q has %d rows, the batch %d", cove.ErrInvalid, ci.name, arr.Len(), e.rows)
		}
		if err := e.cols[slot].load(e.ctx, ci.name, arr, e.rows); err != nil {
			return err
		}
	}
	return nil
}

// load prepares col's views: fixed-width values are used in place (or
// widened once), validity is expanded to bytes, dictionaries are read once.
func (c *colState) load(ctx context.Context, name string, arr arrow.Array, rows int) error {
	if c.conv != nil {
		c.conv.Release()
		c.conv = nil
	}
	*c = colState{vbuf: c.vbuf, ibuf: c.ibuf, bbuf: c.bbuf, sbuf: c.sbuf, xbuf: c.xbuf, ebuf: c.ebuf, evbuf: c.evbuf}
	var err error
	if c.v, err = c.validity(arr, rows); err != nil {
		return fmt.Errorf("%w: plan: column %q: %v", cove.ErrInvalid, name, err)
	}
	switch a := arr.(type) {
	case *array.Int64:
		c.t, c.i = tInt, a.Int64Values()[:rows]
	case *array.Int8, *array.Int16, *array.Int32, *array.Uint8, *array.Uint16, *array.Uint32:
		// Widening never fails, whatever the data: compute's cast fits.
		out, err := compute.CastArray(ctx, arr, compute.SafeCastOptions(arrow.PrimitiveTypes.Int64))
		if err != nil {
			return fmt.Errorf("plan: column %q: widening to int64: %v", name, err)
		}
		c.conv = out
		c.t, c.i = tInt, out.(*array.Int64).Int64Values()[:rows]
	case *array.Float64:
		c.t, c.f = tFloat, a.Float64Values()[:rows]
		c.finite()
	case *array.Float32:
		out, err := compute.CastArray(ctx, arr, compute.SafeCastOptions(arrow.PrimitiveTypes.Float64))
		if err != nil {
			return fmt.Errorf("plan: column %q: widening to float64: %v", name, err)
		}
		c.conv = out
		c.t, c.f = tFloat, out.(*array.Float64).Float64Values()[:rows]
		c.finite()
	case *array.Boolean:
		c.t = tBool
		c.bbuf = grow(c.bbuf, rows)
		c.b = c.bbuf
		if rows > 0 {
			bits := a.Data().Buffers()[1].Bytes()
			if err := checkBitmap(bits, a.Data().Offset(), rows); err != nil {
				return fmt.Errorf("%w: plan: column %q: %v", cove.ErrInvalid, name, err)
			}
			expandBits(c.b, bits, a.Data().Offset())
		}
	case *array.Date32:
		c.t = tDate
		c.ibuf = grow(c.ibuf, rows)
		for k, d := range a.Date32Values()[:rows] {
			c.ibuf[k] = int64(d)
		}
		c.i = c.ibuf
	case *array.Date64:
		c.t = tDate
		c.ibuf = grow(c.ibuf, rows)
		for k, ms := range a.Date64Values()[:rows] {
			c.ibuf[k] = floorDiv(int64(ms), 86_400_000)
		}
		c.i = c.ibuf
	case *array.Timestamp:
		c.t = tTimestamp
		c.timestamps(a, rows)
	case *array.String:
		c.t = tString
		c.offs32, c.data = a.ValueOffsets()[:rows+1], stringData(a.Data())
		if err := checkOffsets(c.offs32, len(c.data)); err != nil {
			return fmt.Errorf("%w: plan: column %q: %v", cove.ErrInvalid, name, err)
		}
	case *array.LargeString:
		c.t = tString
		c.offs64, c.data = a.ValueOffsets()[:rows+1], stringData(a.Data())
		if err := checkOffsets(c.offs64, len(c.data)); err != nil {
			return fmt.Errorf("%w: plan: column %q: %v", cove.ErrInvalid, name, err)
		}
	case *array.Dictionary:
		c.t, c.dict = tString, true
		if err := c.dictionary(a, rows); err != nil {
			return fmt.Errorf("%w: plan: column %q: %v", cove.ErrInvalid, name, err)
		}
	default:
		return fmt.Errorf("%w: plan: column %q: Arrow type %s cannot be read", cove.ErrInvalid, name, arr.DataType())
	}
	return nil
}

// validity expands arr's null bitmap; nil when no row is null.
func (c *colState) validity(arr arrow.Array, rows int) ([]uint8, error) {
	if arr.NullN() == 0 || rows == 0 {
		return nil, nil
	}
	bm := arr.Data().Buffers()[0]
	if bm == nil {
		return nil, nil
	}
	if err := checkBitmap(bm.Bytes(), arr.Data().Offset(), rows); err != nil {
		return nil, err
	}
	c.vbuf = grow(c.vbuf, rows)
	expandBits(c.vbuf, bm.Bytes(), arr.Data().Offset())
	return c.vbuf, nil
}

// checkBitmap checks that a bitmap holds bits [off, off+rows).
func checkBitmap(bits []byte, off, rows int) error {
	if off < 0 || (off+rows+7)/8 > len(bits) {
		return fmt.Errorf("bitmap of %d bytes for %d rows at offset %d", len(bits), rows, off)
	}
	return nil
}

// finite makes NaN and ±Inf values of a float column null: a plan's floats
// are finite or null.
func (c *colState) finite() {
	if allFinite(c.f) {
		return
	}
	if c.v == nil {
		c.vbuf = grow(c.vbuf, len(c.f))
		fill(c.vbuf, 1)
		c.v = c.vbuf
	}
	for k, x := range c.f {
		c.v[k] &= finiteBit(x)
	}
}

// allFinite reports whether no value of f is NaN or ±Inf: x - x is 0 for a
// finite x and NaN otherwise, and NaN survives the sums (four of them, so
// that the loop is not one chain of dependent additions).
func allFinite(f []float64) bool {
	var a0, a1, a2, a3 float64
	k := 0
	for ; k+4 <= len(f); k += 4 {
		x := f[k : k+4 : k+4]
		a0 += x[0] - x[0]
		a1 += x[1] - x[1]
		a2 += x[2] - x[2]
		a3 += x[3] - x[3]
	}
	for ; k < len(f); k++ {
		a0 += f[k] - f[k]
	}
	return a0+a1+a2+a3 == 0
}

func finiteBit(x float64) uint8 {
	return uint8((((math.Float64bits(x)>>52)&0x7ff)+1)>>11) ^ 1
}

// timestamps converts to nanoseconds; a value beyond the int64 range of
// nanoseconds (before 1677 or after 2262) is null.
func (c *colState) timestamps(a *array.Timestamp, rows int) {
	vals := a.TimestampValues()[:rows]
	unit := a.DataType().(*arrow.TimestampType).Unit
	if unit == arrow.Nanosecond {
		c.i = unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(vals))), len(vals))
		return
	}
	mul := int64(1_000_000_000)
	switch unit {
	case arrow.Millisecond:
		mul = 1_000_000
	case arrow.Microsecond:
		mul = 1_000
	}
	c.ibuf = grow(c.ibuf, rows)
	lim := math.MaxInt64 / mul
	for k, t := range vals {
		x := int64(t)
		if x > lim || x < -lim {
			if c.v == nil {
				c.vbuf = grow(c.vbuf, rows)
				fill(c.vbuf, 1)
				c.v = c.vbuf
			}
			c.v[k] = 0
			c.ibuf[k] = 0
			continue
		}
		c.ibuf[k] = x * mul
	}
	c.i = c.ibuf
}

// stringData is the data buffer of a utf8 array.
func stringData(d arrow.ArrayData) []byte {
	if b := d.Buffers()[2]; b != nil {
		return b.Bytes()
	}
	return nil
}

func checkOffsets[T int32 | int64](offs []T, n int) error {
	prev := T(0)
	if len(offs) > 0 {
		prev = max(offs[0], 0)
	}
	for _, o := range offs {
		if o < prev || int64(o) > int64(n) {
			return fmt.Errorf("malformed string offsets")
		}
		prev = o
	}
	return nil
}

// dictionary reads a dictionary<utf8> column: its entries as strings and
// its indices as int32 (an index beyond int32 reads as -1, a null row).
func (c *colState) dictionary(a *array.Dictionary, rows int) error {
	dict := a.Dictionary()
	m := dict.Len()
	c.ebuf.s = grow(c.ebuf.s, m)
	ent := vec{n: m, s: c.ebuf.s}
	switch d := dict.(type) {
	case *array.String:
		offs, data := d.ValueOffsets(), stringData(d.Data())
		if err := checkOffsets(offs, len(data)); err != nil {
			return err
		}
		views(ent.s, offs, data)
	case *array.LargeString:
		offs, data := d.ValueOffsets(), stringData(d.Data())
		if err := checkOffsets(offs, len(data)); err != nil {
			return err
		}
		views(ent.s, offs, data)
	default:
		return fmt.Errorf("dictionary of %s", dict.DataType())
	}
	if dict.NullN() > 0 && dict.Data().Buffers()[0] != nil {
		bits := dict.Data().Buffers()[0].Bytes()
		if err := checkBitmap(bits, dict.Data().Offset(), m); err != nil {
			return err
		}
		c.evbuf = grow(c.evbuf, m)
		expandBits(c.evbuf, bits, dict.Data().Offset())
		ent.v = c.evbuf
	}
	c.ent = ent
	switch x := a.Indices().(type) {
	case *array.Int32:
		c.idx = x.Int32Values()[:rows]
		return nil
	case *array.Int8:
		c.idx = widenIdx(&c.xbuf, x.Int8Values()[:rows])
	case *array.Int16:
		c.idx = widenIdx(&c.xbuf, x.Int16Values()[:rows])
	case *array.Int64:
		c.idx = widenIdx(&c.xbuf, x.Int64Values()[:rows])
	case *array.Uint8:
		c.idx = widenIdx(&c.xbuf, x.Uint8Values()[:rows])
	case *array.Uint16:
		c.idx = widenIdx(&c.xbuf, x.Uint16Values()[:rows])
	case *array.Uint32:
		c.idx = widenIdx(&c.xbuf, x.Uint32Values()[:rows])
	case *array.Uint64:
		c.idx = widenIdx(&c.xbuf, x.Uint64Values()[:rows])
	default:
		return fmt.Errorf("dictionary indices of %s", a.Indices().DataType())
	}
	return nil
}

func widenIdx[T int8 | int16 | int64 | uint8 | uint16 | uint32 | uint64](buf *[]int32, xs []T) []int32 {
	*buf = grow(*buf, len(xs))
	out := *buf
	for k, x := range xs {
		if uint64(x) <= math.MaxInt32 {
			out[k] = int32(x)
		} else {
			out[k] = -1
		}
	}
	return out
}

// views makes strings that alias utf8 data (valid while the batch is).
func views[T int32 | int64](dst []string, offs []T, data []byte) {
	for k := range dst {
		lo, hi := offs[k], offs[k+1]
		if hi > lo {
			dst[k] = unsafe.String(&data[lo], int(hi-lo))
		} else {
			dst[k] = ""
		}
	}
}

// colVec is column slot's value over the current chunk: a view.
func (e *Evaluator) colVec(slot int) vec {
	c := &e.cols[slot]
	lo, hi := e.lo, e.hi
	x := vec{n: hi - lo}
	if c.v != nil {
		x.v = c.v[lo:hi]
	}
	switch c.t {
	case tInt, tDate, tTimestamp:
		x.i = c.i[lo:hi]
	case tFloat:
		x.f = c.f[lo:hi]
	case tBool:
		x.b = c.b[lo:hi]
	case tString:
		if c.dict {
			x.idx, x.ent, x.src = c.idx[lo:hi], &c.ent, slot
			return x
		}
		c.sbuf = grow(c.sbuf, hi-lo)
		if c.offs32 != nil {
			views(c.sbuf, c.offs32[lo:hi+1], c.data)
		} else {
			views(c.sbuf, c.offs64[lo:hi+1], c.data)
		}
		x.s = c.sbuf
	}
	return x
}
