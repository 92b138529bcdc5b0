package guest

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Expr is an expression of a plan (the plan IR, version 1): a column, a
// literal, or an operation on expressions. Build one from Col and the
// literal functions with the methods below, and use it in Rows.Where,
// Rows.GroupByExpr, Emitter.AddExpr and Batch.Derive. An Expr is an
// immutable value; sharing one between several uses is fine.
//
// Expressions are evaluated by the host, natively, over the dataset's
// columns, with SQL's semantics: null in, null out (except IsNull,
// IsNotNull, Coalesce, Case and the Kleene And/Or); a value that cannot be
// computed (division by zero, overflow, the log of a non-positive number, a
// failed cast) is null, never an error. Types are bool, int64, float64,
// string, date and timestamp; int op int stays int64 except Div.
//
// A handler builds a plan from the schema alone, in the planning call
// (see the package documentation, "Modes"). In batch mode, where the
// handler gets real rows (mock-data runs, RunLocal), only what the host
// kernels can do runs: Rows.Where of column-versus-literal comparisons,
// null tests and Between, joined by And; GroupByExpr and AddExpr of plain
// columns. Anything else panics there with a message saying so.
type Expr struct{ n *exprNode }

type exprKind uint8

const (
	kCol exprKind = iota + 1
	kInt
	kFloat
	kStr
	kBool
	kDate
	kTimestamp
	kNull
	kOp
)

type exprNode struct {
	kind exprKind
	text string // column name, string literal, date or timestamp text, null type, op name
	i    int64  // int literal; bool literal (0 or 1)
	f    float64
	typ  Type // cast: the target type
	args []Expr
}

// Type is a value type of a plan: what Null and Cast take.
type Type string

// Plan value types.
const (
	BoolType      Type = "bool"
	Int64Type     Type = "int64"
	Float64Type   Type = "float64"
	StringType    Type = "string"
	DateType      Type = "date"
	TimestampType Type = "timestamp"
)

// Col is the column name: a column of the dataset or one made by
// Batch.Derive.
func Col(name string) Expr { return Expr{&exprNode{kind: kCol, text: name}} }

// Int is an int64 literal.
func Int(v int64) Expr { return Expr{&exprNode{kind: kInt, i: v}} }

// Float is a float64 literal; it panics for NaN and infinities, which a
// plan cannot hold.
func Float(v float64) Expr {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		panic("guest: Float(" + strconv.FormatFloat(v, 'g', -1, 64) + "): a plan literal must be finite")
	}
	return Expr{&exprNode{kind: kFloat, f: v}}
}

// Str is a string literal; it panics if s is not valid UTF-8.
func Str(s string) Expr {
	if !utf8.ValidString(s) {
		panic("guest: Str(" + q(s) + "): a plan literal must be valid UTF-8")
	}
	return Expr{&exprNode{kind: kStr, text: s}}
}

// Bool is a bool literal.
func Bool(v bool) Expr {
	e := &exprNode{kind: kBool}
	if v {
		e.i = 1
	}
	return Expr{e}
}

// Date is a date literal written as "2006-01-02"; the host checks it.
func Date(s string) Expr { return Expr{&exprNode{kind: kDate, text: s}} }

// Timestamp is a timestamp literal in RFC 3339 ("2015-01-15T14:00:00Z");
// the host checks it.
func Timestamp(s string) Expr { return Expr{&exprNode{kind: kTimestamp, text: s}} }

// Null is a null of type t.
func Null(t Type) Expr { return Expr{&exprNode{kind: kNull, text: string(t)}} }

func op(name string, args ...Expr) Expr {
	for _, a := range args {
		a.node()
	}
	return Expr{&exprNode{kind: kOp, text: name, args: args}}
}

func (e Expr) node() *exprNode {
	if e.n == nil {
		panic("guest: a zero Expr: build expressions with Col, Int, Float, Str and the like")
	}
	return e.n
}

// call is op(name, e, args...).
func (e Expr) call(name string, args ...Expr) Expr {
	return op(name, append([]Expr{e}, args...)...)
}

// Arithmetic.

// Add is e + x.
func (e Expr) Add(x Expr) Expr { return e.call("add", x) }

// Sub is e − x.
func (e Expr) Sub(x Expr) Expr { return e.call("sub", x) }

// Mul is e × x.
func (e Expr) Mul(x Expr) Expr { return e.call("mul", x) }

// Div is e / x, always float64; null when x is zero.
func (e Expr) Div(x Expr) Expr { return e.call("div", x) }

// Mod is the remainder of e / x; null when x is zero.
func (e Expr) Mod(x Expr) Expr { return e.call("mod", x) }

// Neg is −e.
func (e Expr) Neg() Expr { return e.call("neg") }

// Comparisons: null when either side is null, so a row with a null never
// passes a comparison in Where.

// Eq is e = x.
func (e Expr) Eq(x Expr) Expr { return e.call("eq", x) }

// Ne is e ≠ x.
func (e Expr) Ne(x Expr) Expr { return e.call("ne", x) }

// Lt is e < x.
func (e Expr) Lt(x Expr) Expr { return e.call("lt", x) }

// Le is e ≤ x.
func (e Expr) Le(x Expr) Expr { return e.call("le", x) }

// Gt is e > x.
func (e Expr) Gt(x Expr) Expr { return e.call("gt", x) }

// Ge is e ≥ x.
func (e Expr) Ge(x Expr) Expr { return e.call("ge", x) }

// Between is lo ≤ e ≤ hi.
func (e Expr) Between(lo, hi Expr) Expr { return e.call("between", lo, hi) }

// In is e = one of vals, which must be literals (Int, Float, Str, Bool,
// Date, Timestamp).
func (e Expr) In(vals ...Expr) Expr {
	if len(vals) == 0 {
		panic("guest: In needs at least one value")
	}
	for _, v := range vals {
		if k := v.node().kind; k == kCol || k == kOp || k == kNull {
			panic("guest: In takes literals only, not " + v.String())
		}
	}
	return e.call("in", vals...)
}

// Logic (Kleene: false AND null is false, true OR null is true).

// And is e AND all of more.
func (e Expr) And(more ...Expr) Expr {
	if len(more) == 0 {
		return e
	}
	return e.call("and", more...)
}

// Or is e OR any of more.
func (e Expr) Or(more ...Expr) Expr {
	if len(more) == 0 {
		return e
	}
	return e.call("or", more...)
}

// Not is NOT e.
func (e Expr) Not() Expr { return e.call("not") }

// IsNull is true where e is null (never null itself).
func (e Expr) IsNull() Expr { return e.call("is_null") }

// IsNotNull is true where e is not null (never null itself).
func (e Expr) IsNotNull() Expr { return e.call("is_not_null") }

// Cast converts e to t (Int64Type, Float64Type, StringType or BoolType); a
// value that does not convert is null.
func (e Expr) Cast(t Type) Expr {
	x := e.call("cast")
	x.n.typ = t
	return x
}

// Math, on numbers.

// Abs is |e|.
func (e Expr) Abs() Expr { return e.call("abs") }

// Floor is e rounded down.
func (e Expr) Floor() Expr { return e.call("floor") }

// Ceil is e rounded up.
func (e Expr) Ceil() Expr { return e.call("ceil") }

// Round is e rounded to the nearest integer.
func (e Expr) Round() Expr { return e.call("round") }

// RoundTo is e rounded to digits decimal digits.
func (e Expr) RoundTo(digits int) Expr { return e.call("round", Int(int64(digits))) }

// Sqrt is the square root of e; null when e < 0.
func (e Expr) Sqrt() Expr { return e.call("sqrt") }

// Exp is eᵉ, Euler's number to the power e.
func (e Expr) Exp() Expr { return e.call("exp") }

// Log is the natural logarithm of e; null when e ≤ 0.
func (e Expr) Log() Expr { return e.call("log") }

// Pow is e to the power x.
func (e Expr) Pow(x Expr) Expr { return e.call("pow", x) }

// Bucket is the start of e's bucket of the given width:
// floor(e / width) · width.
func (e Expr) Bucket(width Expr) Expr { return e.call("bucket", width) }

// BucketFrom is Bucket with buckets starting at origin:
// origin + floor((e − origin) / width) · width.
func (e Expr) BucketFrom(width, origin Expr) Expr { return e.call("bucket", width, origin) }

// Strings.

// Length is the length of e in characters.
func (e Expr) Length() Expr { return e.call("length") }

// Lower is e in lower case.
func (e Expr) Lower() Expr { return e.call("lower") }

// Upper is e in upper case.
func (e Expr) Upper() Expr { return e.call("upper") }

// Substr is the substring of e from character start (1-based) of length
// characters, or to the end when length < 0.
func (e Expr) Substr(start, length int) Expr {
	if length < 0 {
		return e.call("substr", Int(int64(start)))
	}
	return e.call("substr", Int(int64(start)), Int(int64(length)))
}

// HasPrefix is true where e starts with prefix.
func (e Expr) HasPrefix(prefix Expr) Expr { return e.call("prefix", prefix) }

// Contains is true where e contains sub.
func (e Expr) Contains(sub Expr) Expr { return e.call("contains", sub) }

// Date parts, of a date or timestamp (UTC).

// Year is e's year.
func (e Expr) Year() Expr { return e.call("year") }

// Month is e's month, 1 to 12.
func (e Expr) Month() Expr { return e.call("month") }

// Day is e's day of the month, 1 to 31.
func (e Expr) Day() Expr { return e.call("day") }

// Hour is e's hour, 0 to 23.
func (e Expr) Hour() Expr { return e.call("hour") }

// Minute is e's minute, 0 to 59.
func (e Expr) Minute() Expr { return e.call("minute") }

// Second is e's second, 0 to 59.
func (e Expr) Second() Expr { return e.call("second") }

// Weekday is e's day of the week, 0 (Sunday) to 6.
func (e Expr) Weekday() Expr { return e.call("dow") }

// YearDay is e's day of the year, 1 to 366.
func (e Expr) YearDay() Expr { return e.call("doy") }

// Case is the value of the first condition that is true:
// Case(cond₁, val₁, …, condₙ, valₙ) or, with a last value for when none is,
// Case(cond₁, val₁, …, condₙ, valₙ, otherwise); null when none is and
// there is no otherwise.
func Case(args ...Expr) Expr {
	if len(args) < 2 {
		panic("guest: Case needs a condition and a value")
	}
	return op("case", args...)
}

// Coalesce is the first of es that is not null.
func Coalesce(es ...Expr) Expr {
	if len(es) == 0 {
		panic("guest: Coalesce needs at least one expression")
	}
	return op("coalesce", es...)
}

// Least is the smallest of es (at least two).
func Least(es ...Expr) Expr {
	if len(es) < 2 {
		panic("guest: Least needs at least two expressions")
	}
	return op("least", es...)
}

// Greatest is the largest of es (at least two).
func Greatest(es ...Expr) Expr {
	if len(es) < 2 {
		panic("guest: Greatest needs at least two expressions")
	}
	return op("greatest", es...)
}

// String is e as plan IR JSON.
func (e Expr) String() string {
	if e.n == nil {
		return "<zero Expr>"
	}
	return string(appendExpr(nil, e))
}

// column reports whether e is a plain column, and its name.
func (e Expr) column() (string, bool) {
	if e.n != nil && e.n.kind == kCol {
		return e.n.text, true
	}
	return "", false
}

// appendExpr writes e as plan IR JSON. Keys come in a fixed order, so equal
// expressions always encode to the same bytes.
func appendExpr(b []byte, e Expr) []byte {
	n := e.node()
	switch n.kind {
	case kCol:
		b = append(b, `{"col":`...)
		b = appendJSONString(b, n.text)
	case kInt:
		b = append(b, `{"int":`...)
		b = strconv.AppendInt(b, n.i, 10)
	case kFloat:
		b = append(b, `{"float":`...)
		b = appendJSONFloat(b, n.f)
	case kStr:
		b = append(b, `{"str":`...)
		b = appendJSONString(b, n.text)
	case kBool:
		b = append(b, `{"bool":`...)
		b = strconv.AppendBool(b, n.i != 0)
	case kDate:
		b = append(b, `{"date":`...)
		b = appendJSONString(b, n.text)
	case kTimestamp:
		b = append(b, `{"timestamp":`...)
		b = appendJSONString(b, n.text)
	case kNull:
		b = append(b, `{"null":`...)
		b = appendJSONString(b, n.text)
	case kOp:
		b = append(b, `{"op":`...)
		b = appendJSONString(b, n.text)
		if n.text == "cast" {
			b = append(b, `,"type":`...)
			b = appendJSONString(b, string(n.typ))
		}
		b = append(b, `,"args":[`...)
		for i, a := range n.args {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendExpr(b, a)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONFloat writes a finite float in Go's shortest form, which is
// valid JSON ("2", "0.1", "1e+21"); −0 is written 0.
func appendJSONFloat(b []byte, f float64) []byte {
	if f == 0 {
		f = 0
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 written as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
