package jobs

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
)

// unitMapper attributes each row to its privacy unit. The unit columns stay
// on the host; the guest only ever names rows.
type unitMapper struct {
	seed maphash.Seed
	buf  []uint64
}

// ids returns one unit id per row of rec. Without unit columns every row is
// its own unit, numbered from first. With unit columns the id is a 64-bit
// hash of the row's values in them: a collision merges two units, which only
// makes contribution bounding stricter.
func (u *unitMapper) ids(rec arrow.RecordBatch, cols []string, first uint64) ([]uint64, error) {
	n := int(rec.NumRows())
	u.buf = u.buf[:0]
	if len(cols) == 0 {
		for i := 0; i < n; i++ {
			u.buf = append(u.buf, first+uint64(i))
		}
		return u.buf, nil
	}
	arrs := make([]arrow.Array, len(cols))
	for k, c := range cols {
		idx := rec.Schema().FieldIndices(c)
		if len(idx) != 1 {
			return nil, fmt.Errorf("%w: privacy unit column %q is not in the batch", cove.ErrInvalid, c)
		}
		arrs[k] = rec.Column(idx[0])
		switch arrs[k].(type) {
		case *array.Int64, *array.Int32, *array.Float64, *array.String, *array.Boolean:
		default:
			return nil, fmt.Errorf("%w: privacy unit column %q has type %s, which cannot identify a unit", cove.ErrInvalid, c, arrs[k].DataType())
		}
	}
	var h maphash.Hash
	h.SetSeed(u.seed)
	var b [9]byte
	for i := 0; i < n; i++ {
		h.Reset()
		for _, a := range arrs {
			if a.IsNull(i) {
				h.WriteByte(0)
				continue
			}
			b[0] = 1
			switch a := a.(type) {
			case *array.Int64:
				binary.LittleEndian.PutUint64(b[1:], uint64(a.Value(i)))
				h.Write(b[:])
			case *array.Int32:
				binary.LittleEndian.PutUint64(b[1:], uint64(a.Value(i)))
				h.Write(b[:])
			case *array.Float64:
				binary.LittleEndian.PutUint64(b[1:], math.Float64bits(a.Value(i)))
				h.Write(b[:])
			case *array.Boolean:
				b[1] = 0
				if a.Value(i) {
					b[1] = 1
				}
				h.Write(b[:2])
			case *array.String:
				s := a.Value(i)
				binary.LittleEndian.PutUint64(b[1:], uint64(len(s)))
				h.Write(b[:])
				h.WriteString(s)
			}
		}
		u.buf = append(u.buf, h.Sum64())
	}
	return u.buf, nil
}
