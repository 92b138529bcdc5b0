package guest

import (
	"errors"
	"strconv"
)

// maxPlan is the largest plan the host takes (import "plan").
const maxPlan = 64 << 10

// planReadMsg is the panic of a handler that, while planning, asks for
// what only data can say.
const planReadMsg = "guest: plan mode: the handler read column values; a plan is built from the schema only — use mode: unit or block for per-row logic"

// planner records the plan a handler builds during the planning call.
type planner struct {
	derive  []planDerive
	outputs []planOutput
}

type planDerive struct {
	name string
	expr Expr
}

type planOutput struct {
	name    string
	where   []Expr // conjuncts
	groupBy []Expr
	value   Expr // zero: a count (1 per row)
}

// planning panics, in plan mode, for a call that needs data.
func (b *Batch) planning(what string) {
	if b.plan != nil {
		panic(planReadMsg + " (" + what + ")")
	}
}

// planType is the ABI type code of a column of the schema, 0 for a
// derived column; it panics for a name that is neither.
func (b *Batch) planType(name string) uint32 {
	if i, ok := b.byName[name]; ok {
		return b.columns[i].typ
	}
	for _, d := range b.plan.derive {
		if d.name == name {
			return 0
		}
	}
	panic("guest: column " + q(name) + " is not in the batch")
}

// Derive adds the column name, computed by e for every row, and returns
// Col(name). A derived column may use columns derived before it; its name
// must not be a column of the dataset nor derived twice. Plan mode only:
// in batch mode Derive panics.
func (b *Batch) Derive(name string, e Expr) Expr {
	e.node()
	if b.plan == nil {
		panic("guest: batch mode: Batch.Derive needs plan mode (the host evaluates derived columns)")
	}
	if _, ok := b.byName[name]; ok {
		panic("guest: Derive " + q(name) + ": the dataset has a column of that name")
	}
	for _, d := range b.plan.derive {
		if d.name == name {
			panic("guest: Derive " + q(name) + " twice")
		}
	}
	b.plan.derive = append(b.plan.derive, planDerive{name: name, expr: e})
	return Col(name)
}

// with returns where with e appended, never sharing the backing array:
// Rows derived from the same Rows must not see each other's filters.
func with(where []Expr, e ...Expr) []Expr {
	return append(where[:len(where):len(where)], e...)
}

// planInt is the conjunct col op v of WhereInt in plan mode, with the
// kernel's semantics: v is 0 or 1 for a bool column, days for date32, ms
// for date64, the column's unit for a timestamp.
func (b *Batch) planInt(col string, op Op, v int64) Expr {
	c, lit := Col(col), Int(v)
	switch typ := b.planType(col); typ {
	case typeBool:
		c = c.Cast(Int64Type)
	case typeDate32:
		lit = Date(civilDate(v))
	case typeDate64:
		if v%86_400_000 != 0 {
			panic("guest: plan mode: WhereInt on date64 column " + q(col) + " with " + strconv.FormatInt(v, 10) + " ms, not a whole day")
		}
		lit = Date(civilDate(v / 86_400_000))
	case typeTSSec, typeTSMilli, typeTSMicro, typeTSNano:
		lit = Timestamp(rfc3339(v, TimeUnit(typ-typeTSSec)))
	}
	return cmp(c, op, lit)
}

// cmp is x op y.
func cmp(x Expr, op Op, y Expr) Expr {
	if op < Eq || op > Ge {
		panic("guest: unknown comparison operator " + itoa(int(op)))
	}
	return x.call([...]string{Eq: "eq", Ne: "ne", Lt: "lt", Le: "le", Gt: "gt", Ge: "ge"}[op], y)
}

// output records one output of the plan.
func (p *planner) output(name string, where, groupBy []Expr, value Expr) {
	for _, o := range p.outputs {
		if o.name == name {
			panic("guest: plan mode: output " + q(name) + " is given rows twice; a plan gives each output one set of rows (join conditions with Or)")
		}
	}
	p.outputs = append(p.outputs, planOutput{name: name, where: where, groupBy: groupBy, value: value})
}

// encode writes the plan IR (version 1) as compact JSON, keys in a fixed
// order: the same plan always gives the same bytes.
func (p *planner) encode() []byte {
	b := append([]byte(nil), `{"version":1`...)
	if len(p.derive) > 0 {
		b = append(b, `,"derive":[`...)
		for i, d := range p.derive {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, d.name)
			b = append(b, `,"expr":`...)
			b = appendExpr(b, d.expr)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"outputs":[`...)
	for i, o := range p.outputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, o.name)
		switch len(o.where) {
		case 0:
		case 1:
			b = append(b, `,"where":`...)
			b = appendExpr(b, o.where[0])
		default:
			b = append(b, `,"where":`...)
			b = appendExpr(b, op("and", o.where...))
		}
		b = append(b, `,"group_by":[`...)
		for j, g := range o.groupBy {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendExpr(b, g)
		}
		b = append(b, ']')
		if o.value.n != nil {
			b = append(b, `,"value":`...)
			b = appendExpr(b, o.value)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// decodeSchema parses a schema region (the planning call's: a batch region
// with no rows, whose descriptors' buffers are all empty): the columns'
// names and types.
func decodeSchema(region []byte) (*Batch, error) {
	if len(region) < headerSize {
		return nil, errors.New("guest: schema region of " + itoa(len(region)) + " bytes is too short")
	}
	if v := le.Uint32(region[0:]); v != ABIVersion {
		return nil, errors.New("guest: schema region has ABI version " + itoa(int(v)) + ", want " + itoa(ABIVersion))
	}
	if rows := le.Uint32(region[4:]); rows != 0 {
		return nil, errors.New("guest: schema region has " + itoa(int(rows)) + " rows, want 0")
	}
	ncols := int(le.Uint32(region[8:]))
	if total := int(le.Uint32(region[12:])); total != len(region) {
		return nil, errors.New("guest: schema region says " + itoa(total) + " bytes, got " + itoa(len(region)))
	}
	if ncols > (len(region)-headerSize)/columnDescSize {
		return nil, errors.New("guest: schema region too short for " + itoa(ncols) + " columns")
	}
	b := &Batch{columns: make([]column, ncols), byName: make(map[string]int, ncols)}
	for i := range b.columns {
		d := region[headerSize+i*columnDescSize:]
		off, n, typ := int(le.Uint32(d)), int(le.Uint32(d[4:])), le.Uint32(d[8:])
		if off > len(region) || n > len(region)-off {
			return nil, errors.New("guest: column " + itoa(i) + ": name outside the region")
		}
		c := column{name: string(region[off : off+n]), typ: typ, loaded: true}
		if valuesLen(typ, 0) < 0 {
			return nil, errors.New("guest: column " + q(c.name) + " has unknown type " + itoa(int(typ)))
		}
		if _, dup := b.byName[c.name]; dup {
			return nil, errors.New("guest: column " + q(c.name) + " appears twice")
		}
		b.byName[c.name] = i
		b.columns[i] = c
	}
	return b, nil
}

// plan runs the planning call: decodes the schema region, calls the
// handler in plan mode, and hands the plan to the host (import "plan").
// It returns the plan. A handler error or panic fails the call; hostError
// panics (from the fake host) pass through.
func (st *state) plan(region []byte) (js []byte, err error) {
	if st.handler == nil {
		return nil, errors.New("guest: no handler: call guest.Handle from init")
	}
	b, err := decodeSchema(region)
	if err != nil {
		return nil, err
	}
	b.st, b.plan = st, &planner{}
	st.batch = b
	defer func() {
		st.batch = nil
		if r := recover(); r != nil {
			if he, ok := r.(hostError); ok {
				panic(he)
			}
			js, err = nil, errors.New("panic: "+panicText(r))
		}
	}()
	if err = st.handler(b); err != nil {
		return nil, err
	}
	js = b.plan.encode()
	if len(js) > maxPlan {
		return nil, errors.New("guest: the plan is " + itoa(len(js)) + " bytes, more than the host's " + itoa(maxPlan))
	}
	st.host.plan(js)
	return js, nil
}

// civilDate formats days since 1970-01-01 as 2006-01-02 (proleptic
// Gregorian; H. Hinnant's days_from_civil inverse).
func civilDate(days int64) string {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
}

func pad(v int64, w int) string {
	s := strconv.FormatInt(v, 10)
	if v < 0 {
		return s
	}
	for len(s) < w {
		s = "0" + s
	}
	return s
}

// rfc3339 formats an instant v in unit since the Unix epoch as RFC 3339 in
// UTC, with the shortest fractional seconds.
func rfc3339(v int64, unit TimeUnit) string {
	per := [...]int64{1, 1e3, 1e6, 1e9}[unit]
	sec, frac := v/per, v%per
	if frac < 0 {
		sec, frac = sec-1, frac+per
	}
	days, s := sec/86400, sec%86400
	if s < 0 {
		days, s = days-1, s+86400
	}
	out := civilDate(days) + "T" + pad(s/3600, 2) + ":" + pad(s/60%60, 2) + ":" + pad(s%60, 2)
	if frac != 0 {
		digits := [...]int{0, 3, 6, 9}[unit]
		f := pad(frac, digits)
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		out += "." + f
	}
	return out + "Z"
}
