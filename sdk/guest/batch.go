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
	typeDict    = 6 // dictionary-encoded utf8: i32 indices + a dictionary block
	typeTSSec   = 7
	typeTSMilli = 8
	typeTSMicro = 9
	typeTSNano  = 10
	typeDate32  = 11
	typeDate64  = 12
)

var typeNames = map[uint32]string{
	typeInt64: "int64", typeInt32: "int32", typeFloat64: "float64", typeUTF8: "utf8", typeBool: "bool",
	typeDict: "dictionary<utf8>", typeTSSec: "timestamp[s]", typeTSMilli: "timestamp[ms]",
	typeTSMicro: "timestamp[us]", typeTSNano: "timestamp[ns]", typeDate32: "date32", typeDate64: "date64",
}

type column struct {
	name     string
	typ      uint32
	validity []byte // nil: no nulls
	values   []byte
	data     []byte  // utf8: the bytes; dictionary: the dictionary's bytes
	dictOffs []int32 // dictionary: its offsets
	checked  bool    // offsets or indices validated (on first use: a kernels-only job never pays the per-row check)

	// Lazy batches (docs/abi.md, "Lazy columns"): the buffers' lengths, and
	// whether they were copied in yet.
	loaded           bool
	vlen, nlen, dlen int
}

// Batch is one record batch: a number of rows and named, typed columns.
// It and the column views it returns are valid until the next batch
// begins: the SDK reuses their memory for the next batch. Copy what you
// keep longer (strings.Clone for a string from Strings.Value).
//
// In the planning call (plan mode) a Batch has the columns' names and
// types but no rows: what reads values (Len, the column views) panics, and
// the fluent calls record the plan.
type Batch struct {
	rows    int
	columns []column
	byName  map[string]int
	st      *state   // lazy batches: the state whose host copies columns in on first use
	plan    *planner // plan mode: the plan being built; nil in batch mode
}

// Len is the number of rows. Batch mode only: the planning call has no
// rows, and Len panics there.
func (b *Batch) Len() int {
	b.planning("Batch.Len")
	return b.rows
}

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
	return b.columnOf(name, typ, typ)
}

// columnOf returns the column name, whose type must be in [lo, hi], with
// its buffers (copied from the host on first use in a lazy batch).
func (b *Batch) columnOf(name string, lo, hi uint32) *column {
	b.planning("column " + q(name))
	i := b.typeCheck(name, lo, hi)
	c := &b.columns[i]
	if !c.loaded {
		b.load(i)
	}
	return c
}

// typeCheck returns the index of column name, whose type must be in
// [lo, hi]; it copies nothing in.
func (b *Batch) typeCheck(name string, lo, hi uint32) int {
	i := b.index(name)
	if c := &b.columns[i]; c.typ < lo || c.typ > hi {
		want := typeNames[lo]
		if hi != lo {
			want += " to " + typeNames[hi]
		}
		panic("guest: column " + q(name) + " is " + typeNames[c.typ] + ", not " + want)
	}
	return i
}

func pad8(n int) int { return (n + 7) &^ 7 }

// load copies column i of a lazy batch from the host (import "column")
// into a buffer the SDK keeps for column i, reused batch after batch.
func (b *Batch) load(i int) {
	c := &b.columns[i]
	st := b.st
	if st == nil || st.batch != b {
		panic("guest: column " + q(c.name) + " read outside its batch")
	}
	size := pad8(c.vlen) + pad8(c.nlen) + pad8(c.dlen)
	for len(st.colBufs) <= i {
		st.colBufs = append(st.colBufs, nil)
	}
	if 8*len(st.colBufs[i]) < size {
		st.colBufs[i] = make([]uint64, (size+7)/8)
	}
	block := unsafeBytes(st.colBufs[i])[:size:size]
	if size > 0 {
		st.host.column(uint32(i), block)
	}
	if c.vlen > 0 {
		c.validity = block[:c.vlen]
	}
	at := pad8(c.vlen)
	c.values = block[at : at+c.nlen]
	at += pad8(c.nlen)
	c.data = block[at : at+c.dlen]
	if c.typ == typeDict {
		var err error
		if c.dictOffs, c.data, err = dictBlock(c.data); err != nil {
			panic("guest: column " + q(c.name) + ": " + err.Error())
		}
	}
	c.loaded = true
}

// index is the position of column name in the batch.
func (b *Batch) index(name string) int {
	i, ok := b.byName[name]
	if !ok {
		panic("guest: column " + q(name) + " is not in the batch")
	}
	return i
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

// Values is the whole column, nulls included as zeros, without copying
// (valid until the next batch).
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

// Values is the whole column, nulls included as zeros, without copying
// (valid until the next batch).
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

// Values is the whole column, nulls included as zeros, without copying
// (valid until the next batch).
func (c Float64s) Values() []float64 { return c.values }

// Strings is a view of a utf8 column, plain or dictionary-encoded.
type Strings struct {
	offsets []int32 // plain: per row; dictionary: per dictionary entry
	data    []byte
	index   []int32 // dictionary: the entry of each row; nil when plain
	n       int
	valid   validity
}

// String returns the utf8 column name, plain or dictionary-encoded; it
// panics if there is none.
func (b *Batch) String(name string) Strings {
	c := b.columnOf(name, typeUTF8, typeDict)
	if !c.checked {
		c.check(b.rows)
	}
	if c.typ == typeUTF8 {
		return Strings{offsets: view[int32](c.values, b.rows+1), data: c.data, n: b.rows, valid: c.validity}
	}
	return Strings{offsets: c.dictOffs, data: c.data, index: view[int32](c.values, b.rows), n: b.rows, valid: c.validity}
}

// Len is the number of rows.
func (c Strings) Len() int { return c.n }

// Value is row i's value ("" when null). It points into the column's buffer
// without copying and is valid until the next batch: strings.Clone it to
// keep it longer.
func (c Strings) Value(i int) string {
	if c.index != nil {
		if uint(i) >= uint(c.n) {
			panic(rowRange(i, c.n))
		}
		return c.DictValue(int(c.index[i]))
	}
	return c.at(i)
}

func (c Strings) at(j int) string {
	start, end := c.offsets[j], c.offsets[j+1]
	if end <= start {
		return ""
	}
	return unsafe.String(&c.data[start], int(end-start))
}

// IsDict reports whether the column is dictionary-encoded: each row holds
// an index into a dictionary of distinct strings.
func (c Strings) IsDict() bool { return c.index != nil }

// Index is row i's dictionary index (-1 for a plain column).
func (c Strings) Index(i int) int {
	if c.index == nil {
		return -1
	}
	return int(c.index[i])
}

// DictLen is the number of dictionary entries (0 for a plain column).
func (c Strings) DictLen() int {
	if c.index == nil {
		return 0
	}
	return len(c.offsets) - 1
}

// DictValue is dictionary entry j ("" when out of range).
func (c Strings) DictValue(j int) string {
	if uint(j) >= uint(len(c.offsets)-1) || c.index == nil {
		return ""
	}
	return c.at(j)
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

// TimeUnit is the unit of a timestamp column.
type TimeUnit int

// Timestamp units.
const (
	Second TimeUnit = iota
	Millisecond
	Microsecond
	Nanosecond
)

// Timestamps is a view of a timestamp column: instants since the Unix epoch
// (UTC) in the column's unit.
type Timestamps struct {
	values []int64
	unit   TimeUnit
	valid  validity
}

// Timestamp returns the timestamp column name (any unit); it panics if there
// is none.
func (b *Batch) Timestamp(name string) Timestamps {
	c := b.columnOf(name, typeTSSec, typeTSNano)
	return Timestamps{values: view[int64](c.values, b.rows), unit: TimeUnit(c.typ - typeTSSec), valid: c.validity}
}

// Len is the number of rows.
func (c Timestamps) Len() int { return len(c.values) }

// Unit is the unit of the values.
func (c Timestamps) Unit() TimeUnit { return c.unit }

// Value is row i's instant in the column's unit (zero when null).
func (c Timestamps) Value(i int) int64 { return c.values[i] }

// UnixSeconds is row i's instant in whole seconds (rounded down).
func (c Timestamps) UnixSeconds(i int) int64 {
	div := [...]int64{1, 1e3, 1e6, 1e9}[c.unit]
	v := c.values[i]
	q := v / div
	if v%div < 0 {
		q--
	}
	return q
}

// IsNull reports whether row i is null.
func (c Timestamps) IsNull(i int) bool { return c.valid.isNull(i) }

// Values is the whole column, nulls included as zeros, without copying
// (valid until the next batch).
func (c Timestamps) Values() []int64 { return c.values }

// Dates is a view of a date32 or date64 column.
type Dates struct {
	days32 []int32
	ms64   []int64
	valid  validity
}

// Date returns the date32 or date64 column name; it panics if there is none.
func (b *Batch) Date(name string) Dates {
	c := b.columnOf(name, typeDate32, typeDate64)
	if c.typ == typeDate32 {
		return Dates{days32: view[int32](c.values, b.rows), valid: c.validity}
	}
	return Dates{ms64: view[int64](c.values, b.rows), valid: c.validity}
}

// Len is the number of rows.
func (c Dates) Len() int { return max(len(c.days32), len(c.ms64)) }

// Days is row i's date in days since 1970-01-01 (zero when null).
func (c Dates) Days(i int) int64 {
	if c.days32 != nil || c.ms64 == nil {
		return int64(c.days32[i])
	}
	v := c.ms64[i]
	q := v / 86_400_000
	if v%86_400_000 < 0 {
		q--
	}
	return q
}

// IsNull reports whether row i is null.
func (c Dates) IsNull(i int) bool { return c.valid.isNull(i) }

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
		c := column{name: string(name), typ: uint32(f(2)), loaded: true}
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
		case typeInt64, typeFloat64, typeTSSec, typeTSMilli, typeTSMicro, typeTSNano, typeDate64:
			want = 8 * rows
		case typeInt32, typeDate32:
			want = 4 * rows
		case typeDict:
			want = 4 * rows
			if c.data, err = sub(f(6), f(7), 8); err != nil {
				return nil, err
			}
			if c.dictOffs, c.data, err = dictBlock(c.data); err != nil {
				return nil, errors.New("guest: column " + q(c.name) + ": " + err.Error())
			}
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
		if _, dup := b.byName[c.name]; dup {
			return nil, errors.New("guest: column " + q(c.name) + " appears twice")
		}
		b.byName[c.name] = i
		b.columns[i] = c
	}
	return b, nil
}

// valuesLen is the length of a column's values buffer, or -1 for an
// unknown type.
func valuesLen(typ uint32, rows int) int {
	switch typ {
	case typeInt64, typeFloat64, typeTSSec, typeTSMilli, typeTSMicro, typeTSNano, typeDate64:
		return 8 * rows
	case typeInt32, typeDate32, typeDict:
		return 4 * rows
	case typeBool:
		return (rows + 7) / 8
	case typeUTF8:
		return 4 * (rows + 1)
	}
	return -1
}

// decodeLazy parses a lazy batch region (docs/abi.md, "Lazy columns"):
// names, types and buffer lengths; st's host copies a column in when the
// handler first reads it.
func decodeLazy(region []byte, st *state) (*Batch, error) {
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
	if ncols > (len(region)-headerSize)/columnDescSize || rows > 1<<31-1 {
		return nil, errors.New("guest: batch region too short for " + itoa(ncols) + " columns")
	}
	b := &Batch{rows: rows, columns: make([]column, ncols), byName: make(map[string]int, ncols), st: st}
	for i := range b.columns {
		d := region[headerSize+i*columnDescSize:]
		f := func(k int) int { return int(le.Uint32(d[4*k:])) }
		off, n := f(0), f(1)
		if off > len(region) || n > len(region)-off {
			return nil, errors.New("guest: column " + itoa(i) + ": name outside the region")
		}
		c := column{name: string(region[off : off+n]), typ: uint32(f(2)), vlen: f(3), nlen: f(5), dlen: f(7)}
		want := valuesLen(c.typ, rows)
		switch {
		case want < 0:
			return nil, errors.New("guest: column " + q(c.name) + " has unknown type " + itoa(int(c.typ)))
		case c.nlen != want:
			return nil, errors.New("guest: column " + q(c.name) + " has " + itoa(c.nlen) + " value bytes, want " + itoa(want))
		case c.vlen != 0 && c.vlen != (rows+7)/8:
			return nil, errors.New("guest: column " + q(c.name) + " has a validity bitmap of " + itoa(c.vlen) + " bytes")
		case c.dlen != 0 && c.typ != typeUTF8 && c.typ != typeDict, c.dlen > 1<<31-1:
			return nil, errors.New("guest: column " + q(c.name) + " has data it cannot have")
		}
		if _, dup := b.byName[c.name]; dup {
			return nil, errors.New("guest: column " + q(c.name) + " appears twice")
		}
		b.byName[c.name] = i
		b.columns[i] = c
	}
	return b, nil
}

func offsetsOK(offs []int32, n int) bool {
	prev := int32(0)
	for _, o := range offs {
		if o < prev || int(o) > n {
			return false
		}
		prev = o
	}
	return len(offs) > 0 && offs[0] == 0
}

// dictBlock splits a dictionary block: u32 count, u32 0, count+1 i32
// offsets, then (8-aligned) the bytes.
func dictBlock(b []byte) ([]int32, []byte, error) {
	if len(b) < 8 {
		return nil, nil, errors.New("dictionary block too short")
	}
	n := int(le.Uint32(b))
	if n > (len(b)-8)/4-1 {
		return nil, nil, errors.New("dictionary block too short for its entries")
	}
	offs := view[int32](b[8:], n+1)
	start := (8 + 4*(n+1) + 7) &^ 7
	if start > len(b) {
		start = len(b)
	}
	data := b[start:]
	if !offsetsOK(offs, len(data)) {
		return nil, nil, errors.New("dictionary has bad offsets")
	}
	return offs, data, nil
}

// check validates a string column's offsets or dictionary indices once.
func (c *column) check(rows int) {
	if c.typ == typeUTF8 && !offsetsOK(view[int32](c.values, rows+1), len(c.data)) {
		panic("guest: column " + q(c.name) + " has bad utf8 offsets")
	}
	if c.typ == typeDict {
		n := int32(len(c.dictOffs) - 1)
		for _, x := range view[int32](c.values, rows) {
			if (x < 0 || x >= n) && (x != 0 || n != 0) {
				panic("guest: column " + q(c.name) + " has a dictionary index out of range")
			}
		}
	}
	c.checked = true
}
