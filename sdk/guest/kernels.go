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

// Rows is a set of rows of the current batch. In batch mode the host holds
// it: the result of host kernels, which run natively over the batch's Arrow
// buffers without a host call per row. In plan mode it is the condition
// that selects the rows, a part of the plan. It is valid during the handler
// call of its batch. Rows keep the batch's order.
type Rows struct {
	b     *Batch
	h     uint32
	where []Expr // plan mode: the conjuncts that select the rows
}

// All is every row of the batch.
func (b *Batch) All() Rows { return Rows{b: b, h: 0} }

// Select makes a set of the rows listed (each < Len), for rows a handler
// chose with its own per-row logic. Batch mode only.
func (b *Batch) Select(rows []uint32) Rows {
	b.planning("Batch.Select")
	return Rows{b: b, h: b.host().kselect(rows)}
}

func (b *Batch) host() host {
	if cur.batch != b {
		panic("guest: a kernel used outside its batch")
	}
	if b.plan != nil {
		panic("guest: plan mode: no kernel runs while planning")
	}
	return cur.host
}

func (r Rows) filter(col string, op uint32, arg []byte) Rows {
	return Rows{b: r.b, h: r.b.host().kfilter(r.h, uint32(r.b.index(col)), op, arg)}
}

// and is r narrowed to the rows where e is true (plan mode).
func (r Rows) and(e Expr) Rows { return Rows{b: r.b, where: with(r.where, e)} }

// NotNull keeps the rows where col is not null.
func (r Rows) NotNull(col string) Rows {
	if r.b.plan != nil {
		r.b.planType(col)
		return r.and(Col(col).IsNotNull())
	}
	return r.filter(col, opNotNull, nil)
}

// IsNull keeps the rows where col is null.
func (r Rows) IsNull(col string) Rows {
	if r.b.plan != nil {
		r.b.planType(col)
		return r.and(Col(col).IsNull())
	}
	return r.filter(col, opIsNull, nil)
}

// WhereInt keeps the rows where col op v holds; col is an int64, int32,
// timestamp (v in its unit), date (v in days for date32, ms for date64) or
// bool (v 0 or 1) column.
func (r Rows) WhereInt(col string, op Op, v int64) Rows {
	if r.b.plan != nil {
		if t := r.b.planType(col); t == typeFloat64 || t == typeUTF8 || t == typeDict {
			panic("guest: WhereInt on " + typeNames[t] + " column " + q(col))
		}
		return r.and(r.b.planInt(col, op, v))
	}
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
	if r.b.plan != nil {
		if t := r.b.planType(col); t != 0 && t != typeFloat64 {
			r.b.typeCheck(col, typeFloat64, typeFloat64)
		}
		return r.and(cmp(Col(col), op, Float(v)))
	}
	r.b.typeCheck(col, typeFloat64, typeFloat64)
	var arg [8]byte
	le.PutUint64(arg[:], math.Float64bits(v))
	return r.filter(col, uint32(op), arg[:])
}

// WhereString keeps the rows where the utf8 column col op v holds
// (byte-wise comparison).
func (r Rows) WhereString(col string, op Op, v string) Rows {
	if r.b.plan != nil {
		if t := r.b.planType(col); t != 0 {
			r.b.typeCheck(col, typeUTF8, typeDict)
		}
		return r.and(cmp(Col(col), op, Str(v)))
	}
	r.b.typeCheck(col, typeUTF8, typeDict)
	return r.filter(col, uint32(op), []byte(v))
}

// Where keeps the rows where e is true (not false, not null).
//
// In batch mode e must be what the host kernels can do: comparisons of a
// column with a literal (Int, Float, Str or Bool), IsNull and IsNotNull of
// a column, Between of a column and two literals, and And of these.
func (r Rows) Where(e Expr) Rows {
	e.node()
	if r.b.plan != nil {
		return r.and(e)
	}
	return r.lower(e)
}

// Len is the number of rows in the set. Batch mode only.
func (r Rows) Len() int {
	r.b.planning("Rows.Len")
	return int(r.b.host().klen(r.h))
}

// Indices copies the row indices out of the host, for per-row logic.
// Batch mode only.
func (r Rows) Indices() []uint32 {
	r.b.planning("Rows.Indices")
	return readAll(r.b, r.h, 0)
}

// GroupBy assigns each row a key made of its values in cols, interned on
// the host: the parts joined by U+001F like Key, integers in decimal,
// floats in Go's shortest 'g' form (strconv.FormatFloat(v, 'g', -1, 64)),
// bools as true/false, strings as they are (a U+001F inside replaced by
// U+FFFD); timestamps and dates as their raw number in batch mode, as
// RFC 3339 and 2006-01-02 in plan mode. Rows with a null in any of cols are
// left out. With no column, every row gets the empty key.
func (r Rows) GroupBy(cols ...string) Groups {
	if r.b.plan != nil {
		keys := make([]Expr, len(cols))
		for i, c := range cols {
			r.b.planType(c)
			keys[i] = Col(c)
		}
		return Groups{b: r.b, where: r.where, keys: keys}
	}
	idx := make([]uint32, len(cols))
	for i, c := range cols {
		idx[i] = uint32(r.b.index(c))
	}
	return Groups{b: r.b, h: r.b.host().kbucket(r.h, idx)}
}

// GroupByExpr is GroupBy with a key part computed by each of parts (each
// formatted as GroupBy formats a column's values). In batch mode every part
// must be a plain column (Col).
func (r Rows) GroupByExpr(parts ...Expr) Groups {
	if r.b.plan != nil {
		for _, p := range parts {
			p.node()
		}
		return Groups{b: r.b, where: r.where, keys: append([]Expr(nil), parts...)}
	}
	cols := make([]string, len(parts))
	for i, p := range parts {
		name, ok := p.column()
		if !ok {
			panic("guest: batch mode: GroupByExpr runs on host kernels only for plain columns, not " + p.String() + "; expressions need plan mode")
		}
		cols[i] = name
	}
	return r.GroupBy(cols...)
}

// Groups are rows with a key each, made by Rows.GroupBy: on the host in
// batch mode, a part of the plan in plan mode.
type Groups struct {
	b     *Batch
	h     uint32
	where []Expr // plan mode
	keys  []Expr // plan mode: the key parts
}

// Len is the number of rows. Batch mode only.
func (g Groups) Len() int {
	g.b.planning("Groups.Len")
	return int(g.b.host().klen(g.h))
}

// Indices copies the row indices out of the host. Batch mode only.
func (g Groups) Indices() []uint32 {
	g.b.planning("Groups.Indices")
	return readAll(g.b, g.h, 0)
}

// KeyIDs copies the key id of each row out of the host (ids as the host
// interned them; the same id always names the same key). Batch mode only.
func (g Groups) KeyIDs() []uint32 {
	g.b.planning("Groups.KeyIDs")
	return readAll(g.b, g.h, 1)
}

// NotNull keeps the rows where col is not null, with their keys.
func (g Groups) NotNull(col string) Groups {
	if g.b.plan != nil {
		g.b.planType(col)
		g.where = with(g.where, Col(col).IsNotNull())
		return g
	}
	return Groups{b: g.b, h: Rows{b: g.b, h: g.h}.NotNull(col).h}
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
// contributions itself; rows where col is null are skipped. In plan mode
// col must be numeric or bool, and the output is given its rows once.
func (o *Emitter) AddColumn(g Groups, col string) {
	if g.b.plan != nil {
		v := Col(col)
		switch t := g.b.planType(col); t {
		case typeBool:
			v = v.Cast(Int64Type)
		case typeUTF8, typeDict, typeTSSec, typeTSMilli, typeTSMicro, typeTSNano, typeDate32, typeDate64:
			panic("guest: plan mode: AddColumn of " + typeNames[t] + " column " + q(col) + ": a plan's value is a number")
		}
		where, notNull := g.where, Col(col).IsNotNull()
		if !hasConjunct(where, notNull) {
			where = with(where, notNull)
		}
		g.b.plan.output(o.name, where, g.keys, v)
		return
	}
	o.st.host.kemit(o.id, g.h, uint32(g.b.index(col)))
}

// AddExpr contributes, for each row of g, the value of e (a number) to the
// row's key, on behalf of the row's privacy unit; rows where e is null
// contribute nothing. In batch mode e must be a plain column (Col).
func (o *Emitter) AddExpr(g Groups, e Expr) {
	e.node()
	if g.b.plan != nil {
		g.b.plan.output(o.name, g.where, g.keys, e)
		return
	}
	name, ok := e.column()
	if !ok {
		panic("guest: batch mode: AddExpr runs on host kernels only for a plain column, not " + e.String() + "; expressions need plan mode")
	}
	o.AddColumn(g, name)
}

// CountRows contributes 1 for each row of g to the row's key.
func (o *Emitter) CountRows(g Groups) {
	if g.b.plan != nil {
		g.b.plan.output(o.name, g.where, g.keys, Expr{})
		return
	}
	g.b.host() // checks g is of the current batch
	o.st.host.kemit(o.id, g.h, noColumn)
}

// hasConjunct reports whether where already requires e.
func hasConjunct(where []Expr, e Expr) bool {
	s := e.String()
	for _, w := range where {
		if w.String() == s {
			return true
		}
	}
	return false
}

// lower runs e on the host kernels (batch mode), or panics saying that it
// needs plan mode.
func (r Rows) lower(e Expr) Rows {
	n := e.node()
	if n.kind == kOp && n.text == "and" {
		for _, a := range n.args {
			r = r.lower(a)
		}
		return r
	}
	fail := func() Rows {
		panic("guest: batch mode: Where runs on host kernels only for comparisons of a column with a literal, null tests, Between and And; " + e.String() + " needs plan mode")
	}
	if n.kind != kOp || len(n.args) == 0 {
		fail()
	}
	col, ok := n.args[0].column()
	switch n.text {
	case "is_null", "is_not_null":
		if !ok {
			fail()
		}
		if n.text == "is_null" {
			return r.IsNull(col)
		}
		return r.NotNull(col)
	case "between":
		if !ok {
			fail()
		}
		return r.lowerCmp(col, Ge, n.args[1], fail).lowerCmp(col, Le, n.args[2], fail)
	}
	ops := map[string]Op{"eq": Eq, "ne": Ne, "lt": Lt, "le": Le, "gt": Gt, "ge": Ge}
	o, isCmp := ops[n.text]
	if !isCmp || len(n.args) != 2 {
		fail()
	}
	lit := n.args[1]
	if !ok { // literal op column: flip it
		if col, ok = n.args[1].column(); !ok {
			fail()
		}
		lit = n.args[0]
		o = [...]Op{Eq: Eq, Ne: Ne, Lt: Gt, Le: Ge, Gt: Lt, Ge: Le}[o]
	}
	return r.lowerCmp(col, o, lit, fail)
}

func (r Rows) lowerCmp(col string, o Op, lit Expr, fail func() Rows) Rows {
	n := lit.node()
	typ := r.b.columns[r.b.index(col)].typ
	isInt := typ == typeInt64 || typ == typeInt32
	switch {
	case n.kind == kInt && isInt:
		return r.WhereInt(col, o, n.i)
	case n.kind == kInt && typ == typeFloat64:
		return r.WhereFloat(col, o, float64(n.i))
	case n.kind == kFloat && typ == typeFloat64:
		return r.WhereFloat(col, o, n.f)
	case n.kind == kStr && (typ == typeUTF8 || typ == typeDict):
		return r.WhereString(col, o, n.text)
	case n.kind == kBool && typ == typeBool:
		return r.WhereInt(col, o, n.i)
	}
	return fail()
}
