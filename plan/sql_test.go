package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

func exprJSON(e Expr) string { return string(appendExpr(nil, &e)) }

func TestParseExpr(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"column", "a", `{"col":"a"}`},
		{"backticks", "`PM2.5`", `{"col":"PM2.5"}`},
		{"backtick in name", "`a``b`", "{\"col\":\"a`b\"}"},
		{"keyword as name", "`select`", `{"col":"select"}`},
		{"int", "42", `{"int":42}`},
		{"negative int", "-9223372036854775808", `{"int":-9223372036854775808}`},
		{"decimal", "2.5", `{"float":2.5}`},
		{"exponent", "1e3", `{"float":1000}`},
		{"negative float", "-0.5", `{"float":-0.5}`},
		{"string", "'Dongsi'", `{"str":"Dongsi"}`},
		{"double-quoted string", `"it's"`, `{"str":"it's"}`},
		{"escapes", `'a\'b\\c\n'`, `{"str":"a'b\\c\n"}`},
		{"bool", "TRUE", `{"bool":true}`},
		{"null", "NULL", `{"null":""}`},
		{"date", "DATE '2015-01-15'", `{"date":"2015-01-15"}`},
		{"date short form", "DATE '2015-1-5'", `{"date":"2015-01-05"}`},
		{"timestamp", "TIMESTAMP '2015-01-15 14:00:00'", `{"timestamp":"2015-01-15T14:00:00Z"}`},
		{"timestamp offset", "TIMESTAMP '2015-01-15T14:00:00.5+08:00'", `{"timestamp":"2015-01-15T06:00:00.5Z"}`},
		{"arithmetic", "a + b * 2 - c / d % 3", `{"args":[{"args":[{"col":"a"},{"args":[{"col":"b"},{"int":2}],"op":"mul"}],"op":"add"},{"args":[{"args":[{"col":"c"},{"col":"d"}],"op":"div"},{"int":3}],"op":"mod"}],"op":"sub"}`},
		{"mod keyword", "a MOD 2", `{"args":[{"col":"a"},{"int":2}],"op":"mod"}`},
		{"mod function", "mod(a, 2)", `{"args":[{"col":"a"},{"int":2}],"op":"mod"}`},
		{"neg", "-a", `{"args":[{"col":"a"}],"op":"neg"}`},
		{"plus", "+a", `{"col":"a"}`},
		{"comparisons", "a = 1 AND b <> 2 AND c != 3 AND d < 4 AND e <= 5 AND f > 6 AND g >= 7",
			`{"args":[{"args":[{"col":"a"},{"int":1}],"op":"eq"},{"args":[{"col":"b"},{"int":2}],"op":"ne"},{"args":[{"col":"c"},{"int":3}],"op":"ne"},{"args":[{"col":"d"},{"int":4}],"op":"lt"},{"args":[{"col":"e"},{"int":5}],"op":"le"},{"args":[{"col":"f"},{"int":6}],"op":"gt"},{"args":[{"col":"g"},{"int":7}],"op":"ge"}],"op":"and"}`},
		{"or and not", "a OR b AND NOT c", `{"args":[{"col":"a"},{"args":[{"col":"b"},{"args":[{"col":"c"}],"op":"not"}],"op":"and"}],"op":"or"}`},
		{"or flattened", "a OR b OR c", `{"args":[{"col":"a"},{"col":"b"},{"col":"c"}],"op":"or"}`},
		{"double pipe is or", "a || b", `{"args":[{"col":"a"},{"col":"b"}],"op":"or"}`},
		{"bang", "!a", `{"args":[{"col":"a"}],"op":"not"}`},
		{"is null", "`PM2.5` IS NULL", `{"args":[{"col":"PM2.5"}],"op":"is_null"}`},
		{"is not null", "`PM2.5` IS NOT NULL", `{"args":[{"col":"PM2.5"}],"op":"is_not_null"}`},
		{"is true", "a IS TRUE", `{"args":[{"col":"a"},{"bool":false}],"op":"coalesce"}`},
		{"is not true", "a IS NOT TRUE", `{"args":[{"args":[{"col":"a"},{"bool":false}],"op":"coalesce"}],"op":"not"}`},
		{"is false", "a IS FALSE", `{"args":[{"args":[{"col":"a"},{"bool":true}],"op":"coalesce"}],"op":"not"}`},
		{"in", "a IN (1, -2, 'x', NULL, DATE '2015-01-01')", `{"args":[{"col":"a"},{"int":1},{"int":-2},{"str":"x"},{"null":""},{"date":"2015-01-01"}],"op":"in"}`},
		{"not in", "a NOT IN (1)", `{"args":[{"args":[{"col":"a"},{"int":1}],"op":"in"}],"op":"not"}`},
		{"in typed null", "a IN (CAST(NULL AS SIGNED))", `{"args":[{"col":"a"},{"null":"int64"}],"op":"in"}`},
		{"between", "a BETWEEN 1 AND b", `{"args":[{"col":"a"},{"int":1},{"col":"b"}],"op":"between"}`},
		{"not between", "a NOT BETWEEN 1 AND 2", `{"args":[{"args":[{"col":"a"},{"int":1},{"int":2}],"op":"between"}],"op":"not"}`},
		{"case", "CASE WHEN a > 1 THEN 'x' WHEN b THEN 'y' ELSE 'z' END", `{"args":[{"args":[{"col":"a"},{"int":1}],"op":"gt"},{"str":"x"},{"col":"b"},{"str":"y"},{"str":"z"}],"op":"case"}`},
		{"simple case", "CASE a WHEN 1 THEN 'x' END", `{"args":[{"args":[{"col":"a"},{"int":1}],"op":"eq"},{"str":"x"}],"op":"case"}`},
		{"if", "if(a, 1, 2)", `{"args":[{"col":"a"},{"int":1},{"int":2}],"op":"case"}`},
		{"coalesce", "COALESCE(a, b, 0)", `{"args":[{"col":"a"},{"col":"b"},{"int":0}],"op":"coalesce"}`},
		{"ifnull", "ifnull(a, 0)", `{"args":[{"col":"a"},{"int":0}],"op":"coalesce"}`},
		{"cast double", "CAST(a AS DOUBLE)", `{"args":[{"col":"a"}],"op":"cast","type":"float64"}`},
		{"cast signed", "CAST(a AS SIGNED)", `{"args":[{"col":"a"}],"op":"cast","type":"int64"}`},
		{"cast char", "CAST(a AS CHAR)", `{"args":[{"col":"a"}],"op":"cast","type":"string"}`},
		{"cast date", "CAST(a AS DATE)", `{"args":[{"col":"a"}],"op":"cast","type":"date"}`},
		{"cast datetime", "CAST(a AS DATETIME)", `{"args":[{"col":"a"}],"op":"cast","type":"timestamp"}`},
		{"convert", "CONVERT(a, DOUBLE)", `{"args":[{"col":"a"}],"op":"cast","type":"float64"}`},
		{"cast null", "CAST(NULL AS DOUBLE)", `{"null":"float64"}`},
		{"date function", "date(a)", `{"args":[{"col":"a"}],"op":"cast","type":"date"}`},
		{"math", "abs(a) + floor(a) + ceil(a) + ceiling(a) + round(a) + round(a, 2) + sqrt(a) + exp(a) + ln(a) + log(a) + pow(a, 2) + power(a, 2)",
			`{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"col":"a"}],"op":"abs"},{"args":[{"col":"a"}],"op":"floor"}],"op":"add"},{"args":[{"col":"a"}],"op":"ceil"}],"op":"add"},{"args":[{"col":"a"}],"op":"ceil"}],"op":"add"},{"args":[{"col":"a"}],"op":"round"}],"op":"add"},{"args":[{"col":"a"},{"int":2}],"op":"round"}],"op":"add"},{"args":[{"col":"a"}],"op":"sqrt"}],"op":"add"},{"args":[{"col":"a"}],"op":"exp"}],"op":"add"},{"args":[{"col":"a"}],"op":"log"}],"op":"add"},{"args":[{"col":"a"}],"op":"log"}],"op":"add"},{"args":[{"col":"a"},{"int":2}],"op":"pow"}],"op":"add"},{"args":[{"col":"a"},{"int":2}],"op":"pow"}],"op":"add"}`},
		{"least greatest", "least(a, b, 1) < greatest(a, b)", `{"args":[{"args":[{"col":"a"},{"col":"b"},{"int":1}],"op":"least"},{"args":[{"col":"a"},{"col":"b"}],"op":"greatest"}],"op":"lt"}`},
		{"length", "length(s) + char_length(s) + character_length(s)", `{"args":[{"args":[{"args":[{"col":"s"}],"op":"length"},{"args":[{"col":"s"}],"op":"length"}],"op":"add"},{"args":[{"col":"s"}],"op":"length"}],"op":"add"}`},
		{"case functions", "lower(s) = upper(lcase(ucase(s)))", `{"args":[{"args":[{"col":"s"}],"op":"lower"},{"args":[{"args":[{"args":[{"col":"s"}],"op":"upper"}],"op":"lower"}],"op":"upper"}],"op":"eq"}`},
		{"substr", "substr(s, 2, 3)", `{"args":[{"col":"s"},{"int":2},{"int":3}],"op":"substr"}`},
		{"substring from for", "substring(s FROM 2 FOR 3)", `{"args":[{"col":"s"},{"int":2},{"int":3}],"op":"substr"}`},
		{"substring two", "substring(s, 2)", `{"args":[{"col":"s"},{"int":2}],"op":"substr"}`},
		{"mid", "mid(s, 1, 2)", `{"args":[{"col":"s"},{"int":1},{"int":2}],"op":"substr"}`},
		{"starts_with", "starts_with(s, 'ab')", `{"args":[{"col":"s"},{"str":"ab"}],"op":"prefix"}`},
		{"prefix", "prefix(s, 'ab')", `{"args":[{"col":"s"},{"str":"ab"}],"op":"prefix"}`},
		{"contains", "contains(s, 'ab')", `{"args":[{"col":"s"},{"str":"ab"}],"op":"contains"}`},
		{"date parts", "year(t) + month(t) + day(t) + dayofmonth(t) + hour(t) + minute(t) + second(t) + dow(t) + dayofyear(t) + doy(t)",
			`{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"args":[{"col":"t"}],"op":"year"},{"args":[{"col":"t"}],"op":"month"}],"op":"add"},{"args":[{"col":"t"}],"op":"day"}],"op":"add"},{"args":[{"col":"t"}],"op":"day"}],"op":"add"},{"args":[{"col":"t"}],"op":"hour"}],"op":"add"},{"args":[{"col":"t"}],"op":"minute"}],"op":"add"},{"args":[{"col":"t"}],"op":"second"}],"op":"add"},{"args":[{"col":"t"}],"op":"dow"}],"op":"add"},{"args":[{"col":"t"}],"op":"doy"}],"op":"add"},{"args":[{"col":"t"}],"op":"doy"}],"op":"add"}`},
		{"dayofweek is dow + 1", "dayofweek(t)", `{"args":[{"args":[{"col":"t"}],"op":"dow"},{"int":1}],"op":"add"}`},
		{"extract", "EXTRACT(MONTH FROM t)", `{"args":[{"col":"t"}],"op":"month"}`},
		{"bucket", "bucket(`PM2.5`, 50)", `{"args":[{"col":"PM2.5"},{"int":50}],"op":"bucket"}`},
		{"bucket origin", "bucket(x, 10, 5)", `{"args":[{"col":"x"},{"int":10},{"int":5}],"op":"bucket"}`},
		{"function case", "ABS(a)", `{"args":[{"col":"a"}],"op":"abs"}`},
		{"unknown function passes to Compile", "frobnicate(a)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseExpr(tc.sql)
			if tc.want == "" {
				if err == nil || !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "function frobnicate") {
					t.Fatalf("ParseExpr(%q) = %v, want an error naming the function", tc.sql, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseExpr(%q): %v", tc.sql, err)
			}
			if got := exprJSON(e); got != tc.want {
				t.Fatalf("ParseExpr(%q):\n got  %s\n want %s", tc.sql, got, tc.want)
			}
			// The rendering reads back as the same expression.
			text := sqlText(&e)
			back, err := ParseExpr(text)
			if err != nil {
				t.Fatalf("ParseExpr(Text %q): %v", text, err)
			}
			if got := exprJSON(normExpr(back)); got != exprJSON(normExpr(e)) {
				t.Fatalf("round trip through %q:\n got  %s\n want %s", text, got, exprJSON(normExpr(e)))
			}
		})
	}
}

func TestParseExprErrors(t *testing.T) {
	for _, tc := range []struct {
		name, sql, msg string
		err            error
	}{
		{"empty", "  ", "empty", cove.ErrInvalid},
		{"syntax", "a +", "syntax error at position 4", cove.ErrInvalid},
		{"subquery", "(SELECT 1)", "a subquery is not supported", cove.ErrInvalid},
		{"in subquery", "a IN (SELECT b FROM t)", "IN of a subquery", cove.ErrInvalid},
		{"exists", "EXISTS (SELECT 1)", "a subquery", cove.ErrInvalid},
		{"aggregate", "sum(a)", "an aggregate function", cove.ErrInvalid},
		{"count star", "count(*)", "an aggregate function", cove.ErrInvalid},
		{"variable", "@x", "a variable", cove.ErrInvalid},
		{"system variable", "@@version", "a variable", cove.ErrInvalid},
		{"bind parameter", ":x", "a bind parameter", cove.ErrInvalid},
		{"unknown function", "concat(a, b)", "function concat", cove.ErrInvalid},
		{"now", "NOW()", "the current time", cove.ErrInvalid},
		{"qualified column", "t.a", "a qualified column name", cove.ErrInvalid},
		{"from", "1 FROM t", "FROM is not part of an expression", cove.ErrInvalid},
		{"list", "1, 2", "a list of expressions", cove.ErrInvalid},
		{"union", "1 UNION SELECT 2", "a set operation", cove.ErrInvalid},
		{"alias", "a AS b", "an alias", cove.ErrInvalid},
		{"where", "a WHERE b", "WHERE", cove.ErrInvalid},
		{"like", "a LIKE 'x%'", "LIKE", cove.ErrInvalid},
		{"regexp", "a REGEXP 'x'", "REGEXP", cove.ErrInvalid},
		{"null-safe equal", "a <=> b", "<=>", cove.ErrInvalid},
		{"xor", "a XOR b", "XOR", cove.ErrInvalid},
		{"int div", "a DIV 2", "DIV", cove.ErrInvalid},
		{"bit and", "a & b", "a bit operator", cove.ErrInvalid},
		{"in of column", "a IN (b)", "not a literal", cove.ErrInvalid},
		{"hex", "0x1F", "this kind of literal", cove.ErrInvalid},
		{"int overflow", "9223372036854775808", "an integer outside int64", cove.ErrInvalid},
		{"bad date", "DATE 'xx'", "a date", cove.ErrInvalid},
		{"time literal", "TIME '10:00:00'", "this kind of literal", cove.ErrInvalid},
		{"cast unsigned", "CAST(a AS UNSIGNED)", "use SIGNED", cove.ErrInvalid},
		{"cast decimal", "CAST(a AS DECIMAL(10, 2))", "use DOUBLE", cove.ErrInvalid},
		{"cast char length", "CAST(a AS CHAR(3))", "a cast to this type", cove.ErrInvalid},
		{"binary", "BINARY a", "a cast to this type", cove.ErrInvalid},
		{"locate", "locate('x', a)", "LOCATE", cove.ErrInvalid},
		{"log with base", "log(2, a)", "log with a base", cove.ErrInvalid},
		{"ifnull arity", "ifnull(a)", "ifnull takes 2 arguments, not 1", cove.ErrInvalid},
		{"tuple", "(1, 2)", "a tuple", cove.ErrInvalid},
		{"json", "a->'$.x'", "not supported", cove.ErrInvalid},
		{"interval", "a + INTERVAL 1 DAY", "not supported", cove.ErrInvalid},
		{"too long", strings.Repeat("a+", MaxPlanBytes/2) + "a", "the limit is 65536", cove.ErrLimit},
		{"too deep", strings.Repeat("-(", 40) + "a" + strings.Repeat(")", 40), "deeper than 32", cove.ErrLimit},
		{"invalid utf-8", "'\xff'", "UTF-8", cove.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExpr(tc.sql)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParseExpr(%q) = %v, want an error wrapping %v saying %q", tc.sql, err, tc.err, tc.msg)
			}
		})
	}
}
