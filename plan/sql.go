package plan

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/covedata/cove"
)

var sqlParser = sync.OnceValues(func() (*sqlparser.Parser, error) {
	return sqlparser.New(sqlparser.Options{})
})

// ParseExpr reads one SQL expression (MySQL syntax, as vitess parses it;
// `backticks` quote odd column names) into the plan IR. Constructs a plan
// cannot hold (subqueries, aggregates, variables, unknown functions…) are
// errors naming the construct, wrapping cove.ErrInvalid; text beyond
// MaxPlanBytes or an expression deeper than MaxDepth wraps cove.ErrLimit.
// Names and types are checked later, by Compile.
func ParseExpr(sql string) (e Expr, err error) {
	if len(sql) > MaxPlanBytes {
		return Expr{}, fmt.Errorf("%w: plan: SQL expression of %d bytes, the limit is %d", cove.ErrLimit, len(sql), MaxPlanBytes)
	}
	if strings.TrimSpace(sql) == "" {
		return Expr{}, fmt.Errorf("%w: plan: empty SQL expression", cove.ErrInvalid)
	}
	if !utf8.ValidString(sql) {
		return Expr{}, fmt.Errorf("%w: plan: SQL expression is not valid UTF-8", cove.ErrInvalid)
	}
	p, err := sqlParser()
	if err != nil {
		return Expr{}, fmt.Errorf("plan: SQL parser: %v", err)
	}
	defer func() {
		// The parser is third-party code fed untrusted text: a panic in it
		// must not take the service down.
		if r := recover(); r != nil {
			e, err = Expr{}, fmt.Errorf("%w: plan: SQL expression cannot be parsed", cove.ErrInvalid)
		}
	}()
	stmt, err := p.Parse("select " + sql)
	if err != nil {
		return Expr{}, fmt.Errorf("%w: plan: SQL expression: %s", cove.ErrInvalid, parseMessage(err))
	}
	x, err := soleExpr(stmt)
	if err != nil {
		return Expr{}, err
	}
	return convert(x, 1)
}

var positionRE = regexp.MustCompile(`position (\d+)`)

// parseMessage rewrites a vitess syntax error for the caller's text: the
// position counts from the start of the expression, not of the SELECT the
// parser saw.
func parseMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return positionRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(m[len("position "):])
		return "position " + strconv.Itoa(max(n-len("select "), 0))
	})
}

// soleExpr returns the expression of a plain "SELECT expr" and refuses
// anything more (FROM, WHERE, several expressions, UNION…).
func soleExpr(stmt sqlparser.Statement) (sqlparser.Expr, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: plan: SQL expression: %s is not part of an expression", cove.ErrInvalid, what)
	}
	sel, ok := stmt.(*sqlparser.Select)
	if !ok {
		return nil, bad("a set operation or statement")
	}
	switch {
	case sel.With != nil:
		return nil, bad("WITH")
	case sel.Distinct || sel.HighPriority || sel.StraightJoinHint || sel.SQLSmallResult || sel.SQLBigResult ||
		sel.SQLBufferResult || sel.SQLCalcFoundRows || sel.Cache != nil:
		return nil, bad("a SELECT option")
	case sel.Where != nil:
		return nil, bad("WHERE")
	case sel.GroupBy != nil:
		return nil, bad("GROUP BY")
	case sel.Having != nil:
		return nil, bad("HAVING")
	case len(sel.Windows) > 0:
		return nil, bad("WINDOW")
	case len(sel.OrderBy) > 0:
		return nil, bad("ORDER BY")
	case sel.Limit != nil:
		return nil, bad("LIMIT")
	case sel.Lock != sqlparser.NoLock:
		return nil, bad("a locking clause")
	case sel.Into != nil:
		return nil, bad("INTO")
	}
	if len(sel.From) != 1 || sqlparser.String(sel.From[0]) != "dual" {
		return nil, bad("FROM")
	}
	if sel.SelectExprs == nil || len(sel.SelectExprs.Exprs) != 1 {
		return nil, bad("a list of expressions")
	}
	ae, ok := sel.SelectExprs.Exprs[0].(*sqlparser.AliasedExpr)
	if !ok {
		return nil, bad("*")
	}
	if !ae.As.IsEmpty() {
		return nil, bad("an alias (AS)")
	}
	return ae.Expr, nil
}

// snippet is a short rendering of a node of the caller's expression, for
// messages.
func snippet(n sqlparser.SQLNode) string {
	s := sqlparser.String(n)
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		s = string(r[:60]) + "…"
	}
	return s
}

func unsupported(n sqlparser.SQLNode, what string) error {
	return fmt.Errorf("%w: plan: SQL expression: %s is not supported: %s", cove.ErrInvalid, what, snippet(n))
}

// Constructors of IR nodes.

func colExpr(name string) Expr            { return Expr{Col: &name} }
func intExpr(v int64) Expr                { return Expr{Int: &v} }
func floatExpr(v float64) Expr            { return Expr{Float: &v} }
func strExpr(v string) Expr               { return Expr{Str: &v} }
func boolExpr(v bool) Expr                { return Expr{Bool: &v} }
func nullExpr(t string) Expr              { return Expr{Null: &t} }
func opExpr(op string, args ...Expr) Expr { return Expr{Op: op, Args: args} }

// sqlFuncs maps SQL function names to plan ops of the same meaning.
var sqlFuncs = map[string]string{
	"abs": "abs", "floor": "floor", "ceil": "ceil", "ceiling": "ceil", "round": "round",
	"sqrt": "sqrt", "exp": "exp", "ln": "log", "log": "log", "pow": "pow", "power": "pow",
	"mod": "mod", "least": "least", "greatest": "greatest", "coalesce": "coalesce",
	"length": "length", "char_length": "length", "character_length": "length",
	"lower": "lower", "lcase": "lower", "upper": "upper", "ucase": "upper",
	"substr": "substr", "substring": "substr",
	"starts_with": "prefix", "prefix": "prefix", "contains": "contains",
	"year": "year", "month": "month", "day": "day", "dayofmonth": "day",
	"hour": "hour", "minute": "minute", "second": "second",
	"dow": "dow", "dayofyear": "doy", "doy": "doy", "bucket": "bucket",
}

// castTypes maps SQL cast types to plan types.
var castTypes = map[string]string{
	"signed": "int64", "double": "float64", "real": "float64", "float": "float64",
	"char": "string", "nchar": "string", "date": "date", "datetime": "timestamp",
}

func convert(x sqlparser.Expr, depth int) (Expr, error) {
	if depth > MaxDepth {
		return Expr{}, fmt.Errorf("%w: plan: SQL expression deeper than %d", cove.ErrLimit, MaxDepth)
	}
	sub := func(y sqlparser.Expr) (Expr, error) { return convert(y, depth+1) }
	subs := func(ys ...sqlparser.Expr) ([]Expr, error) {
		out := make([]Expr, 0, len(ys))
		for _, y := range ys {
			e, err := sub(y)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	op := func(name string, ys ...sqlparser.Expr) (Expr, error) {
		args, err := subs(ys...)
		if err != nil {
			return Expr{}, err
		}
		return opExpr(name, args...), nil
	}
	switch x := x.(type) {
	case *sqlparser.ColName:
		if !x.Qualifier.IsEmpty() {
			return Expr{}, unsupported(x, "a qualified column name")
		}
		return colExpr(x.Name.String()), nil
	case *sqlparser.Literal:
		return convertLiteral(x, false)
	case sqlparser.BoolVal:
		return boolExpr(bool(x)), nil
	case *sqlparser.NullVal:
		return nullExpr(""), nil
	case *sqlparser.UnaryExpr:
		switch x.Operator {
		case sqlparser.UMinusOp:
			if lit, ok := x.Expr.(*sqlparser.Literal); ok && (lit.Type == sqlparser.IntVal || lit.Type == sqlparser.DecimalVal || lit.Type == sqlparser.FloatVal) {
				return convertLiteral(lit, true)
			}
			// A negated number is a number: parentheses leave no trace in
			// the parser's tree, so -(-1) must read as 1 for Text to read
			// back as the same IR.
			e, err := sub(x.Expr)
			switch {
			case err != nil:
				return Expr{}, err
			case e.Int != nil && *e.Int != math.MinInt64:
				return intExpr(-*e.Int), nil
			case e.Float != nil:
				return floatExpr(-*e.Float), nil
			}
			return opExpr("neg", e), nil
		case sqlparser.UPlusOp:
			return sub(x.Expr)
		case sqlparser.BangOp:
			return op("not", x.Expr)
		case sqlparser.NStringOp:
			if lit, ok := x.Expr.(*sqlparser.Literal); ok && lit.Type == sqlparser.StrVal {
				return strExpr(lit.Val), nil
			}
		}
		return Expr{}, unsupported(x, "this unary operator")
	case *sqlparser.BinaryExpr:
		names := map[sqlparser.BinaryExprOperator]string{
			sqlparser.PlusOp: "add", sqlparser.MinusOp: "sub", sqlparser.MultOp: "mul",
			sqlparser.DivOp: "div", sqlparser.ModOp: "mod",
		}
		if name, ok := names[x.Operator]; ok {
			return op(name, x.Left, x.Right)
		}
		if x.Operator == sqlparser.IntDivOp {
			return Expr{}, unsupported(x, "DIV (use floor(a / b))")
		}
		return Expr{}, unsupported(x, "a bit operator")
	case *sqlparser.ComparisonExpr:
		return convertComparison(x, depth)
	case *sqlparser.AndExpr:
		return logic("and", depth, x)
	case *sqlparser.OrExpr:
		return logic("or", depth, x)
	case *sqlparser.NotExpr:
		return op("not", x.Expr)
	case *sqlparser.XorExpr:
		return Expr{}, unsupported(x, "XOR (use a <> b on booleans)")
	case *sqlparser.IsExpr:
		arg, err := sub(x.Left)
		if err != nil {
			return Expr{}, err
		}
		switch x.Right {
		case sqlparser.IsNullOp:
			return opExpr("is_null", arg), nil
		case sqlparser.IsNotNullOp:
			return opExpr("is_not_null", arg), nil
		case sqlparser.IsTrueOp:
			return opExpr("coalesce", arg, boolExpr(false)), nil
		case sqlparser.IsNotTrueOp:
			return opExpr("not", opExpr("coalesce", arg, boolExpr(false))), nil
		case sqlparser.IsFalseOp:
			return opExpr("not", opExpr("coalesce", arg, boolExpr(true))), nil
		case sqlparser.IsNotFalseOp:
			return opExpr("coalesce", arg, boolExpr(true)), nil
		}
		return Expr{}, unsupported(x, "this IS test")
	case *sqlparser.BetweenExpr:
		e, err := op("between", x.Left, x.From, x.To)
		if err != nil || x.IsBetween {
			return e, err
		}
		return opExpr("not", e), nil
	case *sqlparser.CaseExpr:
		var args []Expr
		var operand Expr
		if x.Expr != nil {
			var err error
			if operand, err = sub(x.Expr); err != nil {
				return Expr{}, err
			}
		}
		for _, w := range x.Whens {
			c, err := sub(w.Cond)
			if err != nil {
				return Expr{}, err
			}
			if x.Expr != nil {
				c = opExpr("eq", operand, c)
			}
			v, err := sub(w.Val)
			if err != nil {
				return Expr{}, err
			}
			args = append(args, c, v)
		}
		if x.Else != nil {
			e, err := sub(x.Else)
			if err != nil {
				return Expr{}, err
			}
			args = append(args, e)
		}
		return opExpr("case", args...), nil
	case *sqlparser.FuncExpr:
		return convertFunc(x, depth)
	case *sqlparser.SubstrExpr:
		if x.To == nil {
			return op("substr", x.Name, x.From)
		}
		return op("substr", x.Name, x.From, x.To)
	case *sqlparser.CastExpr:
		if x.Array {
			return Expr{}, unsupported(x, "CAST … ARRAY")
		}
		return convertCast(x, x.Expr, x.Type, depth)
	case *sqlparser.ConvertExpr:
		return convertCast(x, x.Expr, x.Type, depth)
	case *sqlparser.ExtractFuncExpr:
		unit := strings.ToLower(x.IntervalType.ToString())
		switch unit {
		case "year", "month", "day", "hour", "minute", "second":
			return op(unit, x.Expr)
		}
		return Expr{}, unsupported(x, "EXTRACT of this unit")
	case *sqlparser.LocateExpr:
		return Expr{}, unsupported(x, "LOCATE/POSITION (use contains(s, sub))")
	case sqlparser.ValTuple:
		return Expr{}, unsupported(x, "a tuple")
	case *sqlparser.Subquery, *sqlparser.ExistsExpr:
		return Expr{}, unsupported(x, "a subquery")
	case sqlparser.AggrFunc:
		return Expr{}, unsupported(x, "an aggregate function (the output's aggregate does that)")
	case *sqlparser.Variable:
		return Expr{}, unsupported(x, "a variable")
	case *sqlparser.Argument:
		return Expr{}, unsupported(x, "a bind parameter")
	case *sqlparser.CurTimeFuncExpr:
		return Expr{}, unsupported(x, "the current time (a plan cannot depend on when it runs)")
	}
	return Expr{}, unsupported(x, "this construct")
}

// logic converts AND/OR chains into one n-ary op.
func logic(name string, depth int, x sqlparser.Expr) (Expr, error) {
	var flat []sqlparser.Expr
	var walk func(y sqlparser.Expr)
	walk = func(y sqlparser.Expr) {
		switch z := y.(type) {
		case *sqlparser.AndExpr:
			if name == "and" {
				walk(z.Left)
				walk(z.Right)
				return
			}
		case *sqlparser.OrExpr:
			if name == "or" {
				walk(z.Left)
				walk(z.Right)
				return
			}
		}
		flat = append(flat, y)
	}
	walk(x)
	args := make([]Expr, 0, len(flat))
	for _, y := range flat {
		e, err := convert(y, depth+1)
		if err != nil {
			return Expr{}, err
		}
		args = append(args, e)
	}
	return opExpr(name, args...), nil
}

func convertLiteral(x *sqlparser.Literal, negate bool) (Expr, error) {
	sign := ""
	if negate {
		sign = "-"
	}
	switch x.Type {
	case sqlparser.StrVal:
		return strExpr(x.Val), nil
	case sqlparser.IntVal:
		v, err := strconv.ParseInt(sign+x.Val, 10, 64)
		if err != nil {
			return Expr{}, unsupported(x, "an integer outside int64")
		}
		return intExpr(v), nil
	case sqlparser.DecimalVal, sqlparser.FloatVal:
		v, err := strconv.ParseFloat(sign+x.Val, 64)
		if err != nil || math.IsInf(v, 0) {
			return Expr{}, unsupported(x, "a number outside float64")
		}
		return floatExpr(v), nil
	case sqlparser.DateVal:
		d, ok := parseDate(x.Val)
		if !ok {
			return Expr{}, unsupported(x, "a date that is not YYYY-MM-DD")
		}
		s := formatDate(d)
		return Expr{Date: &s}, nil
	case sqlparser.TimestampVal:
		ns, ok := parseTimestamp(x.Val)
		if !ok {
			return Expr{}, unsupported(x, "a timestamp that is not YYYY-MM-DD hh:mm:ss[.fraction][offset] within 1677–2262")
		}
		s := formatTimestamp(ns)
		return Expr{Timestamp: &s}, nil
	}
	return Expr{}, unsupported(x, "this kind of literal")
}

func convertComparison(x *sqlparser.ComparisonExpr, depth int) (Expr, error) {
	if x.Modifier != sqlparser.Missing {
		return Expr{}, unsupported(x, "ANY/ALL")
	}
	names := map[sqlparser.ComparisonExprOperator]string{
		sqlparser.EqualOp: "eq", sqlparser.NotEqualOp: "ne", sqlparser.LessThanOp: "lt",
		sqlparser.LessEqualOp: "le", sqlparser.GreaterThanOp: "gt", sqlparser.GreaterEqualOp: "ge",
	}
	switch x.Operator {
	case sqlparser.InOp, sqlparser.NotInOp:
		tuple, ok := x.Right.(sqlparser.ValTuple)
		if !ok {
			return Expr{}, unsupported(x, "IN of a subquery")
		}
		left, err := convert(x.Left, depth+1)
		if err != nil {
			return Expr{}, err
		}
		if len(tuple) > MaxInList {
			return Expr{}, fmt.Errorf("%w: plan: SQL expression: an IN list of %d values, the limit is %d", cove.ErrLimit, len(tuple), MaxInList)
		}
		args := []Expr{left}
		for _, y := range tuple {
			e, err := convert(y, depth+1)
			if err != nil {
				return Expr{}, err
			}
			if !isLiteral(&e) {
				return Expr{}, unsupported(y, "an IN list item that is not a literal")
			}
			args = append(args, e)
		}
		in := opExpr("in", args...)
		if x.Operator == sqlparser.NotInOp {
			return opExpr("not", in), nil
		}
		return in, nil
	case sqlparser.NullSafeEqualOp:
		return Expr{}, unsupported(x, "<=>")
	case sqlparser.LikeOp, sqlparser.NotLikeOp:
		return Expr{}, unsupported(x, "LIKE (use prefix(s, p) or contains(s, sub))")
	case sqlparser.RegexpOp, sqlparser.NotRegexpOp:
		return Expr{}, unsupported(x, "REGEXP")
	}
	name, ok := names[x.Operator]
	if !ok {
		return Expr{}, unsupported(x, "this comparison")
	}
	l, err := convert(x.Left, depth+1)
	if err != nil {
		return Expr{}, err
	}
	r, err := convert(x.Right, depth+1)
	if err != nil {
		return Expr{}, err
	}
	return opExpr(name, l, r), nil
}

func convertFunc(x *sqlparser.FuncExpr, depth int) (Expr, error) {
	if !x.Qualifier.IsEmpty() {
		return Expr{}, unsupported(x, "a qualified function name")
	}
	name := x.Name.Lowered()
	args := make([]Expr, 0, len(x.Exprs))
	for _, y := range x.Exprs {
		e, err := convert(y, depth+1)
		if err != nil {
			return Expr{}, err
		}
		args = append(args, e)
	}
	arity := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%w: plan: SQL expression: %s takes %d arguments, not %d: %s", cove.ErrInvalid, name, n, len(args), snippet(x))
		}
		return nil
	}
	switch name {
	case "dayofweek": // MySQL: 1 = Sunday; the plan's dow: 0 = Sunday
		if err := arity(1); err != nil {
			return Expr{}, err
		}
		return opExpr("add", opExpr("dow", args[0]), intExpr(1)), nil
	case "ifnull":
		if err := arity(2); err != nil {
			return Expr{}, err
		}
		return opExpr("coalesce", args...), nil
	case "if":
		if err := arity(3); err != nil {
			return Expr{}, err
		}
		return opExpr("case", args...), nil
	case "date":
		if err := arity(1); err != nil {
			return Expr{}, err
		}
		return castOf(args[0], "date"), nil
	case "log":
		if len(args) == 2 {
			return Expr{}, unsupported(x, "log with a base")
		}
	}
	op, ok := sqlFuncs[name]
	if !ok {
		return Expr{}, unsupported(x, fmt.Sprintf("function %s", name))
	}
	return opExpr(op, args...), nil
}

func convertCast(x sqlparser.Expr, arg sqlparser.Expr, ct *sqlparser.ConvertType, depth int) (Expr, error) {
	name := strings.ToLower(ct.Type)
	to, ok := castTypes[name]
	if !ok || ct.Length != nil || ct.Scale != nil || ct.Charset.Name != "" || ct.Charset.Binary {
		hint := ""
		switch name {
		case "unsigned":
			hint = " (use SIGNED)"
		case "decimal":
			hint = " (use DOUBLE)"
		}
		return Expr{}, unsupported(x, "a cast to this type"+hint)
	}
	e, err := convert(arg, depth+1)
	if err != nil {
		return Expr{}, err
	}
	return castOf(e, to), nil
}

// castOf casts e to type to; a cast of an untyped NULL is a typed null.
func castOf(e Expr, to string) Expr {
	if e.Null != nil && *e.Null == "" {
		return nullExpr(to)
	}
	return Expr{Op: "cast", Args: []Expr{e}, Type: to}
}
