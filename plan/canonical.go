package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"vitess.io/vitess/go/vt/sqlparser"
)

// Canonical returns the plan's canonical JSON: object keys sorted, no
// whitespace, outputs in the manifest's order, and/or chains flattened,
// dates and timestamps in their key form. Decoding and compiling it again
// gives the same bytes.
func (p *Plan) Canonical() []byte { return slices.Clone(p.canon) }

// Text returns the plan as SQL-like text, one clause a line, for reviewers
// and the ledger. Each expression is SQL that ParseExpr reads back, but for
// a cast to bool (CAST(x AS BOOL)), which MySQL lacks.
func (p *Plan) Text() string { return p.text }

// SHA256 returns the hex SHA-256 of Canonical().
func (p *Plan) SHA256() string {
	sum := sha256.Sum256(p.canon)
	return hex.EncodeToString(sum[:])
}

// normalize returns a deep copy of lit with outputs in the manifest's order
// and expressions normalized.
func normalize(lit Literal) Literal {
	out := Literal{Version: lit.Version}
	if lit.Where != nil {
		w := normExpr(*lit.Where)
		out.Where = &w
	}
	for _, d := range lit.Derive {
		out.Derive = append(out.Derive, Derived{Name: d.Name, Expr: normExpr(d.Expr)})
	}
	for _, o := range lit.Outputs {
		no := Output{Name: o.Name}
		if o.Where != nil {
			w := normExpr(*o.Where)
			no.Where = &w
		}
		for _, g := range o.GroupBy {
			no.GroupBy = append(no.GroupBy, normExpr(g))
		}
		if o.Value != nil {
			v := normExpr(*o.Value)
			no.Value = &v
		}
		out.Outputs = append(out.Outputs, no)
	}
	return out
}

func normExpr(e Expr) Expr {
	clone := func(s *string) *string {
		if s == nil {
			return nil
		}
		v := *s
		return &v
	}
	out := Expr{Col: clone(e.Col), Str: clone(e.Str), Null: clone(e.Null), Op: e.Op, Type: e.Type}
	if e.Int != nil {
		v := *e.Int
		out.Int = &v
	}
	if e.Float != nil {
		v := *e.Float
		out.Float = &v
	}
	if e.Bool != nil {
		v := *e.Bool
		out.Bool = &v
	}
	if e.Date != nil {
		d, _ := parseDate(*e.Date)
		s := formatDate(d)
		out.Date = &s
	}
	if e.Timestamp != nil {
		ns, _ := parseTimestamp(*e.Timestamp)
		s := formatTimestamp(ns)
		out.Timestamp = &s
	}
	for _, a := range e.Args {
		a = normExpr(a)
		if (e.Op == "and" || e.Op == "or") && a.Op == e.Op {
			out.Args = append(out.Args, a.Args...)
			continue
		}
		out.Args = append(out.Args, a)
	}
	return out
}

// order sorts outputs by the manifest's order.
func order(lit *Literal, outputs []OutputSpec) []Output {
	pos := map[string]int{}
	for i, o := range outputs {
		pos[o.Name] = i
	}
	outs := slices.Clone(lit.Outputs)
	slices.SortStableFunc(outs, func(a, b Output) int { return pos[a.Name] - pos[b.Name] })
	return outs
}

func canonical(lit *Literal, outputs []OutputSpec) []byte {
	var b []byte
	b = append(b, '{')
	if len(lit.Derive) > 0 {
		b = append(b, `"derive":[`...)
		for i, d := range lit.Derive {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"expr":`...)
			b = appendExpr(b, &d.Expr)
			b = append(b, `,"name":`...)
			b = appendString(b, d.Name)
			b = append(b, '}')
		}
		b = append(b, "],"...)
	}
	b = append(b, `"outputs":[`...)
	for i, o := range order(lit, outputs) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"group_by":[`...)
		for j := range o.GroupBy {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendExpr(b, &o.GroupBy[j])
		}
		b = append(b, `],"name":`...)
		b = appendString(b, o.Name)
		if o.Value != nil {
			b = append(b, `,"value":`...)
			b = appendExpr(b, o.Value)
		}
		if o.Where != nil {
			b = append(b, `,"where":`...)
			b = appendExpr(b, o.Where)
		}
		b = append(b, '}')
	}
	b = append(b, `],"version":`...)
	b = strconv.AppendInt(b, int64(lit.Version), 10)
	if lit.Where != nil {
		b = append(b, `,"where":`...)
		b = appendExpr(b, lit.Where)
	}
	return append(b, '}')
}

func appendExpr(b []byte, e *Expr) []byte {
	b = append(b, '{')
	str := func(key, v string) []byte {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":`...)
		return appendString(b, v)
	}
	switch {
	case e.Col != nil:
		b = str("col", *e.Col)
	case e.Int != nil:
		b = append(b, `"int":`...)
		b = strconv.AppendInt(b, *e.Int, 10)
	case e.Float != nil:
		b = append(b, `"float":`...)
		b = strconv.AppendFloat(b, *e.Float, 'g', -1, 64)
	case e.Str != nil:
		b = str("str", *e.Str)
	case e.Bool != nil:
		b = append(b, `"bool":`...)
		b = strconv.AppendBool(b, *e.Bool)
	case e.Date != nil:
		b = str("date", *e.Date)
	case e.Timestamp != nil:
		b = str("timestamp", *e.Timestamp)
	case e.Null != nil:
		b = str("null", *e.Null)
	default:
		b = append(b, `"args":[`...)
		for i := range e.Args {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendExpr(b, &e.Args[i])
		}
		b = append(b, "],"...)
		b = str("op", e.Op)
		if e.Type != "" {
			b = append(b, ',')
			b = str("type", e.Type)
		}
	}
	return append(b, '}')
}

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, everything else as UTF-8.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

func text(lit *Literal, outputs []OutputSpec) string {
	var lines []string
	if lit.Where != nil {
		lines = append(lines, "WHERE "+sqlText(lit.Where))
	}
	for _, d := range lit.Derive {
		lines = append(lines, "DERIVE "+ident(d.Name)+" = "+sqlText(&d.Expr))
	}
	for _, o := range order(lit, outputs) {
		s := "OUTPUT " + ident(o.Name)
		if o.Where != nil {
			s += " WHERE " + sqlText(o.Where)
		}
		if len(o.GroupBy) > 0 {
			parts := make([]string, len(o.GroupBy))
			for j := range o.GroupBy {
				parts[j] = sqlText(&o.GroupBy[j])
			}
			s += " GROUP BY " + strings.Join(parts, ", ")
		}
		if o.Value != nil {
			s += " VALUE " + sqlText(o.Value)
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// ident writes a column name as SQL, in backticks when it needs them.
func ident(name string) string {
	return sqlparser.String(sqlparser.NewColName(name))
}

// Precedences of the SQL rendering (MySQL's order).
const (
	precOr   = 1
	precAnd  = 2
	precNot  = 3
	precCmp  = 4
	precAdd  = 5
	precMul  = 6
	precNeg  = 7
	precAtom = 9
)

var infix = map[string]struct {
	sym  string
	prec int
}{
	"add": {"+", precAdd}, "sub": {"-", precAdd}, "mul": {"*", precMul}, "div": {"/", precMul},
	"mod": {"%", precMul}, "eq": {"=", precCmp}, "ne": {"<>", precCmp}, "lt": {"<", precCmp},
	"le": {"<=", precCmp}, "gt": {">", precCmp}, "ge": {">=", precCmp},
}

var sqlCastTypes = map[string]string{
	"int64": "SIGNED", "float64": "DOUBLE", "string": "CHAR", "date": "DATE",
	"timestamp": "DATETIME", "bool": "BOOL",
}

func sqlText(e *Expr) string {
	s, _ := render(e)
	return s
}

// wrap renders e, in parentheses when its precedence is below min.
func wrap(e *Expr, min int) string {
	s, p := render(e)
	if p < min {
		return "(" + s + ")"
	}
	return s
}

func render(e *Expr) (string, int) {
	switch {
	case e.Col != nil:
		return ident(*e.Col), precAtom
	case e.Int != nil:
		if *e.Int < 0 {
			return strconv.FormatInt(*e.Int, 10), precNeg
		}
		return strconv.FormatInt(*e.Int, 10), precAtom
	case e.Float != nil:
		s := strconv.FormatFloat(*e.Float, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		if strings.HasPrefix(s, "-") {
			return s, precNeg
		}
		return s, precAtom
	case e.Str != nil:
		return sqlString(*e.Str), precAtom
	case e.Bool != nil:
		if *e.Bool {
			return "TRUE", precAtom
		}
		return "FALSE", precAtom
	case e.Date != nil:
		return "DATE " + sqlString(*e.Date), precAtom
	case e.Timestamp != nil:
		return "TIMESTAMP " + sqlString(*e.Timestamp), precAtom
	case e.Null != nil:
		if *e.Null == "" {
			return "NULL", precAtom
		}
		return "CAST(NULL AS " + sqlCastTypes[*e.Null] + ")", precAtom
	}
	args := e.Args
	if in, ok := infix[e.Op]; ok && len(args) == 2 {
		l, r := in.prec, in.prec+1
		if in.prec == precCmp {
			l = precAdd
			r = precAdd
		}
		return wrap(&args[0], l) + " " + in.sym + " " + wrap(&args[1], r), in.prec
	}
	list := func(from int, min int) string {
		parts := make([]string, 0, len(args))
		for i := from; i < len(args); i++ {
			parts = append(parts, wrap(&args[i], min))
		}
		return strings.Join(parts, ", ")
	}
	switch e.Op {
	case "and", "or":
		p, sym := precAnd, " AND "
		if e.Op == "or" {
			p, sym = precOr, " OR "
		}
		parts := make([]string, len(args))
		for i := range args {
			parts[i] = wrap(&args[i], p+1)
		}
		return strings.Join(parts, sym), p
	case "not":
		if len(args) == 1 {
			return "NOT " + wrap(&args[0], precNot), precNot
		}
	case "neg":
		if len(args) == 1 {
			s, p := render(&args[0])
			if p < precAtom || strings.HasPrefix(s, "-") {
				s = "(" + s + ")"
			}
			return "-" + s, precNeg
		}
	case "is_null", "is_not_null":
		if len(args) == 1 {
			s := " IS NULL"
			if e.Op == "is_not_null" {
				s = " IS NOT NULL"
			}
			return wrap(&args[0], precAdd) + s, precCmp
		}
	case "in":
		if len(args) >= 2 {
			return wrap(&args[0], precAdd) + " IN (" + list(1, 0) + ")", precCmp
		}
	case "between":
		if len(args) == 3 {
			return wrap(&args[0], precAdd) + " BETWEEN " + wrap(&args[1], precAdd) + " AND " + wrap(&args[2], precAdd), precCmp
		}
	case "case":
		var sb strings.Builder
		sb.WriteString("CASE")
		for i := 0; i+1 < len(args); i += 2 {
			sb.WriteString(" WHEN " + sqlText(&args[i]) + " THEN " + sqlText(&args[i+1]))
		}
		if len(args)%2 == 1 {
			sb.WriteString(" ELSE " + sqlText(&args[len(args)-1]))
		}
		sb.WriteString(" END")
		return sb.String(), precAtom
	case "cast":
		if len(args) == 1 {
			return "CAST(" + sqlText(&args[0]) + " AS " + sqlCastTypes[e.Type] + ")", precAtom
		}
	}
	return e.Op + "(" + list(0, 0) + ")", precAtom
}

// sqlString writes s as a MySQL string literal.
func sqlString(s string) string {
	var sb strings.Builder
	sb.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			sb.WriteString(`\'`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case 0:
			sb.WriteString(`\0`)
		case 0x1a:
			sb.WriteString(`\Z`)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('\'')
	return sb.String()
}
