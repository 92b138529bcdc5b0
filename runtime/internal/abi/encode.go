package abi

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Batch region layout (docs/abi.md, "Batch region").
const (
	HeaderSize     = 16
	ColumnDescSize = 32
	// Align is the alignment of the region and of every buffer in it.
	Align = 8
)

// Column type codes.
const (
	TypeInt64   uint32 = 1
	TypeInt32   uint32 = 2
	TypeFloat64 uint32 = 3
	TypeUTF8    uint32 = 4
	TypeBool    uint32 = 5
)

// typeCode maps an Arrow type to its ABI v1 code.
func typeCode(t arrow.DataType) (uint32, bool) {
	switch t.ID() {
	case arrow.INT64:
		return TypeInt64, true
	case arrow.INT32:
		return TypeInt32, true
	case arrow.FLOAT64:
		return TypeFloat64, true
	case arrow.STRING:
		return TypeUTF8, true
	case arrow.BOOL:
		return TypeBool, true
	}
	return 0, false
}

func align(n int64) int64 { return (n + Align - 1) &^ (Align - 1) }

// Unsupported is a column whose Arrow type ABI v1 cannot carry.
type Unsupported struct{ Column, Type string }

func (u *Unsupported) Error() string {
	return fmt.Sprintf("column %q has type %s, which ABI v%d does not support", u.Column, u.Type, Version)
}

// RegionSize is the number of bytes Encode writes for rec.
func RegionSize(rec arrow.RecordBatch) (int64, error) {
	rows := rec.NumRows()
	if rows > math.MaxInt32 {
		return 0, fmt.Errorf("batch of %d rows has more than %d", rows, math.MaxInt32)
	}
	bitmap := align((rows + 7) / 8)
	size := int64(HeaderSize) + ColumnDescSize*rec.NumCols()
	for i, col := range rec.Columns() {
		name := rec.Schema().Field(i).Name
		code, ok := typeCode(col.DataType())
		if !ok {
			return 0, &Unsupported{Column: name, Type: col.DataType().String()}
		}
		size = align(size + int64(len(name)))
		if col.NullN() > 0 {
			size += bitmap
		}
		switch code {
		case TypeInt64, TypeFloat64:
			size += 8 * rows
		case TypeInt32:
			size += align(4 * rows)
		case TypeBool:
			size += bitmap
		case TypeUTF8:
			offs := offsets(col.(*array.String), int(rows))
			size += align(4*(rows+1)) + align(int64(offs[rows]-offs[0]))
		}
	}
	if size > math.MaxUint32 {
		return 0, fmt.Errorf("batch needs %d bytes, more than 4 GiB", size)
	}
	return size, nil
}

// Encode writes rec as a batch region into dst, which must be exactly
// RegionSize(rec) bytes of zeroed or reusable guest memory. This is the one
// copy of the batch data.
func Encode(dst []byte, rec arrow.RecordBatch) error {
	size, err := RegionSize(rec)
	if err != nil {
		return err
	}
	if int64(len(dst)) != size {
		return fmt.Errorf("region is %d bytes, want %d", len(dst), size)
	}
	le := binary.LittleEndian
	rows := int(rec.NumRows())
	bitmap := (rows + 7) / 8
	le.PutUint32(dst[0:], Version)
	le.PutUint32(dst[4:], uint32(rows))
	le.PutUint32(dst[8:], uint32(rec.NumCols()))
	le.PutUint32(dst[12:], uint32(size))
	off := int(HeaderSize + ColumnDescSize*rec.NumCols())
	// pad zeroes [from, to): guest memory may hold old bytes.
	pad := func(from, to int) { clear(dst[from:to]) }
	for i, col := range rec.Columns() {
		d := dst[HeaderSize+i*ColumnDescSize : HeaderSize+(i+1)*ColumnDescSize]
		clear(d)
		put := func(k, v int) { le.PutUint32(d[4*k:], uint32(v)) }
		name := rec.Schema().Field(i).Name
		code, _ := typeCode(col.DataType())
		put(0, off)
		put(1, len(name))
		put(2, int(code))
		off += copy(dst[off:], name)
		next := int(align(int64(off)))
		pad(off, next)
		off = next
		data := col.Data()
		if col.NullN() > 0 {
			put(3, off)
			copyBits(dst[off:off+bitmap], data.Buffers()[0].Bytes(), data.Offset(), rows)
			next = int(align(int64(off + bitmap)))
			pad(off+bitmap, next)
			off = next
		}
		put(4, off)
		var n int
		switch code {
		case TypeInt64:
			n = copy(dst[off:], bytesOf(col.(*array.Int64).Int64Values()))
		case TypeFloat64:
			n = copy(dst[off:], bytesOf(col.(*array.Float64).Float64Values()))
		case TypeInt32:
			n = copy(dst[off:], bytesOf(col.(*array.Int32).Int32Values()))
		case TypeBool:
			n = bitmap
			copyBits(dst[off:off+n], data.Buffers()[1].Bytes(), data.Offset(), rows)
		case TypeUTF8:
			s := col.(*array.String)
			offs := offsets(s, rows)
			base := offs[0]
			for r, o := range offs {
				le.PutUint32(dst[off+4*r:], uint32(o-base))
			}
			n = 4 * (rows + 1)
			next = int(align(int64(off + n)))
			pad(off+n, next)
			dataOff := next
			var m int
			if rows > 0 {
				m = copy(dst[dataOff:], s.ValueBytes())
			}
			put(6, dataOff)
			put(7, m)
			put(5, n)
			off = dataOff
			n = m
		}
		if code != TypeUTF8 {
			put(5, n)
		}
		next = int(align(int64(off + n)))
		pad(off+n, next)
		off = next
	}
	if int64(off) != size {
		return fmt.Errorf("encoded %d bytes, want %d", off, size) // a bug, not a guest problem
	}
	return nil
}

// offsets returns the rows+1 offsets of s (an empty array may have none).
func offsets(s *array.String, rows int) []int32 {
	if rows == 0 {
		return []int32{0}
	}
	return s.ValueOffsets()
}

// bytesOf reinterprets fixed-width values as little-endian bytes.
func bytesOf[T int64 | int32 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), size*len(v))
	}
	out := make([]byte, size*len(v))
	for i := range v {
		p := unsafe.Pointer(&v[i])
		if size == 8 {
			binary.LittleEndian.PutUint64(out[8*i:], *(*uint64)(p))
		} else {
			binary.LittleEndian.PutUint32(out[4*i:], *(*uint32)(p))
		}
	}
	return out
}

// copyBits copies n bits of src starting at bit srcOff into dst from bit 0
// (LSB first, Arrow order), leaving the bits past n zero.
func copyBits(dst, src []byte, srcOff, n int) {
	if n == 0 {
		return
	}
	if srcOff%8 == 0 {
		copy(dst, src[srcOff/8:srcOff/8+(n+7)/8])
	} else {
		clear(dst)
		for i := 0; i < n; i++ {
			j := srcOff + i
			if src[j>>3]&(1<<(uint(j)&7)) != 0 {
				dst[i>>3] |= 1 << (uint(i) & 7)
			}
		}
	}
	if r := n % 8; r != 0 {
		dst[len(dst)-1] &= byte(1)<<r - 1
	}
}
