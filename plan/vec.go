package plan

import (
	"encoding/binary"
)

// vec is the value of an expression over the rows of one chunk (or, for a
// dictionary-mapped node, over the entries of a dictionary). Booleans and
// validity are bytes, 0 or 1, one per row: comparisons write them without
// branches and a mask applies with one OR per row.
//
// A vec may alias Arrow buffers or another node's results: it is read-only.
type vec struct {
	n int
	v []uint8 // validity; nil: every row valid
	b []uint8
	i []int64
	f []float64
	s []string
	// Dictionary form: row r is ent[idx[r]] (null when the index is out of
	// range), v is the rows' own validity, src the column the indices are
	// from.
	idx []int32
	ent *vec
	src int
}

func (x *vec) isDict() bool { return x.ent != nil }

// valid reports whether row k is valid (flat vecs).
func (x *vec) valid(k int) bool { return x.v == nil || x.v[k] != 0 }

// buffers are one node's reusable result storage.
type buffers struct {
	v, b, aux, tk []uint8
	i             []int64
	f             []float64
	s             []string
	idx           []int32
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, max(n, 2*cap(s)))
	}
	return s[:n]
}

func (b *buffers) valid(n int) []uint8 { b.v = grow(b.v, n); return b.v }
func (b *buffers) bools(n int) []uint8 { b.b = grow(b.b, n); return b.b }
func (b *buffers) auxb(n int) []uint8  { b.aux = grow(b.aux, n); return b.aux }
func (b *buffers) take(n int) []uint8  { b.tk = grow(b.tk, n); return b.tk }
func (b *buffers) ints(n int) []int64  { b.i = grow(b.i, n); return b.i }
func (b *buffers) flts(n int) []float64 {
	b.f = grow(b.f, n)
	return b.f
}
func (b *buffers) strs(n int) []string { b.s = grow(b.s, n); return b.s }

func b2u8(b bool) uint8 {
	var x uint8
	if b {
		x = 1
	}
	return x
}

func fill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

// andInto writes the AND of validity masks a and b (nil: all valid) into
// dst and returns it; it always writes dst, which the caller may then
// change.
func andInto(dst, a, b []uint8) []uint8 {
	switch {
	case a == nil && b == nil:
		fill(dst, 1)
	case a == nil:
		copy(dst, b)
	case b == nil:
		copy(dst, a)
	default:
		andBytes(dst[:len(a)], a, b)
	}
	return dst[:len(a)]
}

// andBytes writes a AND b into dst, eight bytes at a time.
func andBytes(dst, a, b []uint8) {
	n := len(dst)
	a, b = a[:n], b[:n]
	k := 0
	for ; k+8 <= n; k += 8 {
		binary.LittleEndian.PutUint64(dst[k:], binary.LittleEndian.Uint64(a[k:])&binary.LittleEndian.Uint64(b[k:]))
	}
	for ; k < n; k++ {
		dst[k] = a[k] & b[k]
	}
}

// andView returns the AND of a and b, aliasing one of them when the other
// is nil (read-only use).
func andView(dst, a, b []uint8) []uint8 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return andInto(dst, a, b)
}

// allSet reports whether every byte of m is 1.
func allSet(m []uint8) bool {
	for _, x := range m {
		if x == 0 {
			return false
		}
	}
	return true
}

// expandTable maps a byte of an Arrow bitmap to 8 bytes of 0/1.
var expandTable = func() (t [256]uint64) {
	for b := range 256 {
		var w uint64
		for j := range 8 {
			if b&(1<<j) != 0 {
				w |= 1 << (8 * j)
			}
		}
		t[b] = w
	}
	return t
}()

// expandBits writes bits [off, off+len(dst)) of an Arrow (LSB-first) bitmap
// as 0/1 bytes into dst.
func expandBits(dst []uint8, bits []byte, off int) {
	n := len(dst)
	k := 0
	// Leading bits up to a byte boundary.
	for ; k < n && (off+k)&7 != 0; k++ {
		i := off + k
		dst[k] = (bits[i>>3] >> (i & 7)) & 1
	}
	src := bits[(off+k)>>3:]
	for j := 0; k+8 <= n; j++ {
		binary.LittleEndian.PutUint64(dst[k:k+8], expandTable[src[j]])
		k += 8
	}
	for ; k < n; k++ {
		i := off + k
		dst[k] = (bits[i>>3] >> (i & 7)) & 1
	}
}
