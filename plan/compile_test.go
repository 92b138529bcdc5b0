package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

var airSchema = []Field{
	{Name: "station", Type: "dictionary<values=utf8, indices=int32, ordered=false>"},
	{Name: "year", Type: "int64"},
	{Name: "month", Type: "int8"},
	{Name: "PM2.5", Type: "float64"},
	{Name: "TEMP", Type: "float32"},
	{Name: "wd", Type: "utf8"},
	{Name: "rain", Type: "bool"},
	{Name: "day", Type: "date32"},
	{Name: "at", Type: "timestamp[us, tz=UTC]"},
	{Name: "blob", Type: "binary"},
}

var years = []string{"2013", "2014", "2015", "2016", "2017"}

// planOf builds a literal from SQL: derive is name=sql pairs.
func planOf(t *testing.T, where string, derive [][2]string, outs ...Output) Literal {
	t.Helper()
	lit := Literal{Version: 1, Outputs: outs}
	if where != "" {
		lit.Where = ptr(mustParse(t, where))
	}
	for _, d := range derive {
		lit.Derive = append(lit.Derive, Derived{Name: d[0], Expr: mustParse(t, d[1])})
	}
	return lit
}

func out(t *testing.T, name, where, value string, groupBy ...string) Output {
	t.Helper()
	o := Output{Name: name}
	if where != "" {
		o.Where = ptr(mustParse(t, where))
	}
	if value != "" {
		o.Value = ptr(mustParse(t, value))
	}
	for _, g := range groupBy {
		o.GroupBy = append(o.GroupBy, mustParse(t, g))
	}
	return o
}

func TestCompileReportsEveryProblem(t *testing.T) {
	lit := planOf(t, "`PM2.5` + 1",
		[][2]string{{"x", "wd + 1"}, {"year", "1"}, {"ok", "month * 2"}, {"later", "after + 1"}, {"after", "1"}},
		out(t, "pm25_mean", "", "`PM2.5`", "station", "yaer"),
		out(t, "hours_mean", "", "", "station"),
		out(t, "rainy", "rain = 'yes'", "wd", "station"),
		out(t, "nope", "", "", "station"),
	)
	specs := []OutputSpec{
		{Name: "pm25_mean", Aggregate: "mean", UsesValue: true, GroupBy: []GroupSpec{{Values: []string{"Dongsi"}}, {Values: years}}},
		{Name: "hours_mean", Aggregate: "mean", UsesValue: true, GroupBy: []GroupSpec{{Values: []string{"Dongsi"}}}},
		{Name: "rainy", Aggregate: "sum", UsesValue: true, GroupBy: []GroupSpec{{Private: true}}},
		{Name: "missing", Aggregate: "count", GroupBy: []GroupSpec{{Private: true}}},
	}
	_, err := Compile(lit, airSchema, specs)
	if err == nil {
		t.Fatal("Compile accepted a broken plan")
	}
	if !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("error does not wrap ErrInvalid: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`plan: where: expression is float64, it must be bool`,
		`plan: derive[0] (x): add of string and int64`,
		`plan: derive[1] (year): derived name "year" is a column of the dataset`,
		`plan: derive[3] (later): column "after" is derive[4], defined later`,
		`plan: outputs[0] (pm25_mean): group_by[1]: column "yaer" does not exist (columns: station, year, month, PM2.5, TEMP, wd, rain, day, at, blob, x, ok, later, after)`,
		`plan: outputs[1] (hours_mean): value is required for mean`,
		`plan: outputs[2] (rainy): where: eq of bool and string`,
		`plan: outputs[2] (rainy): value: value is string, it must be numeric or bool`,
		`plan: outputs[3] (nope): not an output the manifest declares (declared: pm25_mean, hours_mean, rainy, missing)`,
		`plan: output "missing" is declared in the manifest but the plan has no entry for it`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 10 {
		t.Errorf("%d problems reported, want 10:\n%s", n, msg)
	}
}

func TestCompileErrors(t *testing.T) {
	one := func(expr string) []OutputSpec {
		return []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Private: true}}}}
	}
	for _, tc := range []struct {
		name  string
		lit   func(t *testing.T) Literal
		specs []OutputSpec
		msg   string
		err   error
	}{
		{name: "unreadable column type", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "blob")) },
			msg: `column "blob" has type binary, which a plan cannot read`},
		{name: "and of int", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "year AND rain", "", "station")) },
			msg: "and of int64 and bool"},
		{name: "not of string", lit: func(t *testing.T) Literal { return planOf(t, "NOT wd", nil, out(t, "o", "", "", "station")) },
			msg: "not of string"},
		{name: "compare string and int", lit: func(t *testing.T) Literal { return planOf(t, "wd = 1", nil, out(t, "o", "", "", "station")) },
			msg: "eq of string and int64"},
		{name: "compare bool and int", lit: func(t *testing.T) Literal { return planOf(t, "rain < 1", nil, out(t, "o", "", "", "station")) },
			msg: "lt of bool and int64"},
		{name: "case branches", lit: func(t *testing.T) Literal {
			return planOf(t, "", nil, out(t, "o", "", "", "CASE WHEN rain THEN 1 ELSE 'x' END"))
		}, msg: "case of int64 and string"},
		{name: "case condition", lit: func(t *testing.T) Literal {
			return planOf(t, "", nil, out(t, "o", "", "", "CASE WHEN year THEN 1 END"))
		}, msg: "case: a condition is int64, it must be bool"},
		{name: "in types", lit: func(t *testing.T) Literal { return planOf(t, "year IN (1, 'x')", nil, out(t, "o", "", "", "station")) },
			msg: "in of int64, int64 and string"},
		{name: "between types", lit: func(t *testing.T) Literal {
			return planOf(t, "wd BETWEEN 1 AND 2", nil, out(t, "o", "", "", "station"))
		}, msg: "between of string, int64 and int64"},
		{name: "date literal", lit: func(t *testing.T) Literal {
			return planOf(t, "day < '2015-13-45'", nil, out(t, "o", "", "", "station"))
		},
			msg: `"2015-13-45" is not a date`},
		{name: "cast", lit: func(t *testing.T) Literal {
			return planOf(t, "", nil, out(t, "o", "", "", "CAST(day AS SIGNED)"))
		}, msg: "cast of date to int64"},
		{name: "date part of int", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "year(year)")) },
			msg: "year of int64"},
		{name: "string op of int", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "lower(year)")) },
			msg: "lower of int64"},
		{name: "substr start", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "substr(wd, 1.5)")) },
			msg: "substr of string and float64"},
		{name: "round digits", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "round(`PM2.5`, 1.5)")) },
			msg: "round of float64 and float64"},
		{name: "group by NULL", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "NULL")) },
			msg: "group_by[0]: expression has no type"},
		{name: "derived NULL", lit: func(t *testing.T) Literal {
			return planOf(t, "", [][2]string{{"n", "NULL"}}, out(t, "o", "", "", "station"))
		},
			msg: "derive[0] (n): expression has no type"},
		{name: "self reference", lit: func(t *testing.T) Literal {
			return planOf(t, "", [][2]string{{"n", "n + 1"}}, out(t, "o", "", "", "station"))
		},
			msg: `derived column "n" refers to itself`},
		{name: "duplicate derived", lit: func(t *testing.T) Literal {
			return planOf(t, "", [][2]string{{"n", "1"}, {"n", "2"}}, out(t, "o", "", "", "station"))
		}, msg: `derived name "n" is also derive[0]`},
		{name: "empty derived name", lit: func(t *testing.T) Literal {
			return planOf(t, "", [][2]string{{"", "1"}}, out(t, "o", "", "", "station"))
		},
			msg: "a derived column needs a name"},
		{name: "unknown op", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{opExpr("frob", colExpr("year"))}}}}
		}, msg: `unknown op "frob"`},
		{name: "arity", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{opExpr("add", colExpr("year"))}}}}
		}, msg: "add takes 2 arguments, not 1"},
		{name: "arity range", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{opExpr("substr", colExpr("wd"))}}}}
		}, msg: "substr takes 2 or 3 arguments, not 1"},
		{name: "arity minimum", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{opExpr("least", colExpr("year"))}}}}
		}, msg: "least takes at least 2 arguments, not 1"},
		{name: "in of a column", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{opExpr("in", colExpr("year"), colExpr("month"))}}}}
		}, msg: "in: args[1] is not a literal"},
		{name: "cast type", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{{Op: "cast", Args: []Expr{colExpr("year")}, Type: "decimal"}}}}}
		}, msg: `cast to unknown type "decimal"`},
		{name: "null type", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{nullExpr("uint8")}}}}
		}, msg: `null of unknown type "uint8"`},
		{name: "bad timestamp", lit: func(t *testing.T) Literal {
			s := "2300-01-01T00:00:00Z"
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{{Timestamp: &s}}}}}
		}, msg: "is not RFC 3339 within 1677–2262"},
		{name: "invalid utf-8", lit: func(t *testing.T) Literal {
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{strExpr("\xff")}}}}
		}, msg: "string literal is not valid UTF-8"},
		{name: "group_by count", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "station", "year")) },
			msg: "2 group_by expressions, but the manifest's output has 1 group_by parts"},
		{name: "value for a count", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "year", "station")) },
			specs: []OutputSpec{{Name: "o", Aggregate: "count", GroupBy: []GroupSpec{{Private: true}}}}, msg: "count takes no value"},
		{name: "duplicate output", lit: func(t *testing.T) Literal {
			return planOf(t, "", nil, out(t, "o", "", "", "station"), out(t, "o", "", "", "station"))
		}, msg: `output "o" appears twice`},
		{name: "public value not an int key", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "year")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Values: []string{"2013", "2014.0", "x"}}}}},
			msg:   `value "2014.0" and 1 more are not keys of type int64 (decimal, as 2015)`},
		{name: "public value not a float key", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "`PM2.5`")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Values: []string{"2.50"}}}}},
			msg:   `value "2.50" is not a key of type float64`},
		{name: "public value not a bool key", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "rain")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Values: []string{"yes"}}}}},
			msg:   `value "yes" is not a key of type bool`},
		{name: "public value not a date key", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "day")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Values: []string{"2015-1-1"}}}}},
			msg:   `value "2015-1-1" is not a key of type date`},
		{name: "no public values", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "year")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{}}}}, msg: "the manifest lists no public values"},
		{name: "private with values", lit: func(t *testing.T) Literal { return planOf(t, "", nil, out(t, "o", "", "", "year")) },
			specs: []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Private: true, Values: []string{"1"}}}}}, msg: "a private part lists no public values"},
		{name: "version", lit: func(t *testing.T) Literal {
			l := planOf(t, "", nil, out(t, "o", "", "", "year"))
			l.Version = 0
			return l
		},
			msg: "version 0, want 1"},
		{name: "too deep", lit: func(t *testing.T) Literal {
			e := colExpr("year")
			for range MaxDepth {
				e = opExpr("abs", e)
			}
			return Literal{Version: 1, Outputs: []Output{{Name: "o", GroupBy: []Expr{e}}}}
		}, msg: "plan: outputs[0] (o): group_by[0]: expression deeper than 32", err: cove.ErrLimit},
		{name: "too many nodes", lit: func(t *testing.T) Literal {
			wide := "least(" + strings.Repeat("year, ", 299) + "year)"
			return planOf(t, "", [][2]string{{"a", wide}, {"b", wide}}, out(t, "o", "", "", "a"))
		}, msg: "603 expression nodes, the limit is 512", err: cove.ErrLimit},
		{name: "long in list", lit: func(t *testing.T) Literal {
			args := []Expr{colExpr("year")}
			for i := range MaxInList + 1 {
				args = append(args, intExpr(int64(i)))
			}
			return Literal{Version: 1, Where: ptr(opExpr("in", args...)), Outputs: []Output{{Name: "o", GroupBy: []Expr{colExpr("year")}}}}
		}, msg: "an in list of 10001 literals, the limit is 10000", err: cove.ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := tc.specs
			if specs == nil {
				specs = one("")
			}
			_, err := Compile(tc.lit(t), airSchema, specs)
			want := tc.err
			if want == nil {
				want = cove.ErrInvalid
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Compile: %v\nwant an error wrapping %v saying %q", err, want, tc.msg)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, tc := range []struct{ name, where, group string }{
		{"int and float mix", "year > `PM2.5` AND month * 1.5 < 10", "station"},
		{"date and timestamp mix", "day < at AND at >= '2015-01-01' AND day BETWEEN '2014-01-01' AND DATE '2016-01-01'", "station"},
		{"null anywhere", "NULL AND rain OR `PM2.5` + NULL > 1 OR coalesce(NULL, rain)", "CASE WHEN rain THEN NULL ELSE year END"},
		{"string literal grouping", "TRUE", "'all'"},
		{"dictionary ops", "lower(station) IN ('dongsi', 'tiantan')", "substr(station, 1, 3)"},
		{"bool group", "TRUE", "`PM2.5` > 75"},
		{"float32 and int8", "TEMP > month", "bucket(TEMP, 5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lit := planOf(t, tc.where, nil, out(t, "o", "", "", tc.group))
			p, err := Compile(lit, airSchema, []OutputSpec{{Name: "o", GroupBy: []GroupSpec{{Private: true}}}})
			if err != nil {
				t.Fatal(err)
			}
			if p.Text() == "" || len(p.Canonical()) == 0 {
				t.Fatal("empty rendering")
			}
		})
	}
}
