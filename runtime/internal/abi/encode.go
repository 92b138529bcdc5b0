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
	TypeInt64       uint32 = 1
	TypeInt32       uint32 = 2
	TypeFloat64     uint32 = 3
	TypeUTF8        uint32 = 4
	TypeBool        uint32 = 5
	TypeDictUTF8    uint32 = 6  // i32 indices + a utf8 dictionary block
	TypeTimestampS  uint32 = 7  // i64 seconds since the Unix epoch (UTC)
	TypeTimestampMS uint32 = 8  // i64 milliseconds
	TypeTimestampUS uint32 = 9  // i64 microseconds
	TypeTimestampNS uint32 = 10 // i64 nanoseconds
	TypeDate32      uint32 = 11 // i32 days since the Unix epoch
	TypeDate64      uint32 = 12 // i64 milliseconds since the Unix epoch
)

// TypeName names a type code ("" for an unknown one).
func TypeName(code uint32) string {
	switch code {
	case TypeInt64:
		return "int64"
	case TypeInt32:
		return "int32"
	case TypeFloat64:
		return "float64"
	case TypeUTF8:
		return "utf8"
	case TypeBool:
		return "bool"
	case TypeDictUTF8:
		return "dictionary<utf8>"
	case TypeTimestampS:
		return "timestamp[s]"
	case TypeTimestampMS:
		return "timestamp[ms]"
	case TypeTimestampUS:
		return "timestamp[us]"
	case TypeTimestampNS:
		return "timestamp[ns]"
	case TypeDate32:
		return "date32"
	case TypeDate64:
		return "date64"
	}
	return ""
}

// TypeCode maps an Arrow type to its ABI v1 code.
func TypeCode(t arrow.DataType) (uint32, bool) {
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
	case arrow.DICTIONARY:
		d := t.(*arrow.DictionaryType)
		if d.ValueType.ID() == arrow.STRING && arrow.IsInteger(d.IndexType.ID()) {
			return TypeDictUTF8, true
		}
	case arrow.TIMESTAMP:
		switch t.(*arrow.TimestampType).Unit {
		case arrow.Second:
			return TypeTimestampS, true
		case arrow.Millisecond:
			return TypeTimestampMS, true
		case arrow.Microsecond:
			return TypeTimestampUS, true
		case arrow.Nanosecond:
			return TypeTimestampNS, true
		}
	case arrow.DATE32:
		return TypeDate32, true
	case arrow.DATE64:
		return TypeDate64, true
	}
	return 0, false
}

// width is the bytes per value of a fixed-width type code (0 otherwise).
func width(code uint32) int64 {
	switch code {
	case TypeInt64, TypeFloat64, TypeTimestampS, TypeTimestampMS, TypeTimestampUS, TypeTimestampNS, TypeDate64:
		return 8
	case TypeInt32, TypeDate32, TypeDictUTF8:
		return 4
	}
	return 0
}

func align(n int64) int64 { return (n + Align - 1) &^ (Align - 1) }

// Unsupported is a column whose Arrow type ABI v1 cannot carry.
type Unsupported struct{ Column, Type string }

func (u *Unsupported) Error() string {
	return fmt.Sprintf("column %q has type %s, which ABI v%d does not support", u.Column, u.Type, Version)
}

// hasNulls reports whether a column needs a validity bitmap: a null row, or
// (dictionaries) a row whose dictionary entry is null.
func hasNulls(col arrow.Array) bool {
	if col.NullN() > 0 {
		return true
	}
	if d, ok := col.(*array.Dictionary); ok {
		return d.Dictionary().NullN() > 0
	}
	return false
}

// dictBlockSize is the size of a dictionary block (docs/abi.md): u32 count,
// u32 zero, count+1 i32 offsets, the bytes.
func dictBlockSize(dict *array.String) int64 {
	n := int64(dict.Len())
	offs := offsets(dict, int(n))
	return align(8+4*(n+1)) + int64(offs[n]-offs[0])
}

// parts are the unpadded lengths of a column's buffers: its validity bitmap
// (0 when no row is null), its values and its data (utf8 bytes or a
// dictionary block; 0 for other types).
func parts(col arrow.Array, code uint32, rows int64) (validity, values, data int64) {
	bitmap := (rows + 7) / 8
	if hasNulls(col) {
		validity = bitmap
	}
	switch code {
	case TypeBool:
		values = bitmap
	case TypeUTF8:
		offs := offsets(col.(*array.String), int(rows))
		values, data = 4*(rows+1), int64(offs[rows]-offs[0])
	case TypeDictUTF8:
		values, data = 4*rows, dictBlockSize(col.(*array.Dictionary).Dictionary().(*array.String))
	default:
		values = width(code) * rows
	}
	return validity, values, data
}

// blockSize is the size of a column block: validity, values and data, each
// padded to a multiple of 8 (docs/abi.md, "Lazy columns").
func blockSize(validity, values, data int64) int64 {
	return align(validity) + align(values) + align(data)
}

// RegionSize is the number of bytes Encode writes for rec.
func RegionSize(rec arrow.RecordBatch) (int64, error) {
	rows := rec.NumRows()
	if rows > math.MaxInt32 {
		return 0, fmt.Errorf("batch of %d rows has more than %d", rows, math.MaxInt32)
	}
	size := int64(HeaderSize) + ColumnDescSize*rec.NumCols()
	for i, col := range rec.Columns() {
		name := rec.Schema().Field(i).Name
		code, ok := TypeCode(col.DataType())
		if !ok {
			return 0, &Unsupported{Column: name, Type: col.DataType().String()}
		}
		size = align(size+int64(len(name))) + blockSize(parts(col, code, rows))
	}
	if size > math.MaxUint32 {
		return 0, fmt.Errorf("batch needs %d bytes, more than 4 GiB", size)
	}
	return size, nil
}

// LazyRegionSize is the number of bytes EncodeLazy writes for rec: the
// header, the descriptors and the names, no column data.
func LazyRegionSize(rec arrow.RecordBatch) (int64, error) {
	rows := rec.NumRows()
	if rows > math.MaxInt32 {
		return 0, fmt.Errorf("batch of %d rows has more than %d", rows, math.MaxInt32)
	}
	size := int64(HeaderSize) + ColumnDescSize*rec.NumCols()
	for i, col := range rec.Columns() {
		name := rec.Schema().Field(i).Name
		if _, ok := TypeCode(col.DataType()); !ok {
			return 0, &Unsupported{Column: name, Type: col.DataType().String()}
		}
		size = align(size + int64(len(name)))
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
	return encode(dst, rec, false)
}

// EncodeLazy writes rec as a lazy batch region into dst, which must be
// exactly LazyRegionSize(rec) bytes: header, lazy descriptors and names,
// no column data; the guest asks for each column it reads (State.Column).
func EncodeLazy(dst []byte, rec arrow.RecordBatch) error {
	return encode(dst, rec, true)
}

func encode(dst []byte, rec arrow.RecordBatch, lazy bool) error {
	size, err := RegionSize(rec)
	if lazy {
		size, err = LazyRegionSize(rec)
	}
	if err != nil {
		return err
	}
	if int64(len(dst)) != size {
		return fmt.Errorf("region is %d bytes, want %d", len(dst), size)
	}
	le := binary.LittleEndian
	rows := rec.NumRows()
	le.PutUint32(dst[0:], Version)
	le.PutUint32(dst[4:], uint32(rows))
	le.PutUint32(dst[8:], uint32(rec.NumCols()))
	le.PutUint32(dst[12:], uint32(size))
	off := int64(HeaderSize + ColumnDescSize*rec.NumCols())
	for i, col := range rec.Columns() {
		d := dst[HeaderSize+i*ColumnDescSize : HeaderSize+(i+1)*ColumnDescSize]
		clear(d)
		put := func(k int, v int64) { le.PutUint32(d[4*k:], uint32(v)) }
		name := rec.Schema().Field(i).Name
		code, _ := TypeCode(col.DataType())
		put(0, off)
		put(1, int64(len(name)))
		put(2, int64(code))
		next := align(off + int64(len(name)))
		copy(dst[off:], name)
		clear(dst[off+int64(len(name)) : next]) // guest memory may hold old bytes
		off = next
		v, n, m := parts(col, code, rows)
		if lazy {
			// Lazy descriptor: the lengths only (docs/abi.md, "Lazy columns").
			put(3, v)
			put(5, n)
			put(7, m)
			continue
		}
		bs := blockSize(v, n, m)
		writeBlock(dst[off:off+bs], col, code, v, n, m)
		if v > 0 {
			put(3, off)
		}
		put(4, off+align(v))
		put(5, n)
		if code == TypeUTF8 || code == TypeDictUTF8 {
			put(6, off+align(v)+align(n))
			put(7, m)
		}
		off += bs
	}
	if off != size {
		return fmt.Errorf("encoded %d bytes, want %d", off, size) // a bug, not a guest problem
	}
	return nil
}

// writeBlock writes a column block (validity, values, data, each padded to
// 8 with zeros) into dst, exactly blockSize(v, n, m) bytes.
func writeBlock(dst []byte, col arrow.Array, code uint32, v, n, m int64) {
	rows := col.Len()
	data := col.Data()
	vals := dst[align(v) : align(v)+n]
	clear(dst[v:align(v)])
	clear(dst[align(v)+n : align(v)+align(n)])
	clear(dst[align(v)+align(n)+m:])
	if v > 0 {
		writeValidity(dst[:v], col, rows)
	}
	switch code {
	case TypeBool:
		if rows > 0 {
			copyBits(vals, data.Buffers()[1].Bytes(), data.Offset(), rows)
		}
	case TypeUTF8:
		putOffsets(vals, col.(*array.String), rows)
		if rows > 0 && m > 0 {
			copy(dst[align(v)+align(n):], col.(*array.String).ValueBytes())
		}
	case TypeDictUTF8:
		dict := col.(*array.Dictionary)
		putIndices(vals, dict.Indices(), rows)
		ds := dict.Dictionary().(*array.String)
		k := ds.Len()
		// Null rows may hold any index: keep every index in range.
		for r := range rows {
			if x := binary.LittleEndian.Uint32(vals[4*r:]); x >= uint32(k) && x != 0 {
				binary.LittleEndian.PutUint32(vals[4*r:], 0)
			}
		}
		blk := dst[align(v)+align(n):]
		binary.LittleEndian.PutUint32(blk[0:], uint32(k))
		binary.LittleEndian.PutUint32(blk[4:], 0)
		on := putOffsets(blk[8:], ds, k)
		start := align(int64(8 + on))
		clear(blk[8+on : start])
		if k > 0 {
			copy(blk[start:], ds.ValueBytes())
		}
	default:
		copy(vals, fixedBytes(col, code))
	}
}

// putOffsets writes the n+1 offsets of s re-based to 0 and returns their size.
func putOffsets(dst []byte, s *array.String, n int) int {
	offs := offsets(s, n)
	base := offs[0]
	for r, o := range offs[:n+1] {
		binary.LittleEndian.PutUint32(dst[4*r:], uint32(o-base))
	}
	return 4 * (n + 1)
}

// writeValidity writes a column's validity bitmap; for a dictionary a row is
// valid when its index is and its dictionary entry is.
func writeValidity(dst []byte, col arrow.Array, rows int) {
	data := col.Data()
	if col.NullN() > 0 {
		copyBits(dst, data.Buffers()[0].Bytes(), data.Offset(), rows)
	} else {
		for i := range dst {
			dst[i] = 0xff
		}
		if r := rows % 8; r != 0 {
			dst[len(dst)-1] = byte(1)<<r - 1
		}
	}
	if d, ok := col.(*array.Dictionary); ok && d.Dictionary().NullN() > 0 {
		dict := d.Dictionary()
		for r := range rows {
			if !d.IsNull(r) && dict.IsNull(d.GetValueIndex(r)) {
				dst[r>>3] &^= 1 << (uint(r) & 7)
			}
		}
	}
}

// putIndices writes a dictionary's indices as little-endian i32 (a null
// row's index is whatever Arrow holds, clamped to 0 when out of range).
func putIndices(dst []byte, idx arrow.Array, rows int) {
	out := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(dst))), rows)
	if !littleEndian || uintptr(unsafe.Pointer(unsafe.SliceData(dst)))%4 != 0 {
		for r := range rows {
			binary.LittleEndian.PutUint32(dst[4*r:], uint32(indexAt(idx, r)))
		}
		return
	}
	switch a := idx.(type) {
	case *array.Int32:
		copy(out, a.Int32Values())
	case *array.Int8:
		convert(out, a.Int8Values())
	case *array.Int16:
		convert(out, a.Int16Values())
	case *array.Int64:
		convert(out, a.Int64Values())
	case *array.Uint8:
		convert(out, a.Uint8Values())
	case *array.Uint16:
		convert(out, a.Uint16Values())
	case *array.Uint32:
		convert(out, a.Uint32Values())
	case *array.Uint64:
		convert(out, a.Uint64Values())
	}
}

func convert[T int8 | int16 | int64 | uint8 | uint16 | uint32 | uint64](dst []int32, src []T) {
	for i, v := range src[:len(dst)] {
		if uint64(v) > math.MaxInt32 {
			v = 0
		}
		dst[i] = int32(v)
	}
}

func indexAt(idx arrow.Array, r int) int32 {
	var v int64
	switch a := idx.(type) {
	case *array.Int8:
		v = int64(a.Value(r))
	case *array.Int16:
		v = int64(a.Value(r))
	case *array.Int32:
		v = int64(a.Value(r))
	case *array.Int64:
		v = a.Value(r)
	case *array.Uint8:
		v = int64(a.Value(r))
	case *array.Uint16:
		v = int64(a.Value(r))
	case *array.Uint32:
		v = int64(a.Value(r))
	case *array.Uint64:
		v = int64(a.Value(r))
	}
	if v < 0 || v > math.MaxInt32 {
		return 0
	}
	return int32(v)
}

// fixedBytes is the values buffer of a fixed-width column, as little-endian
// bytes, without copying where possible.
func fixedBytes(col arrow.Array, code uint32) []byte {
	switch a := col.(type) {
	case *array.Int64:
		return bytesOf(a.Int64Values())
	case *array.Int32:
		return bytesOf(a.Int32Values())
	case *array.Float64:
		return bytesOf(a.Float64Values())
	case *array.Timestamp:
		return bytesOf(a.TimestampValues())
	case *array.Date32:
		return bytesOf(a.Date32Values())
	case *array.Date64:
		return bytesOf(a.Date64Values())
	}
	panic(fmt.Sprintf("abi: no fixed-width buffer for %s (type %d)", col.DataType(), code))
}

// offsets returns the rows+1 offsets of s (an empty array may have none).
func offsets(s *array.String, rows int) []int32 {
	if rows == 0 {
		return []int32{0}
	}
	return s.ValueOffsets()
}

// bytesOf reinterprets fixed-width values as little-endian bytes.
func bytesOf[T ~int64 | ~int32 | ~float64](v []T) []byte {
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
