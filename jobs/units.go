package jobs

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
)

// unitHasher attributes each row to its privacy unit: a 64-bit hash of the
// row's values in the unit columns, keyed by secrets drawn per job. The
// unit columns stay on the host; a guest only ever names rows. A collision
// merges two units, which only makes contribution bounding stricter.
//
// Hashing is column by column over the Arrow buffers (a dictionary column
// hashes its dictionary once per batch), a few nanoseconds per row and
// column: per-row hashing of composite keys was a large share of a job.
type unitHasher struct {
	seed   maphash.Seed
	k0, k1 uint64
	null   uint64
	h      []uint64
	dict   []uint64
}

func newUnitHasher() *unitHasher {
	var b [24]byte
	crand.Read(b[:]) // never fails (Go ≥ 1.24)
	return &unitHasher{seed: maphash.MakeSeed(), k0: binary.LittleEndian.Uint64(b[:]),
		k1: binary.LittleEndian.Uint64(b[8:]), null: binary.LittleEndian.Uint64(b[16:])}
}

// mix64 is the SplitMix64 finalizer: a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ids returns one unit id per row of rec (valid until the next call).
func (u *unitHasher) ids(rec arrow.RecordBatch, cols []string) ([]uint64, error) {
	n := int(rec.NumRows())
	if cap(u.h) < n {
		u.h = make([]uint64, n)
	}
	h := u.h[:n]
	for i := range h {
		h[i] = u.k0
	}
	for j, c := range cols {
		idx := rec.Schema().FieldIndices(c)
		if len(idx) != 1 {
			return nil, fmt.Errorf("%w: privacy unit column %q is not in the batch", cove.ErrInvalid, c)
		}
		salt := mix64(u.k1 + uint64(j))
		if err := u.mixColumn(h, rec.Column(idx[0]), salt); err != nil {
			return nil, fmt.Errorf("%w: privacy unit column %q: %v", cove.ErrInvalid, c, err)
		}
	}
	for i := range h {
		h[i] = mix64(h[i])
	}
	return h, nil
}

// mixColumn folds column a's values into h: h ← mix64(h ^ x ^ salt), x
// the value's bits (a null: a secret tag). Typed loops without a call per
// row: hashing the unit columns was a tenth of a block job.
func (u *unitHasher) mixColumn(h []uint64, a arrow.Array, salt uint64) error {
	nulls := a.NullN() > 0
	put := func(i int, x uint64) {
		if nulls && a.IsNull(i) {
			x = u.null
		}
		h[i] = mix64(h[i] ^ x ^ salt)
	}
	switch a := a.(type) {
	case *array.Int64:
		mixInts(h, a.Int64Values(), a, salt, u.null)
	case *array.Int32:
		mixInts(h, a.Int32Values(), a, salt, u.null)
	case *array.Int16:
		mixInts(h, a.Int16Values(), a, salt, u.null)
	case *array.Int8:
		mixInts(h, a.Int8Values(), a, salt, u.null)
	case *array.Uint64:
		mixInts(h, a.Uint64Values(), a, salt, u.null)
	case *array.Uint32:
		mixInts(h, a.Uint32Values(), a, salt, u.null)
	case *array.Uint16:
		mixInts(h, a.Uint16Values(), a, salt, u.null)
	case *array.Uint8:
		mixInts(h, a.Uint8Values(), a, salt, u.null)
	case *array.Float64:
		for i, v := range a.Float64Values() {
			if v == 0 {
				v = 0 // −0 and 0 are one value
			} else if v != v {
				v = math.NaN()
			}
			put(i, math.Float64bits(v))
		}
	case *array.Boolean:
		for i := range a.Len() {
			x := uint64(0)
			if a.Value(i) {
				x = 1
			}
			put(i, x)
		}
	case *array.Timestamp:
		mixInts(h, a.TimestampValues(), a, salt, u.null)
	case *array.Date32:
		mixInts(h, a.Date32Values(), a, salt, u.null)
	case *array.Date64:
		mixInts(h, a.Date64Values(), a, salt, u.null)
	case *array.String:
		for i := range a.Len() {
			put(i, maphash.String(u.seed, a.Value(i)))
		}
	case *array.LargeString:
		for i := range a.Len() {
			put(i, maphash.String(u.seed, a.Value(i)))
		}
	case *array.Dictionary:
		d, ok := a.Dictionary().(*array.String)
		if !ok {
			return fmt.Errorf("dictionary of %s cannot identify a unit", a.Dictionary().DataType())
		}
		u.dict = u.dict[:0]
		for j := range d.Len() {
			x := u.null
			if d.IsValid(j) {
				x = maphash.String(u.seed, d.Value(j))
			}
			u.dict = append(u.dict, x)
		}
		switch idx := a.Indices().(type) {
		case *array.Int32:
			mixDict(h, idx.Int32Values(), u.dict, a, salt, u.null)
		case *array.Int16:
			mixDict(h, idx.Int16Values(), u.dict, a, salt, u.null)
		case *array.Int8:
			mixDict(h, idx.Int8Values(), u.dict, a, salt, u.null)
		case *array.Int64:
			mixDict(h, idx.Int64Values(), u.dict, a, salt, u.null)
		default:
			for i := range a.Len() {
				x := u.null
				if a.IsValid(i) {
					x = u.dict[a.GetValueIndex(i)]
				}
				h[i] = mix64(h[i] ^ x ^ salt)
			}
		}
	default:
		return fmt.Errorf("type %s cannot identify a unit", a.DataType())
	}
	return nil
}

// mixInts folds integer-like values into h, a null's as null.
func mixInts[T ~int64 | ~int32 | ~int16 | ~int8 | ~uint64 | ~uint32 | ~uint16 | ~uint8](h []uint64, vals []T, a arrow.Array, salt, null uint64) {
	if a.NullN() == 0 {
		for i, v := range vals {
			h[i] = mix64(h[i] ^ uint64(int64(v)) ^ salt)
		}
		return
	}
	for i, v := range vals {
		x := uint64(int64(v))
		if a.IsNull(i) {
			x = null
		}
		h[i] = mix64(h[i] ^ x ^ salt)
	}
}

// mixDict folds a dictionary column into h: each row's entry's hash.
func mixDict[T ~int64 | ~int32 | ~int16 | ~int8](h []uint64, idx []T, dict []uint64, a arrow.Array, salt, null uint64) {
	nulls := a.NullN() > 0
	for i, j := range idx {
		x := null
		if !nulls || a.IsValid(i) {
			x = dict[j]
		}
		h[i] = mix64(h[i] ^ x ^ salt)
	}
}
