package plan

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
)

var tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// semCols are five rows covering nulls and edge values.
var semCols = []tcol{
	{"i", arrow.PrimitiveTypes.Int64, []any{1, -7, nil, int64(math.MaxInt64), int64(math.MinInt64)}},
	{"j", arrow.PrimitiveTypes.Int64, []any{2, 0, 5, 1, -1}},
	{"f", arrow.PrimitiveTypes.Float64, []any{2.5, -0.5, nil, math.NaN(), 1e308}},
	{"g", arrow.PrimitiveTypes.Float64, []any{0.5, 0.0, 1.0, 2.0, 10.0}},
	{"s", arrow.BinaryTypes.String, []any{"Dongsi", "a\x1fb", nil, "", "Ünï"}},
	{"d", dictUTF8, []any{"x", "y", nil, "x", "Zz"}},
	{"b", arrow.FixedWidthTypes.Boolean, []any{true, false, nil, true, false}},
	{"dt", arrow.FixedWidthTypes.Date32, []any{date("2015-01-15"), date("1970-01-01"), nil, date("1969-12-31"), date("2000-02-29")}},
	{"ts", tsUTC, []any{tsUS("2015-01-15T14:05:09Z"), tsUS("1970-01-01T00:00:00.5Z"), nil, tsUS("1969-12-31T23:59:59Z"), tsUS("2000-02-29T23:00:00.25Z")}},
	{"n8", arrow.PrimitiveTypes.Int8, []any{-128, 127, nil, 0, 5}},
	{"f32", arrow.PrimitiveTypes.Float32, []any{1.5, nil, 0.0, -2.0, 3.0}},
	{"ls", arrow.BinaryTypes.LargeString, []any{"abc", nil, "AbC", "", "x"}},
}

func TestSemantics(t *testing.T) {
	mem := checked(t)
	rec := record(mem, semCols)
	defer rec.Release()
	fields := fieldsOf(semCols)
	N := "NULL"
	for _, tc := range []struct {
		name string
		sql  string
		want []string
	}{
		{"column int", "i", []string{"1", "-7", N, "9223372036854775807", "-9223372036854775808"}},
		{"column float NaN is null", "f", []string{"2.5", "-0.5", N, N, "1e+308"}},
		{"column string separator", "s", []string{"Dongsi", "a\uFFFDb", N, "", "Ünï"}},
		{"column dictionary", "d", []string{"x", "y", N, "x", "Zz"}},
		{"column bool", "b", []string{"true", "false", N, "true", "false"}},
		{"column date", "dt", []string{"2015-01-15", "1970-01-01", N, "1969-12-31", "2000-02-29"}},
		{"column timestamp", "ts", []string{"2015-01-15T14:05:09Z", "1970-01-01T00:00:00.5Z", N, "1969-12-31T23:59:59Z", "2000-02-29T23:00:00.25Z"}},
		{"column int8 widened", "n8", []string{"-128", "127", N, "0", "5"}},
		{"column float32 widened", "f32", []string{"1.5", N, "0", "-2", "3"}},
		{"column large_utf8", "ls", []string{"abc", N, "AbC", "", "x"}},

		{"add overflow", "i + j", []string{"3", "-7", N, N, N}},
		{"sub", "i - j", []string{"-1", "-7", N, "9223372036854775806", "-9223372036854775807"}},
		{"sub overflow", "i - 1", []string{"0", "-8", N, "9223372036854775806", N}},
		{"mul overflow", "i * j", []string{"2", "0", N, "9223372036854775807", N}},
		{"mul min", "i * 2", []string{"2", "-14", N, N, N}},
		{"div is float, by zero null", "i / j", []string{"0.5", N, N, "9.223372036854776e+18", "9.223372036854776e+18"}},
		{"mod by zero null", "i % j", []string{"1", N, N, "0", "0"}},
		{"mod keyword", "i MOD 4", []string{"1", "-3", N, "3", "0"}},
		{"neg min null", "-i", []string{"-1", "7", N, "-9223372036854775807", N}},
		{"int plus float", "i + g", []string{"1.5", "-7", N, "9.223372036854776e+18", "-9.223372036854776e+18"}},
		{"float div by zero", "f / g", []string{"5", N, N, N, "1e+307"}},
		{"float overflow", "f * 10", []string{"25", "-5", N, N, N}},
		{"float mod", "f % 2", []string{"0.5", "-0.5", N, N, "0"}},
		{"float mod zero", "f % 0", []string{N, N, N, N, N}},

		{"lt int", "i < j", []string{"true", "true", N, "false", "true"}},
		{"ge mixed", "i >= g", []string{"true", "false", N, "true", "false"}},
		{"eq string", "s = 'Dongsi'", []string{"true", "false", N, "false", "false"}},
		{"ne dictionary", "d <> 'x'", []string{"false", "true", N, "false", "true"}},
		{"lt dictionary", "d < 'y'", []string{"true", "false", N, "true", "true"}},
		{"eq bool", "b = TRUE", []string{"true", "false", N, "true", "false"}},
		{"date vs string literal", "dt < '2000-01-01'", []string{"false", "true", N, "true", "false"}},
		{"date vs date literal", "dt = DATE '1970-01-01'", []string{"false", "true", N, "false", "false"}},
		{"timestamp vs literal", "ts >= TIMESTAMP '2000-02-29 23:00:00.25'", []string{"true", "false", N, "false", "true"}},
		{"date vs timestamp", "dt <= ts", []string{"true", "true", N, "true", "true"}},
		{"zero and minus zero", "f * 0 = 0", []string{"true", "true", N, N, "true"}},

		{"and kleene", "b AND NULL", []string{N, "false", N, N, "false"}},
		{"or kleene", "b OR NULL", []string{"true", N, N, "true", N}},
		{"and null operand", "b AND i > 0", []string{"true", "false", N, "true", "false"}},
		{"or three", "b OR i > 0 OR j = 5", []string{"true", "false", "true", "true", "false"}},
		{"not", "NOT b", []string{"false", "true", N, "false", "true"}},
		{"bang", "!b", []string{"false", "true", N, "false", "true"}},
		{"is null", "f IS NULL", []string{"false", "false", "true", "true", "false"}},
		{"is not null dictionary", "d IS NOT NULL", []string{"true", "true", "false", "true", "true"}},
		{"is true", "b IS TRUE", []string{"true", "false", "false", "true", "false"}},
		{"is not false", "b IS NOT FALSE", []string{"true", "false", "true", "true", "false"}},
		{"is null of null", "NULL IS NULL", []string{"true", "true", "true", "true", "true"}},

		{"in ints", "j IN (1, 5, 7)", []string{"false", "false", "true", "true", "false"}},
		{"in many ints", "j IN (1, 5, 7, 8, 9, 10, 11, 12, 13, 14)", []string{"false", "false", "true", "true", "false"}},
		{"in with null", "j IN (1, NULL)", []string{N, N, N, "true", N}},
		{"not in", "j NOT IN (1, 5)", []string{"true", "true", "false", "false", "true"}},
		{"in floats", "g IN (0.5, 2, -0.0)", []string{"true", "true", "false", "true", "false"}},
		{"in dictionary", "d IN ('x', 'Zz')", []string{"true", "false", N, "true", "true"}},
		{"in strings", "s IN ('', 'Dongsi')", []string{"true", "false", N, "true", "false"}},
		{"in bools", "b IN (FALSE)", []string{"false", "true", N, "false", "true"}},
		{"in dates", "dt IN ('1970-01-01', DATE '2000-02-29')", []string{"false", "true", N, "false", "true"}},
		{"between", "j BETWEEN 0 AND 2", []string{"true", "true", "false", "true", "false"}},
		{"not between", "j NOT BETWEEN 0 AND 2", []string{"false", "false", "true", "false", "true"}},
		{"between null bound", "j BETWEEN NULL AND 1", []string{"false", N, "false", N, N}},

		{"case", "CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' END", []string{"pos", "neg", N, "pos", "neg"}},
		{"case else", "CASE WHEN b THEN 1 ELSE 2.5 END", []string{"1", "2.5", "2.5", "1", "2.5"}},
		{"case operand", "CASE j WHEN 0 THEN 'zero' WHEN 5 THEN 'five' ELSE 'other' END", []string{"other", "zero", "five", "other", "other"}},
		{"case null branch", "CASE WHEN b THEN NULL ELSE j END", []string{N, "0", "5", N, "-1"}},
		{"if", "if(b, 'y', 'n')", []string{"y", "n", "n", "y", "n"}},
		{"coalesce", "coalesce(f, g)", []string{"2.5", "-0.5", "1", "2", "1e+308"}},
		{"coalesce three", "coalesce(NULL, s, 'none')", []string{"Dongsi", "a\uFFFDb", "none", "", "Ünï"}},
		{"ifnull", "ifnull(i, 0)", []string{"1", "-7", "0", "9223372036854775807", "-9223372036854775808"}},

		{"cast float to int rounds", "CAST(f AS SIGNED)", []string{"3", "-1", N, N, N}},
		{"cast int to float", "CAST(j AS DOUBLE)", []string{"2", "0", "5", "1", "-1"}},
		{"cast int to string", "CAST(i AS CHAR)", []string{"1", "-7", N, "9223372036854775807", "-9223372036854775808"}},
		{"cast float to string", "CAST(g AS CHAR)", []string{"0.5", "0", "1", "2", "10"}},
		{"cast string to int", "CAST(CAST(j AS CHAR) AS SIGNED) + 1", []string{"3", "1", "6", "2", "0"}},
		{"cast bad string", "CAST(s AS DOUBLE)", []string{N, N, N, N, N}},
		{"cast string to date", "CAST('2015-01-15' AS DATE)", []string{"2015-01-15", "2015-01-15", "2015-01-15", "2015-01-15", "2015-01-15"}},
		{"cast dictionary to date", "CAST(d AS DATE)", []string{N, N, N, N, N}},
		{"cast date to timestamp", "CAST(dt AS DATETIME)", []string{"2015-01-15T00:00:00Z", "1970-01-01T00:00:00Z", N, "1969-12-31T00:00:00Z", "2000-02-29T00:00:00Z"}},
		{"cast timestamp to date", "CAST(ts AS DATE)", []string{"2015-01-15", "1970-01-01", N, "1969-12-31", "2000-02-29"}},
		{"date function", "date(ts)", []string{"2015-01-15", "1970-01-01", N, "1969-12-31", "2000-02-29"}},
		{"cast bool to string", "CAST(b AS CHAR)", []string{"true", "false", N, "true", "false"}},
		{"cast date to string", "CAST(dt AS CHAR)", []string{"2015-01-15", "1970-01-01", N, "1969-12-31", "2000-02-29"}},
		{"typed null", "CAST(NULL AS SIGNED)", []string{N, N, N, N, N}},

		{"abs int min", "abs(i)", []string{"1", "7", N, "9223372036854775807", N}},
		{"abs float", "abs(f)", []string{"2.5", "0.5", N, N, "1e+308"}},
		{"floor", "floor(f)", []string{"2", "-1", N, N, "1e+308"}},
		{"ceil int is int", "ceil(j)", []string{"2", "0", "5", "1", "-1"}},
		{"ceiling", "ceiling(f)", []string{"3", "0", N, N, "1e+308"}},
		{"round half away", "round(f)", []string{"3", "-1", N, N, "1e+308"}},
		{"round digits", "round(g * 1.234, 2)", []string{"0.62", "0", "1.23", "2.47", "12.34"}},
		{"round int negative digits", "round(i, -1)", []string{"0", "-10", N, N, N}},
		{"round huge digits", "round(g, 400) + round(g, -400)", []string{"0.5", "0", "1", "2", "10"}},
		{"sqrt negative null", "sqrt(f)", []string{"1.5811388300841898", N, N, N, "1e+154"}},
		{"exp overflow null", "exp(g * 100)", []string{"5.184705528587072e+21", "1", "2.6881171418161356e+43", "7.225973768125749e+86", N}},
		{"log non-positive null", "ln(g)", []string{"-0.6931471805599453", N, "0", "0.6931471805599453", "2.302585092994046"}},
		{"pow", "pow(g, 2)", []string{"0.25", "0", "1", "4", "100"}},
		{"power overflow", "power(f, 2)", []string{"6.25", "0.25", N, N, N}},
		{"least", "least(i, j)", []string{"1", "-7", N, "1", "-9223372036854775808"}},
		{"greatest strings", "greatest(s, 'b')", []string{"b", "b", N, "b", "Ünï"}},

		{"length characters", "length(s)", []string{"6", "3", N, "0", "3"}},
		{"char_length dictionary", "char_length(d)", []string{"1", "1", N, "1", "2"}},
		{"lower", "lower(s)", []string{"dongsi", "a\uFFFDb", N, "", "ünï"}},
		{"upper dictionary", "upper(d)", []string{"X", "Y", N, "X", "ZZ"}},
		{"substr", "substr(s, 2, 3)", []string{"ong", "\uFFFDb", N, "", "nï"}},
		{"substring from", "substring(s, 4)", []string{"gsi", "", N, "", ""}},
		{"substr negative start", "substr(s, -2)", []string{"si", "\uFFFDb", N, "", "nï"}},
		{"substr zero start", "substr(s, 0, 2)", []string{"", "", N, "", ""}},
		{"substr from for", "substring(s FROM 1 FOR 1)", []string{"D", "a", N, "", "Ü"}},
		{"prefix", "starts_with(s, 'Do')", []string{"true", "false", N, "false", "false"}},
		{"contains dictionary", "contains(d, 'z')", []string{"false", "false", N, "false", "true"}},
		{"dictionary and column", "d = lower(s)", []string{"false", "false", N, "false", "false"}},

		{"year", "year(dt)", []string{"2015", "1970", N, "1969", "2000"}},
		{"month", "month(ts)", []string{"1", "1", N, "12", "2"}},
		{"day", "dayofmonth(dt)", []string{"15", "1", N, "31", "29"}},
		{"hour", "hour(ts)", []string{"14", "0", N, "23", "23"}},
		{"minute", "minute(ts)", []string{"5", "0", N, "59", "0"}},
		{"second", "second(ts)", []string{"9", "0", N, "59", "0"}},
		{"hour of date", "hour(dt)", []string{"0", "0", N, "0", "0"}},
		{"dow sunday zero", "dow(dt)", []string{"4", "4", N, "3", "2"}},
		{"dayofweek mysql", "dayofweek(dt)", []string{"5", "5", N, "4", "3"}},
		{"doy", "dayofyear(ts)", []string{"15", "1", N, "365", "60"}},
		{"extract", "extract(year from ts)", []string{"2015", "1970", N, "1969", "2000"}},

		{"bucket int", "bucket(i, 5)", []string{"0", "-10", N, "9223372036854775805", N}},
		{"bucket origin", "bucket(j, 2, 1)", []string{"1", "-1", "5", "1", "-1"}},
		{"bucket float", "bucket(g, 0.5)", []string{"0.5", "0", "1", "2", "10"}},
		{"bucket zero width", "bucket(j, 0)", []string{N, N, N, N, N}},
		{"bucket mixed", "bucket(f, 2)", []string{"2", "-2", N, N, "1e+308"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := keysOf(t, rec, fields, tc.sql)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s:\n got  %q\n want %q", tc.sql, got, tc.want)
			}
		})
	}
}

// TestNoDataErrors runs anomalous values through every kind of op: Batch
// never fails on data.
func TestNoDataErrors(t *testing.T) {
	mem := checked(t)
	cols := []tcol{
		{"i", arrow.PrimitiveTypes.Int64, []any{int64(math.MinInt64), int64(math.MaxInt64), 0, -1, nil}},
		{"f", arrow.PrimitiveTypes.Float64, []any{math.Inf(1), math.Inf(-1), math.NaN(), -0.0, nil}},
		{"s", arrow.BinaryTypes.String, []any{"\xff\xfe", "NaN", "Inf", "1e999", nil}},
	}
	rec := record(mem, cols)
	defer rec.Release()
	exprs := []string{
		"i / 0", "i % 0", "i * i", "-i", "abs(i)", "i + i", "i - i", "round(i, -30)", "round(i, -18)",
		"bucket(i, 3, i)", "bucket(i, -1)", "f / 0", "sqrt(f)", "ln(f)", "exp(f)", "pow(f, f)",
		"CAST(s AS DOUBLE)", "CAST(s AS SIGNED)", "CAST(s AS DATE)", "CAST(s AS DATETIME)",
		"CAST(f AS SIGNED)", "CAST(i AS DOUBLE) * 1e300", "substr(s, i, i)", "substr(s, -9223372036854775808)",
		"lower(s)", "length(s)", "round(f, i)", "round(i * 1.0, 400)",
	}
	for _, sql := range exprs {
		got := keysOf(t, rec, fieldsOf(cols), sql)
		if len(got) != 5 {
			t.Errorf("%s: %d rows", sql, len(got))
		}
	}
}

func TestPublicGroups(t *testing.T) {
	mem := checked(t)
	cols := []tcol{
		{"station", dictUTF8, []any{"A", "B", "C", nil, "A", "B", "A"}},
		{"year", arrow.PrimitiveTypes.Int64, []any{2013, 2014, 2013, 2013, nil, 2099, 2014}},
		{"pm", arrow.PrimitiveTypes.Float64, []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0, nil}},
		{"big", arrow.PrimitiveTypes.Int64, []any{1, 1 << 40, -5, 1, 1, 1, 1}},
		{"flag", arrow.FixedWidthTypes.Boolean, []any{true, false, true, true, true, true, false}},
		{"name", arrow.BinaryTypes.String, []any{"a\x1fb", "x", "y", "x", "x", "x", "x"}},
		{"day", arrow.FixedWidthTypes.Date32, []any{date("2015-01-01"), date("2015-01-02"), nil, date("2015-01-01"), date("2015-01-01"), date("2015-01-01"), date("2015-01-01")}},
		{"ratio", arrow.PrimitiveTypes.Float64, []any{-0.0, 0.5, 2.0, 0.5, 0.5, 0.5, 0.5}},
	}
	rec := record(mem, cols)
	defer rec.Release()
	fields := fieldsOf(cols)
	for _, tc := range []struct {
		name    string
		groupBy []string
		values  [][]string
		where   string
		value   string
		want    []int32
		vals    []float64
	}{
		{name: "dictionary × int, row-major", groupBy: []string{"station", "year"},
			values: [][]string{{"A", "B"}, {"2013", "2014"}}, value: "pm",
			want: []int32{0, 3, -1, -1, -1, -1, -1}, vals: []float64{1, 2}},
		{name: "where", groupBy: []string{"station"}, values: [][]string{{"A", "B", "C"}}, where: "year = 2013",
			want: []int32{0, -1, 2, -1, -1, -1, -1}},
		{name: "sparse int (map)", groupBy: []string{"big"}, values: [][]string{{"1", "1099511627776"}},
			want: []int32{0, 1, -1, 0, 0, 0, 0}},
		{name: "bool", groupBy: []string{"flag"}, values: [][]string{{"false", "true"}},
			want: []int32{1, 0, 1, 1, 1, 1, 0}},
		{name: "string with separator", groupBy: []string{"name"}, values: [][]string{{"a\uFFFDb", "y"}},
			want: []int32{0, -1, 1, -1, -1, -1, -1}},
		{name: "date", groupBy: []string{"day"}, values: [][]string{{"2015-01-02", "2015-01-01"}},
			want: []int32{1, 0, -1, 1, 1, 1, 1}},
		{name: "float, -0 is 0", groupBy: []string{"ratio"}, values: [][]string{{"0", "0.5"}},
			want: []int32{0, 1, -1, 1, 1, 1, 1}},
		{name: "expression over dictionary", groupBy: []string{"lower(station)"}, values: [][]string{{"a", "c"}},
			want: []int32{0, -1, 1, -1, 0, -1, 0}},
		{name: "derived-like expression", groupBy: []string{"year - 2013", "station"}, values: [][]string{{"0", "1"}, {"A", "B"}},
			want: []int32{0, 3, -1, -1, -1, -1, 2}},
		{name: "value null drops row", groupBy: []string{"station"}, values: [][]string{{"A"}}, value: "pm",
			want: []int32{0, -1, -1, -1, 0, -1, -1}, vals: []float64{1, 5}},
		{name: "int value", groupBy: []string{"station"}, values: [][]string{{"B"}}, value: "year",
			want: []int32{-1, 0, -1, -1, -1, 0, -1}, vals: []float64{2014, 2099}},
		{name: "bool value", groupBy: []string{"station"}, values: [][]string{{"A"}}, value: "flag",
			want: []int32{0, -1, -1, -1, 0, -1, 0}, vals: []float64{1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Output{Name: "o"}
			spec := OutputSpec{Name: "o", UsesValue: tc.value != ""}
			for k, g := range tc.groupBy {
				o.GroupBy = append(o.GroupBy, mustParse(t, g))
				spec.GroupBy = append(spec.GroupBy, GroupSpec{Values: tc.values[k]})
			}
			if tc.where != "" {
				o.Where = ptr(mustParse(t, tc.where))
			}
			if tc.value != "" {
				o.Value = ptr(mustParse(t, tc.value))
			}
			p, err := Compile(Literal{Version: 1, Outputs: []Output{o}}, fields, []OutputSpec{spec})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := p.NewEvaluator().Batch(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outs[0].Part, tc.want) {
				t.Errorf("Part %v, want %v", outs[0].Part, tc.want)
			}
			if tc.value == "" {
				if outs[0].Value != nil {
					t.Errorf("Value %v for a count", outs[0].Value)
				}
				return
			}
			var vals []float64
			for k, pt := range outs[0].Part {
				if pt >= 0 {
					vals = append(vals, outs[0].Value[k])
				}
			}
			if !slices.Equal(vals, tc.vals) {
				t.Errorf("values %v, want %v", vals, tc.vals)
			}
		})
	}
}

// TestSlicedArrays evaluates columns whose arrays have an offset, and
// batches larger than a chunk.
func TestSlicedArrays(t *testing.T) {
	mem := checked(t)
	const rows = 3*chunkRows + 77
	var st, ys, pm, s []any
	for k := range rows + 5 {
		st = append(st, []string{"A", "B", "C"}[k%3])
		if k%7 == 0 {
			ys = append(ys, nil)
		} else {
			ys = append(ys, 2013+k%4)
		}
		if k%11 == 0 {
			pm = append(pm, nil)
		} else {
			pm = append(pm, float64(k))
		}
		s = append(s, []string{"x", "yy", "zzz"}[k%3])
	}
	cols := []tcol{{"station", dictUTF8, st}, {"year", arrow.PrimitiveTypes.Int64, ys}, {"pm", arrow.PrimitiveTypes.Float64, pm}, {"s", arrow.BinaryTypes.String, s}}
	full := record(mem, cols)
	defer full.Release()
	for _, off := range []int64{0, 3, 5} {
		rec := full.NewSlice(off, off+rows)
		lit := Literal{Version: 1, Where: ptr(mustParse(t, "pm IS NOT NULL AND length(s) >= 2")), Outputs: []Output{
			{Name: "o", GroupBy: []Expr{mustParse(t, "station"), mustParse(t, "year")}, Value: ptr(mustParse(t, "pm"))},
			{Name: "k", GroupBy: []Expr{mustParse(t, "s"), mustParse(t, "year")}},
		}}
		p, err := Compile(lit, fieldsOf(cols), []OutputSpec{
			{Name: "o", UsesValue: true, GroupBy: []GroupSpec{{Values: []string{"A", "B", "C"}}, {Values: []string{"2013", "2014", "2015", "2016"}}}},
			{Name: "k", GroupBy: []GroupSpec{{Private: true}, {Private: true}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := p.NewEvaluator().Batch(rec)
		if err != nil {
			t.Fatal(err)
		}
		for r := range rows {
			k := int(off) + r
			wantPart := int32(-1)
			keep := ys[k] != nil && pm[k] != nil && k%3 != 0
			if keep {
				wantPart = int32(k%3)*4 + int32(ys[k].(int)-2013)
			}
			if outs[0].Part[r] != wantPart {
				t.Fatalf("offset %d row %d: part %d, want %d", off, r, outs[0].Part[r], wantPart)
			}
			if keep && outs[0].Value[r] != pm[k].(float64) {
				t.Fatalf("offset %d row %d: value %v, want %v", off, r, outs[0].Value[r], pm[k])
			}
			pk := outs[1].Part[r]
			if !keep {
				if pk != -1 {
					t.Fatalf("offset %d row %d: private part %d, want -1", off, r, pk)
				}
				continue
			}
			want := s[k].(string) + "\x1f" + formatInt(int64(ys[k].(int)))
			if got := outs[1].Keys[pk]; got != want {
				t.Fatalf("offset %d row %d: key %q, want %q", off, r, got, want)
			}
		}
		rec.Release()
	}
}

func TestPrivateKeys(t *testing.T) {
	mem := checked(t)
	cols := []tcol{
		{"station", dictUTF8, []any{"B", "A", "B", nil, "A", "C"}},
		{"year", arrow.PrimitiveTypes.Int64, []any{2013, 2014, 2013, 2013, 2014, 2015}},
		{"pm", arrow.PrimitiveTypes.Float64, []any{1.0, 2.0, 3.0, 4.0, 5.0, nil}},
		{"s", arrow.BinaryTypes.String, []any{"p", "q", "p", "q", "r", "s"}},
	}
	rec := record(mem, cols)
	defer rec.Release()
	lit := Literal{Version: 1, Outputs: []Output{
		{Name: "one", GroupBy: []Expr{mustParse(t, "station")}, Value: ptr(mustParse(t, "pm"))},
		{Name: "two", GroupBy: []Expr{mustParse(t, "station"), mustParse(t, "year")}},
		{Name: "three", GroupBy: []Expr{mustParse(t, "s"), mustParse(t, "year"), mustParse(t, "pm > 2")}},
		{Name: "mixed", GroupBy: []Expr{mustParse(t, "station"), mustParse(t, "year")}},
	}}
	p, err := Compile(lit, fieldsOf(cols), []OutputSpec{
		{Name: "one", UsesValue: true, GroupBy: []GroupSpec{{Private: true}}},
		{Name: "two", GroupBy: []GroupSpec{{Private: true}, {Private: true}}},
		{Name: "three", GroupBy: []GroupSpec{{Private: true}, {Private: true}, {Private: true}}},
		{Name: "mixed", GroupBy: []GroupSpec{{Private: true}, {Values: []string{"2014", "2015"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := p.NewEvaluator()
	for round := range 2 { // buffers are reused: the second batch must give the same
		outs, err := ev.Batch(rec)
		if err != nil {
			t.Fatal(err)
		}
		keys := func(o OutputBatch) []string {
			var ks []string
			for _, pt := range o.Part {
				if pt < 0 {
					ks = append(ks, "-")
				} else {
					ks = append(ks, strings.ReplaceAll(o.Keys[pt], "\x1f", "|"))
				}
			}
			return ks
		}
		for i, want := range [][]string{
			{"B", "A", "B", "-", "A", "-"},
			{"B|2013", "A|2014", "B|2013", "-", "A|2014", "C|2015"},
			{"p|2013|false", "q|2014|false", "p|2013|true", "q|2013|true", "r|2014|true", "-"},
			{"-", "A|2014", "-", "-", "A|2014", "C|2015"},
		} {
			if got := keys(outs[i]); !slices.Equal(got, want) {
				t.Errorf("round %d output %s: keys %q, want %q", round, p.outs[i].name, got, want)
			}
		}
		if got := outs[0].Keys; !slices.Equal(got, []string{"B", "A"}) {
			t.Errorf("round %d: Keys %q (only keys with contributions, in order of appearance)", round, got)
		}
	}
}

func TestBatchErrors(t *testing.T) {
	mem := checked(t)
	cols := []tcol{{"a", arrow.PrimitiveTypes.Int64, []any{1, 2}}}
	rec := record(mem, cols)
	defer rec.Release()
	for _, tc := range []struct {
		name   string
		schema []Field
		want   string
	}{
		{"missing column", []Field{{"a", "int64"}, {"b", "int64"}}, `column "b" is not in the batch`},
		{"mistyped column", []Field{{"a", "utf8"}}, `column "a" is int64 in the batch, the plan reads it as string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := "a"
			if tc.name == "missing column" {
				e = "a + b"
			}
			lit := Literal{Version: 1, Outputs: []Output{{Name: "x", GroupBy: []Expr{mustParse(t, e)}}}}
			p, err := Compile(lit, tc.schema, []OutputSpec{{Name: "x", GroupBy: []GroupSpec{{Private: true}}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.NewEvaluator().Batch(rec)
			if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q wrapping ErrInvalid", err, tc.want)
			}
		})
	}
}

// TestDictionaryIndices covers narrow index types, null dictionary entries
// and duplicate entries.
func TestDictionaryIndices(t *testing.T) {
	mem := checked(t)
	dictVals := buildArray(mem, tcol{"", arrow.BinaryTypes.String, []any{"x", nil, "y", "x"}})
	defer dictVals.Release()
	idx := buildArray(mem, tcol{"", arrow.PrimitiveTypes.Int8, []any{0, 1, 2, 3, nil, 2}})
	defer idx.Release()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	d := array.NewDictionaryArray(dt, idx, dictVals)
	defer d.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "d", Type: dt, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{d}, 6)
	defer rec.Release()
	fields := []Field{{"d", dt.String()}}
	if got, want := keysOf(t, rec, fields, "d"), []string{"x", "NULL", "y", "x", "NULL", "y"}; !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	if got, want := keysOf(t, rec, fields, "d = 'x'"), []string{"true", "NULL", "false", "true", "NULL", "false"}; !slices.Equal(got, want) {
		t.Errorf("d = 'x': %q, want %q", got, want)
	}
	if got, want := keysOf(t, rec, fields, "coalesce(d, '?')"), []string{"x", "?", "y", "x", "?", "y"}; !slices.Equal(got, want) {
		t.Errorf("coalesce: %q, want %q", got, want)
	}
}

func TestDerivedColumns(t *testing.T) {
	mem := checked(t)
	cols := []tcol{{"a", arrow.PrimitiveTypes.Int64, []any{1, 2, 3, nil}}}
	rec := record(mem, cols)
	defer rec.Release()
	lit := Literal{Version: 1,
		Derive: []Derived{{Name: "twice", Expr: mustParse(t, "a * 2")}, {Name: "band", Expr: mustParse(t, "bucket(twice, 4)")}},
		Where:  ptr(mustParse(t, "twice > 2")),
		Outputs: []Output{
			{Name: "x", GroupBy: []Expr{mustParse(t, "band")}, Value: ptr(mustParse(t, "twice"))},
		}}
	p, err := Compile(lit, fieldsOf(cols), []OutputSpec{{Name: "x", UsesValue: true, GroupBy: []GroupSpec{{Values: []string{"0", "4"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := p.NewEvaluator().Batch(rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{-1, 1, 1, -1}; !slices.Equal(outs[0].Part, want) {
		t.Errorf("Part %v, want %v", outs[0].Part, want)
	}
	if outs[0].Value[1] != 4 || outs[0].Value[2] != 6 {
		t.Errorf("Value %v", outs[0].Value)
	}
	if got := p.Columns(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Columns %v", got)
	}
}

func TestEmptyBatch(t *testing.T) {
	mem := checked(t)
	rec := record(mem, []tcol{{"a", arrow.PrimitiveTypes.Int64, nil}})
	defer rec.Release()
	if got := keysOf(t, rec, []Field{{"a", "int64"}}, "a + 1"); len(got) != 0 {
		t.Errorf("%v", got)
	}
}
