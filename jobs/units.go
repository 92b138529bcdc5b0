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

// mixColumn folds column a's values into h: h ← mix64(h ^ x ^ salt).
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
		for i, v := range a.Int64Values() {
			put(i, uint64(v))
		}
	case *array.Int32:
		for i, v := range a.Int32Values() {
			put(i, uint64(int64(v)))
		}
	case *array.Int16:
		for i, v := range a.Int16Values() {
			put(i, uint64(int64(v)))
		}
	case *array.Int8:
		for i, v := range a.Int8Values() {
			put(i, uint64(int64(v)))
		}
	case *array.Uint64:
		for i, v := range a.Uint64Values() {
			put(i, v)
		}
	case *array.Uint32:
		for i, v := range a.Uint32Values() {
			put(i, uint64(v))
		}
	case *array.Uint16:
		for i, v := range a.Uint16Values() {
			put(i, uint64(v))
		}
	case *array.Uint8:
		for i, v := range a.Uint8Values() {
			put(i, uint64(v))
		}
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
		for i, v := range a.TimestampValues() {
			put(i, uint64(v))
		}
	case *array.Date32:
		for i, v := range a.Date32Values() {
			put(i, uint64(int64(v)))
		}
	case *array.Date64:
		for i, v := range a.Date64Values() {
			put(i, uint64(v))
		}
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
		for i := range a.Len() {
			x := u.null
			if a.IsValid(i) {
				x = u.dict[a.GetValueIndex(i)]
			}
			h[i] = mix64(h[i] ^ x ^ salt)
		}
	default:
		return fmt.Errorf("type %s cannot identify a unit", a.DataType())
	}
	return nil
}
