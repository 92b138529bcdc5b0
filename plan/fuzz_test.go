package plan

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

var fuzzCols = []tcol{
	{"a", arrow.PrimitiveTypes.Int64, []any{1, nil, int64(math.MinInt64), 7, -3}},
	{"f", arrow.PrimitiveTypes.Float64, []any{2.5, -0.0, nil, math.Inf(1), 1e-300}},
	{"s", arrow.BinaryTypes.String, []any{"x", "", nil, "Ünï\x1f", "12"}},
	{"d", dictUTF8, []any{"p", "q", nil, "p", "r"}},
	{"b", arrow.FixedWidthTypes.Boolean, []any{true, nil, false, true, false}},
	{"t", tsUTC, []any{tsUS("2015-01-15T14:00:00Z"), nil, tsUS("1969-12-31T23:59:59.999Z"), tsUS("2000-02-29T00:00:00Z"), tsUS("1970-01-01T00:00:00Z")}},
	{"dt", arrow.FixedWidthTypes.Date32, []any{date("2015-01-15"), date("0001-01-01"), nil, date("9999-12-31"), date("1970-01-01")}},
}

var fuzzRecord = sync.OnceValue(func() arrow.RecordBatch { return record(memory.DefaultAllocator, fuzzCols) })

func expectSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, cove.ErrInvalid) && !errors.Is(err, cove.ErrLimit) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
}

// FuzzDecode: Decode never panics; a plan that compiles survives a round
// trip through its canonical form and evaluates without error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(minimalPlan))
	f.Add([]byte(goldenCanonical))
	f.Add([]byte(`{"version":1,"where":{"op":"gt","args":[{"col":"a"},{"float":1.5}]},"outputs":[{"name":"x","group_by":[{"col":"d"},{"op":"bucket","args":[{"col":"a"},{"int":2}]}],"value":{"col":"f"}}]}`))
	fields := fieldsOf(fuzzCols)
	f.Fuzz(func(t *testing.T, b []byte) {
		lit, err := Decode(b)
		if err != nil {
			expectSentinel(t, err)
			return
		}
		var specs []OutputSpec
		for _, o := range lit.Outputs {
			s := OutputSpec{Name: o.Name, UsesValue: o.Value != nil}
			for range o.GroupBy {
				s.GroupBy = append(s.GroupBy, GroupSpec{Private: true})
			}
			specs = append(specs, s)
		}
		p, err := Compile(lit, fields, specs)
		if err != nil {
			expectSentinel(t, err)
			return
		}
		lit2, err := Decode(p.Canonical())
		if err != nil {
			t.Fatalf("Decode(Canonical): %v\n%s", err, p.Canonical())
		}
		q, err := Compile(lit2, fields, specs)
		if err != nil {
			t.Fatalf("Compile(Decode(Canonical)): %v\n%s", err, p.Canonical())
		}
		if !bytes.Equal(p.Canonical(), q.Canonical()) || p.Text() != q.Text() {
			t.Fatalf("canonical form not stable:\n%s\n%s", p.Canonical(), q.Canonical())
		}
		if _, err := p.NewEvaluator().Batch(fuzzRecord()); err != nil {
			t.Fatalf("Batch: %v", err)
		}
	})
}

// FuzzParseExpr: ParseExpr never panics; an expression it reads renders as
// text that reads back the same, and one that compiles evaluates.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"`PM2.5` IS NOT NULL", "a + 1 > f * 2.5", "CASE WHEN b THEN s ELSE 'x' END", "d IN ('p', 'q')",
		"bucket(a, 10, -5)", "substr(s, -2, 1)", "year(t) BETWEEN 2013 AND 2017", "CAST(s AS DOUBLE)",
		"coalesce(f, a, 0)", "NOT (b OR a IS NULL)", "dayofweek(dt) = 1", "lower(d) = upper(s)",
	} {
		f.Add(s)
	}
	fields := fieldsOf(fuzzCols)
	f.Fuzz(func(t *testing.T, sql string) {
		e, err := ParseExpr(sql)
		if err != nil {
			expectSentinel(t, err)
			return
		}
		text := sqlText(&e)
		back, err := ParseExpr(text)
		if err != nil {
			t.Fatalf("ParseExpr(%q) read %s, whose text %q does not parse: %v", sql, exprJSON(e), text, err)
		}
		if a, b := exprJSON(normExpr(back)), exprJSON(normExpr(e)); a != b {
			t.Fatalf("ParseExpr(%q): text %q reads back as\n %s\nnot\n %s", sql, text, a, b)
		}
		lit := Literal{Version: 1, Outputs: []Output{{Name: "x", GroupBy: []Expr{e}}}}
		p, err := Compile(lit, fields, []OutputSpec{{Name: "x", GroupBy: []GroupSpec{{Private: true}}}})
		if err != nil {
			expectSentinel(t, err)
			return
		}
		if _, err := p.NewEvaluator().Batch(fuzzRecord()); err != nil {
			t.Fatalf("Batch: %v", err)
		}
	})
}
