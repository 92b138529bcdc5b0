package guest

import (
	"errors"
	"unsafe"
)

// ABIVersion is the version of the Cove guest ABI this SDK implements.
const ABIVersion = 1

// Layout of a batch region (docs/abi.md, "Batch region"). All integers are
// little-endian; offsets are relative to the start of the region.
const (
	headerSize     = 16
	columnDescSize = 32
)

// Column type codes of ABI v1.
const (
	typeInt64   = 1
	typeInt32   = 2
	typeFloat64 = 3
	typeUTF8    = 4
	typeBool    = 5
)

var typeNames = map[uint32]string{
	typeInt64: "int64", typeInt32: "int32", typeFloat64: "float64", typeUTF8: "utf8", typeBool: "bool",
}

type column struct {
	name     string
	typ      uint32
	validity []byte // nil: no nulls
	values   []byte
	data     []byte // utf8 only
}

// Batch is one record batch: a number of rows and named, typed columns.
// It is valid during the handler call; the column views it returns stay
// readable afterwards.
type Batch struct {
	rows    int
	columns []column
	byName  map[string]int
}

// Len is the number of rows.
func (b *Batch) Len() int { return b.rows }

// Columns returns the column names in batch order.
func (b *Batch) Columns() []string {
	names := make([]string, len(b.columns))
	for i, c := range b.columns {
		names[i] = c.name
	}
	return names
}

// Has reports whether the batch has a column of that name.
func (b *Batch) Has(name string) bool { _, ok := b.byName[name]; return ok }

func (b *Batch) column(name string, typ uint32) *column {
	i, ok := b.byName[name]
	if !ok {
		panic("guest: column " + q(name) + " is not in the batch")
	}
	c := &b.columns[i]
	if c.typ != typ {
		panic("guest: column " + q(name) + " is " + typeNames[c.typ] + ", not " + typeNames[typ])
	}
	return c
}

// validity is an Arrow validity bitmap: bit i (LSB first) set means row i is
// not null. A nil bitmap means no row is null.
type validity []byte

func (v validity) isNull(i int) bool { return v != nil && v[i>>3]&(1<<(uint(i)&7)) == 0 }

// Int64s is a view of an int64 column.
type Int64s struct {
	values []int64
	valid  validity
}

// Int64 returns the int64 column name; it panics if there is none.
func (b *Batch) Int64(name string) Int64s {
	c := b.column(name, typeInt64)
	return Int64s{values: view[int64](c.values, b.rows), valid: c.validity}
}

// Len is the number of rows.
func (c Int64s) Len() int { return len(c.values) }

// Value is row i's value (zero when null).
func (c Int64s) Value(i int) int64 { return c.values[i] }

// IsNull reports whether row i is null.
func (c Int64s) IsNull(i int) bool { return c.valid.isNull(i) }

// Values is the whole column, nulls included as zeros, without copying.
func (c Int64s) Values() []int64 { return c.values }

// Int32s is a view of an int32 column.
type Int32s struct {
	values []int32
	valid  validity
}

// Int32 returns the int32 column name; it panics if there is none.
func (b *Batch) Int32(name string) Int32s {
	c := b.column(name, typeInt32)
	return Int32s{values: view[int32](c.values, b.rows), valid: c.validity}
}

// Len is the number of rows.
func (c Int32s) Len() int { return len(c.values) }

// Value is row i's value (zero when null).
func (c Int32s) Value(i int) int32 { return c.values[i] }

// IsNull reports whether row i is null.
func (c Int32s) IsNull(i int) bool { return c.valid.isNull(i) }

// Values is the whole column, nulls included as zeros, without copying.
func (c Int32s) Values() []int32 { return c.values }

// Float64s is a view of a float64 column.
type Float64s struct {
	values []float64
	valid  validity
}

// Float64 returns the float64 column name; it panics if there is none.
func (b *Batch) Float64(name string) Float64s {
	c := b.column(name, typeFloat64)
	return Float64s{values: view[float64](c.values, b.rows), valid: c.validity}
}

// Len is the number of rows.
func (c Float64s) Len() int { return len(c.values) }

// Value is row i's value (zero when null).
func (c Float64s) Value(i int) float64 { return c.values[i] }

// IsNull reports whether row i is null.
func (c Float64s) IsNull(i int) bool { return c.valid.isNull(i) }

// Values is the whole column, nulls included as zeros, without copying.
func (c Float64s) Values() []float64 { return c.values }

// Strings is a view of a utf8 column.
type Strings struct {
	offsets []int32
	data    []byte
	valid   validity
}

// String returns the utf8 column name; it panics if there is none.
func (b *Batch) String(name string) Strings {
	c := b.column(name, typeUTF8)
	return Strings{offsets: view[int32](c.values, b.rows+1), data: c.data, valid: c.validity}
}

// Len is the number of rows.
func (c Strings) Len() int { return len(c.offsets) - 1 }

// Value is row i's value ("" when null). It points into the batch region
// without copying.
func (c Strings) Value(i int) string {
	start, end := c.offsets[i], c.offsets[i+1]
	if end <= start {
		return ""
	}
	return unsafe.String(&c.data[start], int(end-start))
}

// IsNull reports whether row i is null.
func (c Strings) IsNull(i int) bool { return c.valid.isNull(i) }

// Bools is a view of a bool column.
type Bools struct {
	bits  validity
	n     int
	valid validity
}

// Bool returns the bool column name; it panics if there is none.
func (b *Batch) Bool(name string) Bools {
	c := b.column(name, typeBool)
	return Bools{bits: c.values, n: b.rows, valid: c.validity}
}

// Len is the number of rows.
func (c Bools) Len() int { return c.n }

// Value is row i's value (false when null).
func (c Bools) Value(i int) bool {
	if uint(i) >= uint(c.n) {
		panic(rowRange(i, c.n))
	}
	return !c.bits.isNull(i)
}

// IsNull reports whether row i is null.
func (c Bools) IsNull(i int) bool { return c.valid.isNull(i) }

// view reinterprets b as n values of T in place. The region is 8-aligned and
// every buffer in it is 8-aligned (checked by decode), so the conversion is
// aligned.
func view[T int64 | int32 | float64](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	if len(b) < n*int(unsafe.Sizeof(zero)) {
		panic("guest: batch buffer too short")
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// decode parses a batch region. The host is trusted, but a malformed region
// is reported rather than read out of bounds.
func decode(region []byte) (*Batch, error) {
	if len(region) < headerSize {
		return nil, errors.New("guest: batch region of " + itoa(len(region)) + " bytes is too short")
	}
	if v := le.Uint32(region[0:]); v != ABIVersion {
		return nil, errors.New("guest: batch region has ABI version " + itoa(int(v)) + ", want " + itoa(ABIVersion))
	}
	rows := int(le.Uint32(region[4:]))
	ncols := int(le.Uint32(region[8:]))
	if total := int(le.Uint32(region[12:])); total != len(region) {
		return nil, errors.New("guest: batch region says " + itoa(total) + " bytes, got " + itoa(len(region)))
	}
	if ncols > (len(region)-headerSize)/columnDescSize {
		return nil, errors.New("guest: batch region too short for " + itoa(ncols) + " columns")
	}
	b := &Batch{rows: rows, columns: make([]column, ncols), byName: make(map[string]int, ncols)}
	bitmapLen := (rows + 7) / 8
	for i := range b.columns {
		d := region[headerSize+i*columnDescSize:]
		f := func(k int) int { return int(le.Uint32(d[4*k:])) }
		sub := func(off, n, align int) ([]byte, error) {
			if off%align != 0 || off < 0 || n < 0 || off > len(region) || n > len(region)-off {
				return nil, errors.New("guest: column " + itoa(i) + ": buffer [" + itoa(off) + ",+" + itoa(n) + ") outside the region or misaligned")
			}
			return region[off : off+n : off+n], nil
		}
		name, err := sub(f(0), f(1), 1)
		if err != nil {
			return nil, err
		}
		c := column{name: string(name), typ: uint32(f(2))}
		if voff := f(3); voff != 0 {
			if c.validity, err = sub(voff, bitmapLen, 1); err != nil {
				return nil, err
			}
		}
		if c.values, err = sub(f(4), f(5), 8); err != nil {
			return nil, err
		}
		var want int
		switch c.typ {
		case typeInt64, typeFloat64:
			want = 8 * rows
		case typeInt32:
			want = 4 * rows
		case typeBool:
			want = bitmapLen
		case typeUTF8:
			want = 4 * (rows + 1)
			if c.data, err = sub(f(6), f(7), 1); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("guest: column " + q(c.name) + " has unknown type " + itoa(int(c.typ)))
		}
		if len(c.values) != want {
			return nil, errors.New("guest: column " + q(c.name) + " has " + itoa(len(c.values)) + " value bytes, want " + itoa(want))
		}
		if c.typ == typeUTF8 {
			offs := view[int32](c.values, rows+1)
			prev := int32(0)
			for _, o := range offs {
				if o < prev || int(o) > len(c.data) {
					return nil, errors.New("guest: column " + q(c.name) + " has bad utf8 offsets")
				}
				prev = o
			}
		}
		if _, dup := b.byName[c.name]; dup {
			return nil, errors.New("guest: column " + q(c.name) + " appears twice")
		}
		b.byName[c.name] = i
		b.columns[i] = c
	}
	return b, nil
}
