package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/covedata/cove"
)

// Limits on a plan: a plan is untrusted input (a manifest, or a guest's
// planning call).
const (
	MaxPlanBytes   = 64 << 10 // plan JSON (and SQL expression text)
	MaxDepth       = 32       // nesting of one expression
	MaxNodes       = 512      // expression nodes in a plan (in-list literals not counted)
	MaxDerived     = 64       // derived columns
	MaxOutputs     = 64       // outputs
	MaxStringBytes = 4 << 10  // one string literal or name
	MaxInList      = 10_000   // literals of one in list
	maxJSONNesting = 4 + 2*MaxDepth + 8
)

// Literal is a plan as written, in its JSON form (see the package
// documentation). Decode reads one strictly; Compile validates it against a
// schema into a Plan.
type Literal struct {
	Version int       `json:"version"`
	Where   *Expr     `json:"where,omitempty"`  // rows that enter at all
	Derive  []Derived `json:"derive,omitempty"` // in order: a later one may use an earlier one
	Outputs []Output  `json:"outputs"`
}

// Derived is a named derived column.
type Derived struct {
	Name string `json:"name"`
	Expr Expr   `json:"expr"`
}

// Output says what one declared output receives: rows passing Where, keyed
// by GroupBy (one expression per group_by part of the manifest, in its
// order), contributing Value (absent: 1 per row, a count).
type Output struct {
	Name    string `json:"name"`
	Where   *Expr  `json:"where,omitempty"`
	GroupBy []Expr `json:"group_by"`
	Value   *Expr  `json:"value,omitempty"`
}

// Expr is one expression node. Exactly one of the kinds is set: a column
// reference (Col), a literal (Int, Float, Str, Bool, Date, Timestamp, Null) or
// an operation (Op with Args, and Type for a cast).
type Expr struct {
	Col       *string  `json:"col,omitempty"`
	Int       *int64   `json:"int,omitempty"`
	Float     *float64 `json:"float,omitempty"`
	Str       *string  `json:"str,omitempty"`
	Bool      *bool    `json:"bool,omitempty"`
	Date      *string  `json:"date,omitempty"`      // 2006-01-02
	Timestamp *string  `json:"timestamp,omitempty"` // RFC 3339
	// Null is a null of the named type; "" is SQL's untyped NULL, which
	// takes its type from where it is used.
	Null *string `json:"null,omitempty"`
	Op   string  `json:"op,omitempty"`
	Args []Expr  `json:"args,omitempty"`
	Type string  `json:"type,omitempty"` // cast: the target type
}

// kind is what an Expr node is.
type kind uint8

const (
	kNone kind = iota
	kCol
	kInt
	kFloat
	kStr
	kBool
	kDate
	kTimestamp
	kNull
	kOp
)

var kindNames = [...]string{"", "col", "int", "float", "str", "bool", "date", "timestamp", "null", "op"}

// kindOf returns e's kind, or an error when e sets none or several, or sets
// args or type without being an operation (or a cast).
func kindOf(e *Expr) (kind, error) {
	k, n := kNone, 0
	set := func(ok bool, kk kind) {
		if ok {
			k = kk
			n++
		}
	}
	set(e.Col != nil, kCol)
	set(e.Int != nil, kInt)
	set(e.Float != nil, kFloat)
	set(e.Str != nil, kStr)
	set(e.Bool != nil, kBool)
	set(e.Date != nil, kDate)
	set(e.Timestamp != nil, kTimestamp)
	set(e.Null != nil, kNull)
	set(e.Op != "", kOp)
	switch {
	case n == 0:
		return kNone, errors.New("an expression names no kind (one of col, int, float, str, bool, date, timestamp, null, op)")
	case n > 1:
		var names []string
		for kk := kCol; kk <= kOp; kk++ {
			if kk == kindOfOnly(e, kk) {
				names = append(names, kindNames[kk])
			}
		}
		return kNone, fmt.Errorf("an expression sets %s: exactly one is allowed", strings.Join(names, " and "))
	case k != kOp && e.Args != nil:
		return kNone, fmt.Errorf("a %s expression has args (only an op has)", kindNames[k])
	case e.Type != "" && (k != kOp || e.Op != "cast"):
		return kNone, errors.New("type is set on an expression that is not a cast")
	}
	return k, nil
}

func kindOfOnly(e *Expr, k kind) kind {
	ok := false
	switch k {
	case kCol:
		ok = e.Col != nil
	case kInt:
		ok = e.Int != nil
	case kFloat:
		ok = e.Float != nil
	case kStr:
		ok = e.Str != nil
	case kBool:
		ok = e.Bool != nil
	case kDate:
		ok = e.Date != nil
	case kTimestamp:
		ok = e.Timestamp != nil
	case kNull:
		ok = e.Null != nil
	case kOp:
		ok = e.Op != ""
	}
	if ok {
		return k
	}
	return kNone
}

// isLiteral reports whether e is a literal (of any kind).
func isLiteral(e *Expr) bool {
	k, err := kindOf(e)
	return err == nil && k != kCol && k != kOp
}

// Decode reads a plan from its JSON form, strictly: unknown or duplicate
// fields, JSON null, wrong types and trailing data are errors wrapping
// cove.ErrInvalid; the plan's size, nesting and counts beyond the limits are
// errors wrapping cove.ErrLimit. Decode checks the form only; Compile checks
// names and types against a schema.
func Decode(b []byte) (Literal, error) {
	if len(b) > MaxPlanBytes {
		return Literal{}, fmt.Errorf("%w: plan: %d bytes, the limit is %d", cove.ErrLimit, len(b), MaxPlanBytes)
	}
	if err := scanJSON(b); err != nil {
		return Literal{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var lit Literal
	if err := dec.Decode(&lit); err != nil {
		return Literal{}, fmt.Errorf("%w: plan: %v", cove.ErrInvalid, err)
	}
	var errs []error
	errs = append(errs, checkLimits(&lit)...)
	errs = append(errs, checkForm(&lit)...)
	if len(errs) > 0 {
		return Literal{}, errors.Join(errs...)
	}
	return lit, nil
}

// knownKeys are every object key of the plan JSON. scanJSON holds keys to
// them exactly: encoding/json alone would match keys case-insensitively and
// let a duplicate key win silently.
var knownKeys = map[string]bool{
	"version": true, "where": true, "derive": true, "outputs": true,
	"name": true, "expr": true, "group_by": true, "value": true,
	"col": true, "int": true, "float": true, "str": true, "bool": true,
	"date": true, "timestamp": true, "null": true, "op": true, "args": true, "type": true,
}

// scanJSON checks b's tokens: one JSON object, nothing after it, no JSON
// null, object keys among knownKeys and each at most once per object, and
// nesting within maxJSONNesting.
func scanJSON(b []byte) error {
	type frame struct {
		obj    bool
		keyNow bool // an object expects a key (or its end) next
		keys   map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []frame
	done := false // the top-level value is complete
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !done {
				return fmt.Errorf("%w: plan: unexpected end of JSON", cove.ErrInvalid)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: plan: %v", cove.ErrInvalid, err)
		}
		if done {
			return fmt.Errorf("%w: plan: data after the plan's JSON object", cove.ErrInvalid)
		}
		if len(stack) == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return fmt.Errorf("%w: plan: not a JSON object", cove.ErrInvalid)
			}
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].keyNow {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				if len(stack) == 0 {
					done = true
				} else if top := &stack[len(stack)-1]; top.obj {
					top.keyNow = true
				}
				continue
			}
			key, _ := tok.(string)
			if !knownKeys[key] {
				return fmt.Errorf("%w: plan: unknown field %q", cove.ErrInvalid, clip(key))
			}
			top := &stack[n-1]
			if top.keys == nil {
				top.keys = map[string]bool{}
			}
			if top.keys[key] {
				return fmt.Errorf("%w: plan: field %q appears twice in one object", cove.ErrInvalid, clip(key))
			}
			top.keys[key] = true
			top.keyNow = false
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONNesting {
					return fmt.Errorf("%w: plan: JSON nested deeper than %d", cove.ErrLimit, maxJSONNesting)
				}
				stack = append(stack, frame{obj: t == '{', keyNow: t == '{'})
				continue
			default: // ']' ('}' is handled with keys)
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					done = true
					continue
				}
			}
		case nil:
			return fmt.Errorf("%w: plan: null is not a value (leave the field out)", cove.ErrInvalid)
		}
		if top := &stack[len(stack)-1]; top.obj {
			top.keyNow = true
		}
	}
}

// loc names where in a plan a problem is, for messages.
func locWhere() string { return "where" }

func locDerive(i int, name string) string {
	return fmt.Sprintf("derive[%d] (%s)", i, showName(name))
}

func locOutput(i int, name string) string {
	return fmt.Sprintf("outputs[%d] (%s)", i, showName(name))
}

// showName writes a name as it is when it is plain, quoted otherwise.
func showName(s string) string {
	if s == "" {
		return `""`
	}
	if len(s) > 64 {
		return fmt.Sprintf("%q…", s[:64])
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f || r == '(' || r == ')' || r == '"' || r > 0x7e && !isPrintable(r) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// exprs calls f on every top-level expression of lit with its location.
func exprs(lit *Literal, f func(loc string, e *Expr)) {
	if lit.Where != nil {
		f(locWhere(), lit.Where)
	}
	for i := range lit.Derive {
		f(locDerive(i, lit.Derive[i].Name), &lit.Derive[i].Expr)
	}
	for i := range lit.Outputs {
		o := &lit.Outputs[i]
		at := locOutput(i, o.Name)
		if o.Where != nil {
			f(at+": where", o.Where)
		}
		for j := range o.GroupBy {
			f(fmt.Sprintf("%s: group_by[%d]", at, j), &o.GroupBy[j])
		}
		if o.Value != nil {
			f(at+": value", o.Value)
		}
	}
}

// checkLimits reports every limit lit exceeds (errors wrapping cove.ErrLimit).
func checkLimits(lit *Literal) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: plan: "+format, append([]any{cove.ErrLimit}, a...)...))
	}
	if len(lit.Derive) > MaxDerived {
		bad("%d derived columns, the limit is %d", len(lit.Derive), MaxDerived)
	}
	if len(lit.Outputs) > MaxOutputs {
		bad("%d outputs, the limit is %d", len(lit.Outputs), MaxOutputs)
	}
	for i, d := range lit.Derive {
		if len(d.Name) > MaxStringBytes {
			bad("derive[%d]: name of %d bytes, the limit is %d", i, len(d.Name), MaxStringBytes)
		}
	}
	for i, o := range lit.Outputs {
		if len(o.Name) > MaxStringBytes {
			bad("outputs[%d]: name of %d bytes, the limit is %d", i, len(o.Name), MaxStringBytes)
		}
	}
	nodes := 0
	exprs(lit, func(loc string, e *Expr) {
		st := limitWalk{}
		st.walk(e, 1)
		nodes += st.nodes
		if st.depth > MaxDepth {
			bad("%s: expression deeper than %d", loc, MaxDepth)
		}
		if st.longStr > 0 {
			bad("%s: a string of %d bytes, the limit is %d", loc, st.longStr, MaxStringBytes)
		}
		if st.longIn > 0 {
			bad("%s: an in list of %d literals, the limit is %d", loc, st.longIn, MaxInList)
		}
	})
	if nodes > MaxNodes {
		bad("%d expression nodes, the limit is %d", nodes, MaxNodes)
	}
	return errs
}

type limitWalk struct {
	nodes, depth    int
	longStr, longIn int
}

func (w *limitWalk) walk(e *Expr, depth int) {
	w.nodes++
	w.depth = max(w.depth, depth)
	for _, s := range []*string{e.Col, e.Str, e.Date, e.Timestamp, e.Null} {
		if s != nil && len(*s) > MaxStringBytes {
			w.longStr = max(w.longStr, len(*s))
		}
	}
	if len(e.Op) > MaxStringBytes || len(e.Type) > MaxStringBytes {
		w.longStr = max(w.longStr, len(e.Op), len(e.Type))
	}
	if depth > MaxDepth+1 {
		return // deep enough to be refused; do not walk a degenerate tree further
	}
	for i := range e.Args {
		if e.Op == "in" && i > 0 {
			if len(e.Args)-1 > MaxInList {
				w.longIn = len(e.Args) - 1
				return
			}
			for _, s := range []*string{e.Args[i].Str, e.Args[i].Date, e.Args[i].Timestamp} {
				if s != nil && len(*s) > MaxStringBytes {
					w.longStr = max(w.longStr, len(*s))
				}
			}
			continue // in-list literals are not nodes
		}
		w.walk(&e.Args[i], depth+1)
	}
}

// checkForm reports what is malformed regardless of a schema: the version,
// and expression nodes that set no kind or several.
func checkForm(lit *Literal) []error {
	var errs []error
	if lit.Version != 1 {
		errs = append(errs, fmt.Errorf("%w: plan: version %d, want 1", cove.ErrInvalid, lit.Version))
	}
	exprs(lit, func(loc string, e *Expr) {
		if err := formWalk(e, 1); err != nil {
			errs = append(errs, fmt.Errorf("%w: plan: %s: %v", cove.ErrInvalid, loc, err))
		}
	})
	return errs
}

func formWalk(e *Expr, depth int) error {
	if _, err := kindOf(e); err != nil {
		return err
	}
	if depth > MaxDepth {
		return nil // refused by checkLimits
	}
	for i := range e.Args {
		if err := formWalk(&e.Args[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}
