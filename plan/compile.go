package plan

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/covedata/cove"
)

// Field is one dataset column as the catalog knows it.
type Field struct {
	Name string
	Type string // an Arrow type string, as arrow.DataType.String() writes it
}

// OutputSpec is what the manifest says of one output.
type OutputSpec struct {
	Name      string
	Aggregate string // for messages only ("value is required for mean")
	UsesValue bool   // the aggregate needs a value (all but count)
	GroupBy   []GroupSpec
}

// GroupSpec is one part of an output's group key.
type GroupSpec struct {
	Values  []string // public partition values of this part (formatted as keys); nil for private
	Private bool
}

// Plan is a compiled plan: validated against a schema and the manifest's
// outputs. It is immutable and safe for concurrent use.
type Plan struct {
	canon   []byte
	text    string
	columns []string  // dataset columns read, sorted
	cols    []colInfo // by slot (the order of columns)
	where   *node
	derived []*node
	outs    []outPlan // in the order of Compile's outputs
	nnodes  int
}

type colInfo struct {
	name string
	t    typ
}

type outPlan struct {
	name    string
	where   *node
	parts   []partPlan
	value   *node // nil: a count
	private bool  // keys come from the data (Part indexes Keys)
}

type partPlan struct {
	expr    *node
	private bool
	index   *keyIndex // public: value → index into values
	values  []string
}

// opcode is an operation of a compiled node.
type opcode uint8

const (
	opLit opcode = iota
	opCol        // ref: column slot
	opRef        // ref: derived column index
	opAdd
	opSub
	opMul
	opDiv
	opMod
	opNeg
	opEq
	opNe
	opLt
	opLe
	opGt
	opGe
	opAnd
	opOr
	opNot
	opIsNull
	opIsNotNull
	opIn
	opBetween // compiled into and(ge, le)
	opCase
	opCoalesce
	opCast
	opAbs
	opFloor
	opCeil
	opSqrt
	opExp
	opLog
	opRound
	opPow
	opLeast
	opGreatest
	opLength
	opLower
	opUpper
	opSubstr
	opPrefix
	opContains
	opYear
	opMonth
	opDay
	opHour
	opMinute
	opSecond
	opDow
	opDoy
	opBucket
)

// opInfo is an op of the IR: its code and arity (max -1: no maximum).
type opInfo struct {
	code     opcode
	min, max int
}

// opTable is every op of the IR.
var opTable = map[string]opInfo{
	"add": {opAdd, 2, 2}, "sub": {opSub, 2, 2}, "mul": {opMul, 2, 2}, "div": {opDiv, 2, 2},
	"mod": {opMod, 2, 2}, "neg": {opNeg, 1, 1},
	"eq": {opEq, 2, 2}, "ne": {opNe, 2, 2}, "lt": {opLt, 2, 2}, "le": {opLe, 2, 2},
	"gt": {opGt, 2, 2}, "ge": {opGe, 2, 2},
	"and": {opAnd, 2, -1}, "or": {opOr, 2, -1}, "not": {opNot, 1, 1},
	"is_null": {opIsNull, 1, 1}, "is_not_null": {opIsNotNull, 1, 1},
	"in": {opIn, 2, -1}, "between": {opBetween, 3, 3},
	"case": {opCase, 2, -1}, "coalesce": {opCoalesce, 1, -1}, "cast": {opCast, 1, 1},
	"abs": {opAbs, 1, 1}, "floor": {opFloor, 1, 1}, "ceil": {opCeil, 1, 1},
	"sqrt": {opSqrt, 1, 1}, "exp": {opExp, 1, 1}, "log": {opLog, 1, 1},
	"round": {opRound, 1, 2}, "pow": {opPow, 2, 2},
	"least": {opLeast, 2, -1}, "greatest": {opGreatest, 2, -1},
	"length": {opLength, 1, 1}, "lower": {opLower, 1, 1}, "upper": {opUpper, 1, 1},
	"substr": {opSubstr, 2, 3}, "prefix": {opPrefix, 2, 2}, "contains": {opContains, 2, 2},
	"year": {opYear, 1, 1}, "month": {opMonth, 1, 1}, "day": {opDay, 1, 1},
	"hour": {opHour, 1, 1}, "minute": {opMinute, 1, 1}, "second": {opSecond, 1, 1},
	"dow": {opDow, 1, 1}, "doy": {opDoy, 1, 1},
	"bucket": {opBucket, 2, 3},
}

// strict reports whether op's result is null whenever an argument is null.
func strict(op opcode) bool {
	switch op {
	case opAnd, opOr, opIsNull, opIsNotNull, opCase, opCoalesce:
		return false
	}
	return true
}

// node is a compiled, typed expression node. Nodes form a DAG (a derived
// column's root, a between's operand are shared); the evaluator computes
// each once per chunk.
type node struct {
	id   int
	op   opcode
	t    typ
	args []*node
	ref  int    // opCol: column slot; opRef: derived index
	lit  value  // opLit
	set  *inSet // opIn
	els  bool   // opCase: the last arg is the else value
	name string // opRef: the derived name (for messages)
}

// inSet is the literal list of an in.
type inSet struct {
	hasNull bool
	ints    []int64 // tInt, tDate, tTimestamp (small lists)
	intMap  map[int64]struct{}
	floats  map[uint64]struct{} // bits of normalized values
	strs    map[string]struct{}
	bools   [2]bool
}

type compiler struct {
	errs    []error
	at      string
	fields  map[string]int // dataset column → index into schema
	schema  []Field
	ftypes  []typ
	fnode   map[int]*node // one opCol node per dataset column used
	derived map[string]int
	dnodes  []*node
	dnames  []string
	nodes   []*node
}

func (c *compiler) bad(format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: plan: %s: "+format, append([]any{cove.ErrInvalid, c.at}, a...)...))
}

func (c *compiler) badAt(at, format string, a ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: plan: %s: "+format, append([]any{cove.ErrInvalid, at}, a...)...))
}

func (c *compiler) newNode(op opcode, t typ, args ...*node) *node {
	n := &node{id: len(c.nodes), op: op, t: t, args: args}
	c.nodes = append(c.nodes, n)
	return n
}

func (c *compiler) invalid() *node { return &node{id: -1, t: tInvalid} }

func (c *compiler) lit(t typ, v value) *node {
	n := c.newNode(opLit, t)
	n.lit = v
	return n
}

func (c *compiler) null(t typ) *node { return c.lit(t, value{null: true}) }

// Compile validates lit against the dataset's schema and the manifest's
// outputs and compiles it. It reports every problem at once (errors.Join),
// each naming where it is; they wrap cove.ErrInvalid, or cove.ErrLimit for
// limits. Every plan output must be declared in outputs and every declared
// output must have its entry in the plan; the evaluator's outputs follow
// the order of outputs.
func Compile(lit Literal, schema []Field, outputs []OutputSpec) (*Plan, error) {
	var errs []error
	errs = append(errs, checkLimits(&lit)...)
	if lit.Version != 1 {
		errs = append(errs, fmt.Errorf("%w: plan: version %d, want 1", cove.ErrInvalid, lit.Version))
	}
	c := &compiler{fields: map[string]int{}, schema: schema, fnode: map[int]*node{}, derived: map[string]int{}}
	for i, f := range schema {
		if _, dup := c.fields[f.Name]; !dup {
			c.fields[f.Name] = i
		}
		t, _ := typeOfArrowName(f.Type)
		c.ftypes = append(c.ftypes, t)
	}
	p := &Plan{}
	for i, d := range lit.Derive {
		if i < MaxDerived {
			c.dnames = append(c.dnames, d.Name)
		}
	}
	for i, d := range lit.Derive {
		if i >= MaxDerived {
			break
		}
		c.at = locDerive(i, d.Name)
		var n *node
		if c.shallow(&d.Expr) {
			n = c.expr(&d.Expr)
		} else {
			n = c.invalid()
		}
		switch {
		case d.Name == "":
			c.bad("a derived column needs a name")
		case !utf8.ValidString(d.Name):
			c.bad("name is not valid UTF-8")
		case c.hasField(d.Name):
			c.bad("derived name %q is a column of the dataset", clip(d.Name))
		default:
			if j, dup := c.derived[d.Name]; dup {
				c.bad("derived name %q is also derive[%d]", clip(d.Name), j)
			}
		}
		if n.t == tNull {
			c.bad("expression has no type (it is always NULL: use CAST(NULL AS …))")
			n = c.invalid()
		}
		if _, dup := c.derived[d.Name]; !dup && !c.hasField(d.Name) && d.Name != "" {
			c.derived[d.Name] = i
		}
		c.dnodes = append(c.dnodes, n)
	}
	p.derived = c.dnodes
	if lit.Where != nil && c.shallow(lit.Where) {
		c.at = locWhere()
		p.where = c.toBool(c.expr(lit.Where))
	}

	byName := map[string]int{}
	for i, o := range outputs {
		byName[o.Name] = i
	}
	p.outs = make([]outPlan, len(outputs))
	seen := make([]bool, len(outputs))
	for i := range lit.Outputs {
		if i >= MaxOutputs {
			break
		}
		o := &lit.Outputs[i]
		at := locOutput(i, o.Name)
		si, ok := byName[o.Name]
		if !ok {
			names := make([]string, len(outputs))
			for k, s := range outputs {
				names[k] = s.Name
			}
			c.badAt(at, "not an output the manifest declares (declared: %s)", listNames(names))
			continue
		}
		if seen[si] {
			c.badAt(at, "output %q appears twice in the plan", clip(o.Name))
			continue
		}
		seen[si] = true
		p.outs[si] = c.output(at, o, outputs[si])
	}
	for i, s := range outputs {
		if !seen[i] && len(lit.Outputs) <= MaxOutputs {
			c.errs = append(c.errs, fmt.Errorf("%w: plan: output %q is declared in the manifest but the plan has no entry for it", cove.ErrInvalid, s.Name))
		}
	}
	errs = append(errs, c.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.assignSlots(p)
	norm := normalize(lit)
	p.canon = canonical(&norm, outputs)
	p.text = text(&norm, outputs)
	p.nnodes = len(c.nodes)
	return p, nil
}

func (c *compiler) hasField(name string) bool {
	_, ok := c.fields[name]
	return ok
}

// shallow reports whether e is within MaxDepth (checkLimits reported it
// otherwise, and a degenerate tree is not compiled).
func (c *compiler) shallow(e *Expr) bool {
	w := limitWalk{}
	w.walk(e, 1)
	return w.depth <= MaxDepth
}

func (c *compiler) output(at string, o *Output, spec OutputSpec) outPlan {
	op := outPlan{name: o.Name}
	if o.Where != nil && c.shallow(o.Where) {
		c.at = at + ": where"
		op.where = c.toBool(c.expr(o.Where))
	}
	if len(o.GroupBy) != len(spec.GroupBy) {
		c.badAt(at, "%d group_by expressions, but the manifest's output has %d group_by parts", len(o.GroupBy), len(spec.GroupBy))
	}
	for _, g := range spec.GroupBy {
		if g.Private {
			op.private = true
		}
	}
	npart := int64(1)
	for j := range o.GroupBy {
		c.at = fmt.Sprintf("%s: group_by[%d]", at, j)
		var n *node
		if c.shallow(&o.GroupBy[j]) {
			n = c.expr(&o.GroupBy[j])
		} else {
			n = c.invalid()
		}
		if n.t == tNull {
			c.bad("expression has no type (it is always NULL)")
			n = c.invalid()
		}
		pp := partPlan{expr: n}
		if j < len(spec.GroupBy) {
			g := spec.GroupBy[j]
			switch {
			case g.Private && g.Values != nil:
				c.bad("a private part lists no public values")
			case g.Private:
				pp.private = true
			case len(g.Values) == 0:
				c.bad("the manifest lists no public values for this part")
			default:
				pp.values = g.Values
				if n.t != tInvalid {
					pp.index = c.keyIndex(n.t, g.Values)
				}
				if npart <= math.MaxInt32 {
					npart *= int64(len(g.Values))
				}
			}
		}
		op.parts = append(op.parts, pp)
	}
	if !op.private && npart > math.MaxInt32 {
		c.badAt(at, "more than %d partitions", math.MaxInt32)
	}
	agg := spec.Aggregate
	if agg == "" {
		agg = "this aggregate"
	}
	switch {
	case spec.UsesValue && o.Value == nil:
		c.badAt(at, "value is required for %s", agg)
	case !spec.UsesValue && o.Value != nil:
		c.badAt(at, "%s takes no value", agg)
	case o.Value != nil && c.shallow(o.Value):
		c.at = at + ": value"
		n := c.expr(o.Value)
		switch n.t {
		case tInvalid:
		case tFloat:
		case tInt, tBool, tNull:
			n = c.toFloat(n)
		default:
			c.bad("value is %s, it must be numeric or bool", n.t)
			n = c.invalid()
		}
		op.value = n
	}
	return op
}

// toFloat converts a value expression to float64.
func (c *compiler) toFloat(n *node) *node {
	switch n.t {
	case tNull:
		return c.null(tFloat)
	case tInt, tBool:
		cn := c.newNode(opCast, tFloat, n)
		return cn
	}
	return n
}

// toBool checks that n is a predicate.
func (c *compiler) toBool(n *node) *node {
	switch n.t {
	case tInvalid, tBool:
		return n
	case tNull:
		return c.null(tBool)
	}
	c.bad("expression is %s, it must be bool", n.t)
	return c.invalid()
}

// keyIndex indexes public values for a part of type t, reporting values no
// row can ever format to.
func (c *compiler) keyIndex(t typ, values []string) *keyIndex {
	ix := &keyIndex{t: t}
	var bad []string
	defer func() {
		switch len(bad) {
		case 0:
		case 1:
			c.bad("value %q is not a key of type %s (%s)", clip(bad[0]), t, keyForm(t))
		default:
			c.bad("value %q and %d more are not keys of type %s (%s)", clip(bad[0]), len(bad)-1, t, keyForm(t))
		}
	}()
	for k, s := range values {
		id := int32(k)
		switch t {
		case tInt, tDate, tTimestamp:
			var v int64
			var ok bool
			switch t {
			case tInt:
				var err error
				v, err = strconv.ParseInt(s, 10, 64)
				ok = err == nil && formatInt(v) == s
			case tDate:
				v, ok = parseDate(s)
				ok = ok && formatDate(v) == s
			default:
				v, ok = parseTimestamp(s)
				ok = ok && formatTimestamp(v) == s
			}
			if !ok {
				bad = append(bad, s)
				continue
			}
			ix.addInt(v, id)
		case tFloat:
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || formatFloat(v) != s || math.IsInf(v, 0) || math.IsNaN(v) {
				bad = append(bad, s)
				continue
			}
			ix.addFloat(v, id)
		case tBool:
			switch s {
			case "false":
				ix.bools[0] = id + 1
			case "true":
				ix.bools[1] = id + 1
			default:
				bad = append(bad, s)
			}
		case tString:
			if ix.strs == nil {
				ix.strs = map[string]int32{}
			}
			if _, dup := ix.strs[s]; !dup {
				ix.strs[s] = id
			}
		}
	}
	ix.finish()
	return ix
}

func keyForm(t typ) string {
	switch t {
	case tInt:
		return "decimal, as 2015"
	case tFloat:
		return "shortest form, as 2.5 or 1e+21"
	case tBool:
		return "true or false"
	case tDate:
		return "2006-01-02"
	case tTimestamp:
		return "RFC 3339 in UTC with the shortest fraction, as 2015-01-15T14:00:00Z"
	}
	return ""
}

// clip shortens a string of the plan for a message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// listNames writes names for a message, at most 20.
func listNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	shown := make([]string, 0, min(len(names), 20))
	for i, n := range names {
		if i == 20 {
			return strings.Join(shown, ", ") + fmt.Sprintf(", … %d more", len(names)-20)
		}
		shown = append(shown, showName(n))
	}
	return strings.Join(shown, ", ")
}

// assignSlots numbers the dataset columns the plan reads in sorted order.
func (c *compiler) assignSlots(p *Plan) {
	var idx []int
	for fi := range c.fnode {
		idx = append(idx, fi)
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(c.schema[a].Name, c.schema[b].Name) })
	for slot, fi := range idx {
		c.fnode[fi].ref = slot
		p.columns = append(p.columns, c.schema[fi].Name)
		p.cols = append(p.cols, colInfo{name: c.schema[fi].Name, t: c.ftypes[fi]})
	}
}

// visible lists the columns an expression at the current place may name.
func (c *compiler) visible() []string {
	var names []string
	for _, f := range c.schema {
		names = append(names, f.Name)
	}
	for _, d := range c.dnames {
		if j, ok := c.derived[d]; ok && j < len(c.dnodes) {
			names = append(names, d)
		}
	}
	return names
}

func (c *compiler) colRef(name string) *node {
	if j, ok := c.derived[name]; ok {
		if j < len(c.dnodes) {
			d := c.dnodes[j]
			if d.t == tInvalid {
				return c.invalid()
			}
			n := c.newNode(opRef, d.t)
			n.ref, n.name = j, name
			return n
		}
	}
	if fi, ok := c.fields[name]; ok {
		if c.ftypes[fi] == tInvalid {
			c.bad("column %q has type %s, which a plan cannot read", clip(name), c.schema[fi].Type)
			return c.invalid()
		}
		if n, ok := c.fnode[fi]; ok {
			return n
		}
		n := c.newNode(opCol, c.ftypes[fi])
		c.fnode[fi] = n
		return n
	}
	for j, d := range c.dnames {
		switch {
		case d != name || j < len(c.dnodes):
		case j == len(c.dnodes):
			c.bad("derived column %q refers to itself", clip(name))
			return c.invalid()
		default:
			c.bad("column %q is derive[%d], defined later", clip(name), j)
			return c.invalid()
		}
	}
	c.bad("column %q does not exist (columns: %s)", clip(name), listNames(c.visible()))
	return c.invalid()
}

func (c *compiler) expr(e *Expr) *node {
	k, err := kindOf(e)
	if err != nil {
		c.bad("%v", err)
		return c.invalid()
	}
	switch k {
	case kCol:
		return c.colRef(*e.Col)
	case kInt:
		return c.lit(tInt, value{i: *e.Int})
	case kFloat:
		f := *e.Float
		if math.IsNaN(f) || math.IsInf(f, 0) {
			c.bad("float literal is not finite")
			return c.invalid()
		}
		return c.lit(tFloat, value{f: f})
	case kStr:
		if !utf8.ValidString(*e.Str) {
			c.bad("string literal is not valid UTF-8")
			return c.invalid()
		}
		return c.lit(tString, value{s: *e.Str})
	case kBool:
		return c.lit(tBool, value{b: *e.Bool})
	case kDate:
		d, ok := parseDate(*e.Date)
		if !ok {
			c.bad("date %q is not YYYY-MM-DD", clip(*e.Date))
			return c.invalid()
		}
		return c.lit(tDate, value{i: d})
	case kTimestamp:
		ns, ok := parseTimestamp(*e.Timestamp)
		if !ok {
			c.bad("timestamp %q is not RFC 3339 within 1677–2262", clip(*e.Timestamp))
			return c.invalid()
		}
		return c.lit(tTimestamp, value{i: ns})
	case kNull:
		if *e.Null == "" {
			return c.null(tNull)
		}
		t, ok := parseTypeName(*e.Null)
		if !ok {
			c.bad("null of unknown type %q (bool, int64, float64, string, date, timestamp)", clip(*e.Null))
			return c.invalid()
		}
		return c.null(t)
	}
	return c.op(e)
}

// arityText describes an arity for messages.
func arityText(info opInfo) string {
	switch {
	case info.max == info.min:
		return strconv.Itoa(info.min)
	case info.max < 0:
		return "at least " + strconv.Itoa(info.min)
	default:
		return fmt.Sprintf("%d or %d", info.min, info.max)
	}
}

func typesText(args []*node) string {
	ts := make([]string, len(args))
	for i, a := range args {
		ts[i] = a.t.String()
	}
	switch len(ts) {
	case 1:
		return ts[0]
	case 2:
		return ts[0] + " and " + ts[1]
	}
	return strings.Join(ts[:len(ts)-1], ", ") + " and " + ts[len(ts)-1]
}

func (c *compiler) op(e *Expr) *node {
	info, ok := opTable[e.Op]
	if !ok {
		c.bad("unknown op %q", clip(e.Op))
		return c.invalid()
	}
	if len(e.Args) < info.min || (info.max >= 0 && len(e.Args) > info.max) {
		c.bad("%s takes %s arguments, not %d", e.Op, arityText(info), len(e.Args))
		return c.invalid()
	}
	if info.code == opCast {
		if _, ok := parseTypeName(e.Type); !ok {
			c.bad("cast to unknown type %q (bool, int64, float64, string, date, timestamp)", clip(e.Type))
			return c.invalid()
		}
	}
	if info.code == opIn {
		for i := 1; i < len(e.Args); i++ {
			if !isLiteral(&e.Args[i]) {
				c.bad("in: args[%d] is not a literal", i)
				return c.invalid()
			}
		}
	}
	args := make([]*node, len(e.Args))
	bad := false
	for i := range e.Args {
		args[i] = c.expr(&e.Args[i])
		bad = bad || args[i].t == tInvalid
	}
	if bad {
		return c.invalid()
	}
	mismatch := func() *node {
		c.bad("%s of %s", e.Op, typesText(args))
		return c.invalid()
	}
	anyNull := false
	for _, a := range args {
		anyNull = anyNull || a.t == tNull
	}
	// done finishes a strict op: with an untyped NULL argument its value is
	// always null.
	done := func(n *node) *node {
		if anyNull && strict(info.code) {
			return c.null(n.t)
		}
		return n
	}
	code := info.code
	switch code {
	case opAdd, opSub, opMul, opMod, opDiv, opPow:
		for _, a := range args {
			if !a.t.numeric() && a.t != tNull {
				return mismatch()
			}
		}
		t, _ := unify(args)
		if code == opDiv || code == opPow {
			t = tFloat
		}
		if t == tNull {
			return c.null(tNull)
		}
		return done(c.newNode(code, t, c.coerce(args[0], t), c.coerce(args[1], t)))
	case opNeg, opAbs, opFloor, opCeil:
		a := args[0]
		switch {
		case a.t == tNull:
			return c.null(tNull)
		case !a.t.numeric():
			return mismatch()
		case a.t == tInt && (code == opFloor || code == opCeil):
			return a
		}
		return c.newNode(code, a.t, a)
	case opRound:
		a := args[0]
		if !a.t.numeric() && a.t != tNull {
			return mismatch()
		}
		if len(args) == 2 && args[1].t != tInt && args[1].t != tNull {
			return mismatch()
		}
		t := a.t
		if t == tNull {
			return c.null(tNull)
		}
		n := c.newNode(code, t, a)
		if len(args) == 2 {
			n.args = append(n.args, c.coerce(args[1], tInt))
		}
		return done(n)
	case opSqrt, opExp, opLog:
		a := args[0]
		if !a.t.numeric() && a.t != tNull {
			return mismatch()
		}
		return done(c.newNode(code, tFloat, c.coerce(a, tFloat)))
	case opEq, opNe, opLt, opLe, opGt, opGe:
		t, ok := unify(args)
		if !ok {
			return mismatch()
		}
		if t == tNull {
			return c.null(tBool)
		}
		l, r := c.coerce(args[0], t), c.coerce(args[1], t)
		if l.t == tInvalid || r.t == tInvalid {
			return c.invalid()
		}
		return done(c.newNode(code, tBool, l, r))
	case opAnd, opOr:
		out := make([]*node, len(args))
		for i, a := range args {
			if a.t != tBool && a.t != tNull {
				return mismatch()
			}
			out[i] = c.coerce(a, tBool)
		}
		return c.newNode(code, tBool, out...)
	case opNot:
		a := args[0]
		if a.t != tBool && a.t != tNull {
			return mismatch()
		}
		return done(c.newNode(code, tBool, c.coerce(a, tBool)))
	case opIsNull, opIsNotNull:
		a := args[0]
		if a.t == tNull || (a.op == opLit && a.lit.null) {
			return c.lit(tBool, value{b: code == opIsNull})
		}
		return c.newNode(code, tBool, a)
	case opIn:
		t, ok := unify(args)
		if !ok {
			return mismatch()
		}
		if t == tNull || args[0].t == tNull {
			return c.null(tBool)
		}
		x := c.coerce(args[0], t)
		set := &inSet{}
		for _, a := range args[1:] {
			a = c.coerce(a, t)
			if a.t == tInvalid {
				return c.invalid()
			}
			set.add(t, a.lit)
		}
		set.finish()
		n := c.newNode(opIn, tBool, x)
		n.set = set
		return n
	case opBetween:
		t, ok := unify(args)
		if !ok {
			return mismatch()
		}
		if t == tNull {
			return c.null(tBool)
		}
		x, lo, hi := c.coerce(args[0], t), c.coerce(args[1], t), c.coerce(args[2], t)
		if x.t == tInvalid || lo.t == tInvalid || hi.t == tInvalid {
			return c.invalid()
		}
		return c.newNode(opAnd, tBool, c.newNode(opGe, tBool, x, lo), c.newNode(opLe, tBool, x, hi))
	case opCase:
		var conds, vals []*node
		for i := 0; i+1 < len(args); i += 2 {
			conds = append(conds, args[i])
			vals = append(vals, args[i+1])
		}
		els := len(args)%2 == 1
		if els {
			vals = append(vals, args[len(args)-1])
		}
		for _, cn := range conds {
			if cn.t != tBool && cn.t != tNull {
				c.bad("case: a condition is %s, it must be bool", cn.t)
				return c.invalid()
			}
		}
		t, ok := unify(vals)
		if !ok {
			c.bad("case of %s", typesText(vals))
			return c.invalid()
		}
		if t == tNull {
			return c.null(tNull)
		}
		out := make([]*node, 0, len(args))
		for i := range conds {
			out = append(out, c.coerce(conds[i], tBool), c.coerce(vals[i], t))
		}
		if els {
			out = append(out, c.coerce(vals[len(vals)-1], t))
		}
		for _, o := range out {
			if o.t == tInvalid {
				return c.invalid()
			}
		}
		n := c.newNode(opCase, t, out...)
		n.els = els
		return n
	case opCoalesce:
		t, ok := unify(args)
		if !ok {
			return mismatch()
		}
		if t == tNull {
			return c.null(tNull)
		}
		if len(args) == 1 {
			return args[0]
		}
		out := make([]*node, len(args))
		for i, a := range args {
			if out[i] = c.coerce(a, t); out[i].t == tInvalid {
				return c.invalid()
			}
		}
		return c.newNode(opCoalesce, t, out...)
	case opCast:
		to, _ := parseTypeName(e.Type)
		a := args[0]
		if a.t == tNull {
			return c.null(to)
		}
		if !castable(a.t, to) {
			c.bad("cast of %s to %s", a.t, to)
			return c.invalid()
		}
		if a.t == to {
			return a
		}
		return c.newNode(opCast, to, a)
	case opLeast, opGreatest:
		t, ok := unify(args)
		if !ok {
			return mismatch()
		}
		if t == tNull {
			return c.null(tNull)
		}
		out := make([]*node, len(args))
		for i, a := range args {
			if out[i] = c.coerce(a, t); out[i].t == tInvalid {
				return c.invalid()
			}
		}
		return done(c.newNode(code, t, out...))
	case opLength, opLower, opUpper:
		a := args[0]
		if a.t != tString && a.t != tNull {
			return mismatch()
		}
		t := tString
		if code == opLength {
			t = tInt
		}
		return done(c.newNode(code, t, c.coerce(a, tString)))
	case opSubstr:
		if args[0].t != tString && args[0].t != tNull {
			return mismatch()
		}
		for _, a := range args[1:] {
			if a.t != tInt && a.t != tNull {
				return mismatch()
			}
		}
		out := []*node{c.coerce(args[0], tString)}
		for _, a := range args[1:] {
			out = append(out, c.coerce(a, tInt))
		}
		return done(c.newNode(code, tString, out...))
	case opPrefix, opContains:
		for _, a := range args {
			if a.t != tString && a.t != tNull {
				return mismatch()
			}
		}
		return done(c.newNode(code, tBool, c.coerce(args[0], tString), c.coerce(args[1], tString)))
	case opYear, opMonth, opDay, opHour, opMinute, opSecond, opDow, opDoy:
		a := args[0]
		if a.t != tDate && a.t != tTimestamp && a.t != tNull {
			return mismatch()
		}
		if a.t == tNull {
			return c.null(tInt)
		}
		return c.newNode(code, tInt, a)
	case opBucket:
		for _, a := range args {
			if !a.t.numeric() && a.t != tNull {
				return mismatch()
			}
		}
		t, _ := unify(args)
		if t == tNull {
			return c.null(tNull)
		}
		out := make([]*node, len(args))
		for i, a := range args {
			out[i] = c.coerce(a, t)
		}
		return done(c.newNode(code, t, out...))
	}
	c.bad("op %q cannot be compiled", clip(e.Op))
	return c.invalid()
}

// castable reports whether cast converts from to to.
func castable(from, to typ) bool {
	if from == to || to == tString {
		return true
	}
	switch to {
	case tInt, tFloat, tBool:
		return from == tInt || from == tFloat || from == tBool || from == tString
	case tDate, tTimestamp:
		return from == tDate || from == tTimestamp || from == tString
	}
	return false
}

// join is the common type of two types, if any (tNull joins anything).
func join(a, b typ) (typ, bool) {
	switch {
	case a == tNull:
		return b, true
	case b == tNull, a == b:
		return a, true
	case a.numeric() && b.numeric():
		return tFloat, true
	case (a == tDate || a == tTimestamp) && (b == tDate || b == tTimestamp):
		return tTimestamp, true
	}
	return tInvalid, false
}

// unify is the common type of nodes: int64 and float64 make float64, date
// and timestamp make timestamp, a string literal takes the type of date or
// timestamp operands, NULL takes any.
func unify(args []*node) (typ, bool) {
	t := tNull
	strLit := false
	for _, a := range args {
		if a.op == opLit && a.t == tString && !a.lit.null {
			strLit = true
			continue
		}
		var ok bool
		if t, ok = join(t, a.t); !ok {
			return tInvalid, false
		}
	}
	if strLit && t != tDate && t != tTimestamp {
		return join(t, tString)
	}
	return t, true
}

// coerce converts n to type to, which unify allowed.
func (c *compiler) coerce(n *node, to typ) *node {
	switch {
	case n.t == to || n.t == tInvalid:
		return n
	case n.t == tNull:
		return c.null(to)
	case n.t == tInt && to == tFloat, n.t == tDate && to == tTimestamp:
		if n.op == opLit {
			if n.lit.null {
				return c.null(to)
			}
			if to == tFloat {
				return c.lit(tFloat, value{f: float64(n.lit.i)})
			}
			if n.lit.i >= minTimestampDay && n.lit.i <= maxTimestampDay {
				return c.lit(tTimestamp, value{i: n.lit.i * nsPerDay})
			}
		}
		return c.newNode(opCast, to, n)
	case n.t == tString && n.op == opLit && to == tDate:
		d, ok := parseDate(n.lit.s)
		if !ok {
			c.bad("%q is not a date (YYYY-MM-DD)", clip(n.lit.s))
			return c.invalid()
		}
		return c.lit(tDate, value{i: d})
	case n.t == tString && n.op == opLit && to == tTimestamp:
		ns, ok := parseTimestamp(n.lit.s)
		if !ok {
			c.bad("%q is not a timestamp (RFC 3339 within 1677–2262)", clip(n.lit.s))
			return c.invalid()
		}
		return c.lit(tTimestamp, value{i: ns})
	}
	c.bad("%s cannot be used as %s", n.t, to)
	return c.invalid()
}

func (s *inSet) add(t typ, v value) {
	if v.null {
		s.hasNull = true
		return
	}
	switch t {
	case tInt, tDate, tTimestamp:
		s.ints = append(s.ints, v.i)
	case tFloat:
		if s.floats == nil {
			s.floats = map[uint64]struct{}{}
		}
		s.floats[floatKey(v.f)] = struct{}{}
	case tString:
		if s.strs == nil {
			s.strs = map[string]struct{}{}
		}
		s.strs[v.s] = struct{}{}
	case tBool:
		if v.b {
			s.bools[1] = true
		} else {
			s.bools[0] = true
		}
	}
}

// smallIn is the size up to which an int list is scanned rather than
// hashed.
const smallIn = 8

func (s *inSet) finish() {
	if len(s.ints) > smallIn {
		s.intMap = make(map[int64]struct{}, len(s.ints))
		for _, v := range s.ints {
			s.intMap[v] = struct{}{}
		}
		s.ints = nil
	}
}

// floatKey is the bits of a float64 with -0 folded into 0.
func floatKey(f float64) uint64 {
	if f == 0 {
		return 0
	}
	return math.Float64bits(f)
}

// Columns returns the dataset columns the plan reads, sorted.
func (p *Plan) Columns() []string { return slices.Clone(p.columns) }
