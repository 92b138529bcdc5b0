package jobs

import (
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// gatherer gathers rows of columns held as one array per batch into
// records, for per-unit and block calls: row k of a gathered record is row
// where[idx[k]]&0xffffffff of batch where[idx[k]]>>32. It does what
// concatenating the batches and compute.Take would, for the types guests
// are given, without the concatenated copy and into buffers it reuses from
// one gather to the next: on 4.2M rows × 4 columns Concatenate and Take
// cost 510 ms, of which allocating and zeroing fresh buffers for every
// chunk was a large part. A gathered record is valid until the next
// gather. A dictionary column comes out as plain utf8 (batches may carry
// different dictionaries; guests read both encodings alike).
type gatherer struct {
	srcs    [][]arrow.Array // per column, per batch
	types   []arrow.DataType
	valid   [][]bitmap // per column, per batch: the validity bitmap, if any row is null
	locs    []uint64   // the chunk's rows, as (batch<<32 | row)
	scratch [][3][]byte
}

type bitmap struct {
	b   []byte
	off int
}

// newGatherer checks the columns' types: those guests are given.
func newGatherer(srcs [][]arrow.Array) (*gatherer, error) {
	g := &gatherer{srcs: srcs, valid: make([][]bitmap, len(srcs)), scratch: make([][3][]byte, len(srcs))}
	for c, ss := range srcs {
		if len(ss) == 0 {
			return nil, fmt.Errorf("%w: jobs: gather from no batch", cove.ErrInvalid)
		}
		dt := ss[0].DataType()
		switch t := dt.(type) {
		case *arrow.Int64Type, *arrow.Float64Type, *arrow.TimestampType, *arrow.Date64Type, *arrow.Int32Type, *arrow.Date32Type,
			*arrow.BooleanType, *arrow.StringType:
		case *arrow.DictionaryType:
			if _, ok := t.ValueType.(*arrow.StringType); !ok {
				return nil, fmt.Errorf("%w: jobs: a dictionary of %s cannot be given to a guest", cove.ErrInvalid, t.ValueType)
			}
		default:
			return nil, fmt.Errorf("%w: jobs: column type %s cannot be given to a guest", cove.ErrInvalid, dt)
		}
		g.types = append(g.types, dt)
		g.valid[c] = make([]bitmap, len(ss))
		for b, s := range ss {
			if d := s.Data(); s.NullN() > 0 && d.Buffers()[0] != nil {
				g.valid[c][b] = bitmap{d.Buffers()[0].Bytes(), d.Offset()}
			}
		}
	}
	return g, nil
}

// grow returns b resized to n bytes, reusing its storage.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}

// gather returns the columns of the rows idx (indices into where).
func (g *gatherer) gather(where []uint64, idx []uint32) ([]arrow.Array, error) {
	n := len(idx)
	g.locs = g.locs[:0]
	for _, i := range idx {
		g.locs = append(g.locs, where[i])
	}
	out := make([]arrow.Array, len(g.srcs))
	for c := range g.srcs {
		a, err := g.column(c, n)
		if err != nil {
			for _, x := range out[:c] {
				x.Release()
			}
			return nil, err
		}
		out[c] = a
	}
	return out, nil
}

func (g *gatherer) column(c, n int) (arrow.Array, error) {
	srcs, sc := g.srcs[c], &g.scratch[c]
	var validity *memory.Buffer
	nulls := 0
	for _, s := range srcs {
		nulls += s.NullN()
	}
	if nulls > 0 {
		sc[0] = grow(sc[0], int(bitutil.BytesForBits(int64(n))))
		bits := sc[0]
		clear(bits)
		nulls = 0
		vs := g.valid[c]
		for k, w := range g.locs {
			v := vs[w>>32]
			if v.b == nil || bitutil.BitIsSet(v.b, v.off+int(w&0xffffffff)) {
				bitutil.SetBit(bits, k)
			} else {
				nulls++
			}
		}
		validity = memory.NewBufferBytes(bits)
	}
	dt := g.types[c]
	var data arrow.ArrayData
	switch t := dt.(type) {
	case *arrow.Int64Type, *arrow.Float64Type, *arrow.TimestampType, *arrow.Date64Type, *arrow.Int32Type, *arrow.Date32Type:
		width := t.(arrow.FixedWidthDataType).BitWidth() / 8
		sc[1] = grow(sc[1], n*width)
		if width == 8 {
			gatherFixed[uint64](sc[1], srcs, g.locs)
		} else {
			gatherFixed[uint32](sc[1], srcs, g.locs)
		}
		data = array.NewData(dt, n, []*memory.Buffer{validity, memory.NewBufferBytes(sc[1])}, nil, nulls, 0)
	case *arrow.BooleanType:
		sc[1] = grow(sc[1], int(bitutil.BytesForBits(int64(n))))
		bits := sc[1]
		clear(bits)
		for k, w := range g.locs {
			if srcs[w>>32].(*array.Boolean).Value(int(w & 0xffffffff)) {
				bitutil.SetBit(bits, k)
			}
		}
		data = array.NewData(dt, n, []*memory.Buffer{validity, memory.NewBufferBytes(bits)}, nil, nulls, 0)
	default: // utf8, or a dictionary of utf8: plain utf8
		value := func(w uint64) string {
			switch a := srcs[w>>32].(type) {
			case *array.Dictionary:
				r := int(w & 0xffffffff)
				if a.IsNull(r) {
					return ""
				}
				return a.Dictionary().(*array.String).Value(a.GetValueIndex(r))
			case *array.String:
				return a.Value(int(w & 0xffffffff))
			}
			return ""
		}
		total := 0
		for _, w := range g.locs {
			total += len(value(w))
		}
		if total > 1<<31-1 {
			return nil, fmt.Errorf("%w: jobs: a group's strings exceed 2 GiB", cove.ErrLimit)
		}
		sc[1] = grow(sc[1], (n+1)*4)
		o := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(sc[1]))), n+1)
		sc[2] = grow(sc[2], total)
		b := sc[2]
		pos := 0
		for k, w := range g.locs {
			o[k] = int32(pos)
			pos += copy(b[pos:], value(w))
		}
		o[n] = int32(pos)
		data = array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{validity, memory.NewBufferBytes(sc[1]), memory.NewBufferBytes(b)}, nil, nulls, 0)
	}
	defer data.Release()
	return array.MakeFromData(data), nil
}

// gatherFixed gathers fixed-width values of type T (the element's width)
// into out.
func gatherFixed[T uint32 | uint64](out []byte, srcs []arrow.Array, locs []uint64) {
	src := make([][]T, len(srcs))
	for i, s := range srcs {
		d := s.Data()
		b := d.Buffers()[1].Bytes()
		all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(T(0))))
		src[i] = all[d.Offset():]
	}
	dst := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(out))), len(locs))
	for k, w := range locs {
		dst[k] = src[w>>32][w&0xffffffff]
	}
}

// gatheredType is the type a gathered column of type t has.
func gatheredType(t arrow.DataType) arrow.DataType {
	if _, ok := t.(*arrow.DictionaryType); ok {
		return arrow.BinaryTypes.String
	}
	return t
}

// scatter returns every column with its rows permuted, row i of the
// gathered table (batches in order) at dest[i] (a permutation), in buffers
// from mem that the caller releases with the arrays. It reads the sources
// once, in order, and writes to as many places as there are groups: for a
// few hundred blocks that is several times faster than gathering rows
// block by block, which misses the cache on every unit.
func (g *gatherer) scatter(mem memory.Allocator, dest []uint32) ([]arrow.Array, error) {
	n := len(dest)
	out := make([]arrow.Array, len(g.srcs))
	fail := func(err error) ([]arrow.Array, error) {
		for _, a := range out {
			if a != nil {
				a.Release()
			}
		}
		return nil, err
	}
	for c, srcs := range g.srcs {
		var bufs []*memory.Buffer
		alloc := func(size int) []byte {
			b := memory.NewResizableBuffer(mem)
			b.Resize(size)
			bufs = append(bufs, b)
			return b.Bytes()
		}
		var validity *memory.Buffer
		nulls := 0
		for _, s := range srcs {
			nulls += s.NullN()
		}
		if nulls > 0 {
			bits := alloc(int(bitutil.BytesForBits(int64(n))))
			clear(bits)
			validity = bufs[len(bufs)-1]
			i := 0
			for b, s := range srcs {
				v := g.valid[c][b]
				if v.b == nil {
					for range s.Len() {
						bitutil.SetBit(bits, int(dest[i]))
						i++
					}
					continue
				}
				// A byte of the source's bitmap at a time.
				for r := 0; r < s.Len(); {
					byt, bit := (v.off+r)>>3, (v.off+r)&7
					x := v.b[byt] >> bit
					for ; bit < 8 && r < s.Len(); bit, r, i = bit+1, r+1, i+1 {
						if x&1 != 0 {
							d := dest[i]
							bits[d>>3] |= 1 << (d & 7)
						}
						x >>= 1
					}
				}
			}
		}
		dt := g.types[c]
		var data arrow.ArrayData
		switch t := dt.(type) {
		case *arrow.Int64Type, *arrow.Float64Type, *arrow.TimestampType, *arrow.Date64Type, *arrow.Int32Type, *arrow.Date32Type:
			width := t.(arrow.FixedWidthDataType).BitWidth() / 8
			vals := alloc(n * width)
			if width == 8 {
				scatterFixed[uint64](vals, srcs, dest)
			} else {
				scatterFixed[uint32](vals, srcs, dest)
			}
			data = array.NewData(dt, n, []*memory.Buffer{validity, bufs[len(bufs)-1]}, nil, nulls, 0)
		case *arrow.BooleanType:
			bits := alloc(int(bitutil.BytesForBits(int64(n))))
			clear(bits)
			i := 0
			for _, s := range srcs {
				a := s.(*array.Boolean)
				for r := range a.Len() {
					if a.Value(r) {
						bitutil.SetBit(bits, int(dest[i]))
					}
					i++
				}
			}
			data = array.NewData(dt, n, []*memory.Buffer{validity, bufs[len(bufs)-1]}, nil, nulls, 0)
		default:
			// Strings: each row's length at its place, the offsets by a
			// prefix sum, then the bytes.
			offs := alloc((n + 1) * 4)
			o := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(offs))), n+1)
			offBuf := bufs[len(bufs)-1]
			each := func(f func(i int, v string)) {
				i := 0
				for _, s := range srcs {
					switch a := s.(type) {
					case *array.Dictionary:
						d := a.Dictionary().(*array.String)
						for r := range a.Len() {
							v := ""
							if a.IsValid(r) {
								v = d.Value(a.GetValueIndex(r))
							}
							f(i, v)
							i++
						}
					case *array.String:
						for r := range a.Len() {
							f(i, a.Value(r))
							i++
						}
					}
				}
			}
			each(func(i int, v string) { o[dest[i]] = int32(len(v)) })
			total := 0
			for k := range n {
				l := int(o[k])
				o[k] = int32(total)
				total += l
				if total > 1<<31-1 {
					for _, b := range bufs {
						b.Release()
					}
					return fail(fmt.Errorf("%w: jobs: a column's strings exceed 2 GiB", cove.ErrLimit))
				}
			}
			o[n] = int32(total)
			bytes := alloc(total)
			each(func(i int, v string) { copy(bytes[o[dest[i]]:], v) })
			data = array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{validity, offBuf, bufs[len(bufs)-1]}, nil, nulls, 0)
		}
		for _, b := range bufs {
			b.Release() // the ArrayData holds them
		}
		out[c] = array.MakeFromData(data)
		data.Release()
	}
	return out, nil
}

// scatterFixed writes fixed-width values of type T to their places.
func scatterFixed[T uint32 | uint64](out []byte, srcs []arrow.Array, dest []uint32) {
	dst := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(out))), len(dest))
	i := 0
	for _, s := range srcs {
		d := s.Data()
		b := d.Buffers()[1].Bytes()
		all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/int(unsafe.Sizeof(T(0))))
		for _, v := range all[d.Offset() : d.Offset()+s.Len()] {
			dst[dest[i]] = v
			i++
		}
	}
}
