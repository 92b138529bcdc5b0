package guest

import "math"

// Op is a comparison of a filter kernel.
type Op uint32

// Comparison operators. Null rows never pass a comparison.
const (
	Eq Op = 1 // ==
	Ne Op = 2 // !=
	Lt Op = 3 // <
	Le Op = 4 // <=
	Gt Op = 5 // >
	Ge Op = 6 // >=
)

const (
	opNotNull = 0
	opIsNull  = 7
	noColumn  = math.MaxUint32
)

// Rows is a set of rows of the current batch that the host holds: the
// result of host kernels, which run natively over the batch's Arrow
// buffers without a host call per row. It is valid during the handler call
// of its batch. Rows keep the batch's order.
type Rows struct {
	b *Batch
	h uint32
}

// All is every row of the batch.
func (b *Batch) All() Rows { return Rows{b: b, h: 0} }

// Select makes a set of the rows listed (each < Len), for rows a handler
// chose with its own per-row logic.
func (b *Batch) Select(rows []uint32) Rows {
	return Rows{b: b, h: b.host().kselect(rows)}
}

func (b *Batch) host() host {
	if cur.batch != b {
		panic("guest: a kernel used outside its batch")
	}
	return cur.host
}

func (r Rows) filter(col string, op uint32, arg []byte) Rows {
	return Rows{b: r.b, h: r.b.host().kfilter(r.h, uint32(r.b.index(col)), op, arg)}
}

// NotNull keeps the rows where col is not null.
func (r Rows) NotNull(col string) Rows { return r.filter(col, opNotNull, nil) }

// IsNull keeps the rows where col is null.
func (r Rows) IsNull(col string) Rows { return r.filter(col, opIsNull, nil) }

// WhereInt keeps the rows where col op v holds; col is an int64, int32,
// timestamp (v in its unit), date (v in days for date32, ms for date64) or
// bool (v 0 or 1) column.
func (r Rows) WhereInt(col string, op Op, v int64) Rows {
	c := r.b.columns[r.b.index(col)].typ
	if c == typeFloat64 || c == typeUTF8 || c == typeDict {
		panic("guest: WhereInt on " + typeNames[c] + " column " + q(col))
	}
	var arg [8]byte
	le.PutUint64(arg[:], uint64(v))
	return r.filter(col, uint32(op), arg[:])
}

// WhereFloat keeps the rows where the float64 column col op v holds.
func (r Rows) WhereFloat(col string, op Op, v float64) Rows {
	r.b.column(col, typeFloat64)
	var arg [8]byte
	le.PutUint64(arg[:], math.Float64bits(v))
	return r.filter(col, uint32(op), arg[:])
}

// WhereString keeps the rows where the utf8 column col op v holds
// (byte-wise comparison).
func (r Rows) WhereString(col string, op Op, v string) Rows {
	r.b.columnOf(col, typeUTF8, typeDict)
	return r.filter(col, uint32(op), []byte(v))
}

// Len is the number of rows in the set.
func (r Rows) Len() int { return int(r.b.host().klen(r.h)) }

// Indices copies the row indices out of the host, for per-row logic.
func (r Rows) Indices() []uint32 { return readAll(r.b, r.h, 0) }

// GroupBy assigns each row a key made of its values in cols, interned on
// the host: the parts joined by U+001F like Key, integers in decimal
// (timestamps and dates as their raw number), floats in Go's shortest 'g'
// form (strconv.FormatFloat(v, 'g', -1, 64)), bools as true/false, strings
// as they are (a U+001F inside replaced by U+FFFD). Rows with a null in any of cols are left out. With
// no column, every row gets the empty key.
func (r Rows) GroupBy(cols ...string) Groups {
	idx := make([]uint32, len(cols))
	for i, c := range cols {
		idx[i] = uint32(r.b.index(c))
	}
	return Groups{b: r.b, h: r.b.host().kbucket(r.h, idx)}
}

// Groups are rows with a key each, made by Rows.GroupBy on the host.
type Groups struct {
	b *Batch
	h uint32
}

// Len is the number of rows.
func (g Groups) Len() int { return int(g.b.host().klen(g.h)) }

// Indices copies the row indices out of the host.
func (g Groups) Indices() []uint32 { return readAll(g.b, g.h, 0) }

// KeyIDs copies the key id of each row out of the host (ids as the host
// interned them; the same id always names the same key).
func (g Groups) KeyIDs() []uint32 { return readAll(g.b, g.h, 1) }

// NotNull keeps the rows where col is not null, with their keys.
func (g Groups) NotNull(col string) Groups {
	return Groups{b: g.b, h: Rows(g).NotNull(col).h}
}

func readAll(b *Batch, h, what uint32) []uint32 {
	hs := b.host()
	out := make([]uint32, hs.klen(h))
	if len(out) > 0 {
		hs.kread(h, what, 0, out)
	}
	return out
}

// AddColumn contributes, for each row of g, the row's value in column col
// (int64, int32, float64, bool, timestamp or date, as float64) to the
// row's key, on behalf of the row's privacy unit. The host makes the
// contributions itself; rows where col is null are skipped.
func (o *Emitter) AddColumn(g Groups, col string) {
	o.st.host.kemit(o.id, g.h, uint32(g.b.index(col)))
}

// CountRows contributes 1 for each row of g to the row's key.
func (o *Emitter) CountRows(g Groups) {
	g.b.host() // checks g is of the current batch
	o.st.host.kemit(o.id, g.h, noColumn)
}
