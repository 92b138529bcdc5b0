package guest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/covedata/cove/sdk/guest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// schema is the columns every planning test sees; values are ignored.
func schema() []guest.LocalColumn {
	return []guest.LocalColumn{
		guest.LocalString("station", nil, nil),
		guest.LocalInt64("year", nil, nil),
		guest.LocalInt32("hour", nil, nil),
		guest.LocalFloat64("PM2.5", nil, nil),
		guest.LocalFloat64("TEMP", nil, nil),
		guest.LocalBool("rain", nil, nil),
		guest.LocalDictString("wd", nil, nil, nil),
		guest.LocalTimestamp("ts", guest.Millisecond, nil, nil),
		guest.LocalDate32("day", nil, nil),
	}
}

// everything uses every fluent method and every operation of the IR.
func everything(b *guest.Batch) error {
	pm, temp := guest.Col("PM2.5"), guest.Col("TEMP")
	band := b.Derive("pm_band", pm.Bucket(guest.Int(50)))
	b.Derive("feels", guest.Case(
		temp.Lt(guest.Float(0)), guest.Str("cold"),
		temp.Between(guest.Int(0), guest.Int(25)), guest.Str("mild"),
		guest.Str("hot")))
	all := b.All()
	base := all.NotNull("PM2.5").WhereInt("year", guest.Ge, 2014)
	// Two Rows made from one must not share their filters.
	a := base.WhereString("station", guest.Eq, "Dongsi").IsNull("TEMP")
	c := base.WhereFloat("TEMP", guest.Gt, -2.5).WhereInt("rain", guest.Eq, 1)
	guest.Output("a").CountRows(a.GroupBy("station", "pm_band"))
	guest.Output("c").AddColumn(c.GroupBy(), "PM2.5")
	times := all.WhereInt("ts", guest.Lt, 1_420_070_400_123).WhereInt("day", guest.Ge, 16_450).WhereInt("hour", guest.Le, 12)
	guest.Output("t").AddColumn(times.GroupBy("year").NotNull("TEMP"), "rain")

	s := guest.Col("station")
	ts := guest.Col("ts")
	cond := s.Lower().HasPrefix(guest.Str("d")).
		Or(s.Upper().Contains(guest.Str("AN")), s.Length().Gt(guest.Int(7)).Not()).
		And(s.Substr(1, 3).Ne(guest.Str("Tia")), s.Substr(2, -1).In(guest.Str("ongsi"), guest.Str("x")),
			guest.Col("year").In(guest.Int(2013), guest.Int(2014)), guest.Col("wd").IsNotNull(),
			ts.Year().Eq(guest.Int(2015)), ts.Month().Le(guest.Int(6)), ts.Day().Ge(guest.Int(1)),
			ts.Hour().Lt(guest.Int(23)), ts.Minute().Eq(guest.Int(0)), ts.Second().Eq(guest.Int(0)),
			ts.Weekday().Ne(guest.Int(0)), guest.Col("day").YearDay().Gt(guest.Int(31)),
			ts.Ge(guest.Timestamp("2015-01-15T14:00:00Z")), guest.Col("day").Lt(guest.Date("2016-01-01")))
	value := guest.Coalesce(pm, guest.Null(guest.Float64Type)).
		Add(temp.Sub(guest.Float(1.5)).Mul(guest.Int(2)).Div(guest.Int(3)).Mod(guest.Int(7)).Neg()).
		Add(guest.Least(pm.Abs(), temp.Floor(), temp.Ceil()).Sqrt().Exp().Log()).
		Add(guest.Greatest(pm.Round(), pm.RoundTo(2), pm.Pow(guest.Float(0.5)))).
		Add(guest.Col("year").Cast(guest.Float64Type)).
		Add(temp.BucketFrom(guest.Float(2.5), guest.Float(-1)))
	g := all.Where(cond).Where(guest.Col("rain").Eq(guest.Bool(true))).
		GroupByExpr(s, band, guest.Col("feels"), guest.Col("year").Cast(guest.StringType), ts.Hour().IsNull())
	guest.Output("e").AddExpr(g, value)
	return nil
}

func TestPlanGolden(t *testing.T) {
	outputs := []string{"a", "c", "t", "e"}
	js, err := guest.PlanLocal(everything, outputs, schema()...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := guest.PlanLocal(everything, outputs, schema()...)
	if err != nil || !bytes.Equal(js, again) {
		t.Fatalf("two planning calls differ (%v):\n%s\n%s", err, js, again)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, js, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	const golden = "testdata/plan.golden.json"
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("plan differs from %s (go test -update rewrites it):\n%s", golden, pretty.Bytes())
	}
}

func TestPlanRefusals(t *testing.T) {
	rows := func(b *guest.Batch) guest.Rows { return b.All().NotNull("PM2.5") }
	read := "guest: plan mode: the handler read column values; a plan is built from the schema only — use mode: unit or block for per-row logic"
	tests := []struct {
		name    string
		handler guest.Handler
		want    string
	}{
		{"column read", func(b *guest.Batch) error { b.Float64("PM2.5"); return nil }, read + ` (column "PM2.5")`},
		{"string column", func(b *guest.Batch) error { b.String("station"); return nil }, read},
		{"batch length", func(b *guest.Batch) error { _ = b.Len(); return nil }, read + " (Batch.Len)"},
		{"add", func(b *guest.Batch) error { guest.Output("a").Add(0, "k", 1); return nil }, read + " (Emitter.Add)"},
		{"count", func(b *guest.Batch) error { guest.Output("a").Count(0, "k"); return nil }, read},
		{"select", func(b *guest.Batch) error { b.Select([]uint32{0}); return nil }, read + " (Batch.Select)"},
		{"rows length", func(b *guest.Batch) error { rows(b).Len(); return nil }, read + " (Rows.Len)"},
		{"indices", func(b *guest.Batch) error { rows(b).Indices(); return nil }, read},
		{"groups length", func(b *guest.Batch) error { rows(b).GroupBy("station").Len(); return nil }, read},
		{"groups indices", func(b *guest.Batch) error { rows(b).GroupBy("station").Indices(); return nil }, read},
		{"key ids", func(b *guest.Batch) error { rows(b).GroupBy("station").KeyIDs(); return nil }, read + " (Groups.KeyIDs)"},
		{"result", func(b *guest.Batch) error { guest.Result("a", []float64{1}); return nil }, read + " (Result)"},
		{"unknown column", func(b *guest.Batch) error { b.All().NotNull("x"); return nil }, `column "x" is not in the batch`},
		{"unknown group column", func(b *guest.Batch) error { b.All().GroupBy("x"); return nil }, `column "x" is not in the batch`},
		{"wrong type", func(b *guest.Batch) error { b.All().WhereFloat("year", guest.Lt, 1); return nil }, `column "year" is int64, not float64`},
		{"int on float", func(b *guest.Batch) error { b.All().WhereInt("PM2.5", guest.Lt, 1); return nil }, `WhereInt on float64 column "PM2.5"`},
		{"string value", func(b *guest.Batch) error {
			guest.Output("a").AddColumn(b.All().GroupBy(), "station")
			return nil
		}, `AddColumn of utf8 column "station"`},
		{"derive a dataset column", func(b *guest.Batch) error { b.Derive("year", guest.Int(1)); return nil }, `Derive "year": the dataset has a column`},
		{"derive twice", func(b *guest.Batch) error {
			b.Derive("x", guest.Int(1))
			b.Derive("x", guest.Int(2))
			return nil
		}, `Derive "x" twice`},
		{"output twice", func(b *guest.Batch) error {
			o := guest.Output("a")
			o.CountRows(b.All().GroupBy("station"))
			o.CountRows(b.All().GroupBy("year"))
			return nil
		}, `output "a" is given rows twice`},
		{"undeclared output", func(b *guest.Batch) error { guest.Output("nope"); return nil }, `output "nope" is not declared`},
		{"zero expression", func(b *guest.Batch) error { b.All().Where(guest.Expr{}); return nil }, "zero Expr"},
		{"in with a column", func(b *guest.Batch) error { guest.Col("year").In(guest.Col("hour")); return nil }, "In takes literals only"},
		{"handler error", func(b *guest.Batch) error { return errors.New("boom") }, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := guest.PlanLocal(tt.handler, []string{"a"}, schema()...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if js != nil {
				t.Errorf("plan %s after a failure", js)
			}
		})
	}
}

// TestPlanAndBatchAgree: a handler of fluent calls and lowerable
// expressions makes the same contributions in batch mode whichever way it
// says its filters.
func TestPlanAndBatchAgree(t *testing.T) {
	cols := []guest.LocalColumn{
		guest.LocalString("station", []string{"A", "B", "A", "C", "B"}, nil),
		guest.LocalInt64("year", []int64{2013, 2014, 2015, 2016, 2014}, nil),
		guest.LocalFloat64("PM2.5", []float64{10, 20, 30, 40, 50}, []bool{true, true, false, true, true}),
		guest.LocalBool("rain", []bool{true, false, true, true, false}, nil),
	}
	fluent := func(b *guest.Batch) error {
		g := b.All().NotNull("PM2.5").WhereInt("year", guest.Ge, 2014).WhereInt("year", guest.Le, 2016).
			WhereString("station", guest.Ne, "C").WhereFloat("PM2.5", guest.Gt, 15).GroupBy("station")
		guest.Output("o").AddColumn(g, "PM2.5")
		return nil
	}
	exprs := func(b *guest.Batch) error {
		g := b.All().Where(guest.Col("PM2.5").IsNotNull().And(
			guest.Col("year").Between(guest.Int(2014), guest.Int(2016)),
			guest.Str("C").Ne(guest.Col("station")),
			guest.Int(15).Lt(guest.Col("PM2.5")))).
			GroupByExpr(guest.Col("station"))
		guest.Output("o").AddExpr(g, guest.Col("PM2.5"))
		return nil
	}
	want, err := guest.RunLocal(fluent, []string{"o"}, cols...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := guest.RunLocal(exprs, []string{"o"}, cols...)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || len(got) != len(want) {
		t.Fatalf("fluent %v, expressions %v", want, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("contribution %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, h := range []guest.Handler{fluent, exprs} {
		if _, err := guest.PlanLocal(h, []string{"o"}, cols...); err != nil {
			t.Error(err)
		}
	}
}

func TestBatchModeRefusesExpressions(t *testing.T) {
	cols := []guest.LocalColumn{guest.LocalFloat64("x", []float64{1}, nil), guest.LocalString("s", []string{"a"}, nil)}
	tests := []struct {
		name    string
		handler guest.Handler
		want    string
	}{
		{"derive", func(b *guest.Batch) error { b.Derive("y", guest.Int(1)); return nil }, "batch mode: Batch.Derive needs plan mode"},
		{"where", func(b *guest.Batch) error {
			b.All().Where(guest.Col("x").Add(guest.Int(1)).Gt(guest.Int(2)))
			return nil
		}, "batch mode: Where"},
		{"where or", func(b *guest.Batch) error {
			b.All().Where(guest.Col("x").IsNull().Or(guest.Col("s").IsNull()))
			return nil
		}, "needs plan mode"},
		{"string literal on a number", func(b *guest.Batch) error { b.All().Where(guest.Col("x").Eq(guest.Str("1"))); return nil }, "needs plan mode"},
		{"group by", func(b *guest.Batch) error { b.All().GroupByExpr(guest.Col("x").Floor()); return nil }, "batch mode: GroupByExpr"},
		{"add", func(b *guest.Batch) error {
			guest.Output("o").AddExpr(b.All().GroupBy("s"), guest.Col("x").Abs())
			return nil
		}, "batch mode: AddExpr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := guest.RunLocal(tt.handler, []string{"o"}, cols...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	cols := []guest.LocalColumn{guest.LocalFloat64("x", []float64{1, 2, 6}, nil)}
	got, err := guest.RunLocal(func(b *guest.Batch) error {
		x := b.Float64("x")
		sum := 0.0
		for i := 0; i < b.Len(); i++ {
			sum += x.Value(i)
		}
		guest.Result("mean", []float64{sum / float64(b.Len()), float64(b.Len())})
		return nil
	}, []string{"other", "mean"}, cols...)
	if err != nil {
		t.Fatal(err)
	}
	want := []guest.Contribution{{Output: "mean", Row: -1, Key: "0", Value: 3}, {Output: "mean", Row: -1, Key: "1", Value: 3}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
	_, err = guest.RunLocal(func(b *guest.Batch) error {
		guest.Result("mean", []float64{1})
		guest.Result("mean", []float64{2})
		return nil
	}, []string{"mean"}, cols...)
	if err == nil || !strings.Contains(err.Error(), `Result for output "mean" twice`) {
		t.Errorf("second result: %v", err)
	}
}

func TestJSONStrings(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r", "\x00\x1f\x7f", "é😀", "<&>", "\u2028"} {
		js, err := guest.PlanLocal(func(b *guest.Batch) error {
			guest.Output(s).CountRows(b.All().Where(guest.Col(s).Eq(guest.Str(s))).GroupBy())
			return nil
		}, []string{s}, guest.LocalString(s, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Outputs []struct {
				Name  string
				Where struct {
					Args []map[string]string
				}
			}
		}
		if err := json.Unmarshal(js, &p); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, js)
		}
		o := p.Outputs[0]
		if o.Name != s || o.Where.Args[0]["col"] != s || o.Where.Args[1]["str"] != s {
			t.Errorf("%q came back as %+v", s, o)
		}
	}
}

// FuzzPlanStrings: any column name and string literal gives valid JSON that
// decodes to the same text (invalid UTF-8 in a name as U+FFFD per byte).
func FuzzPlanStrings(f *testing.F) {
	for _, s := range []string{"", "PM2.5", "a\"b\\c", "\x00\x1f", "é", "\xff\xfe", "\u2028"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, name, lit string) {
		if !utf8.ValidString(lit) {
			lit = strings.ToValidUTF8(lit, "\uFFFD")
		}
		js, err := guest.PlanLocal(func(b *guest.Batch) error {
			guest.Output("o").CountRows(b.All().Where(guest.Col(name).Eq(guest.Str(lit))).GroupBy())
			return nil
		}, []string{"o"}, guest.LocalString(name, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Outputs []struct {
				Where struct{ Args []map[string]string }
			}
		}
		if err := json.Unmarshal(js, &p); err != nil {
			t.Fatalf("%q %q: %v\n%s", name, lit, err, js)
		}
		var want strings.Builder
		for i := 0; i < len(name); {
			r, n := utf8.DecodeRuneInString(name[i:])
			want.WriteRune(r) // RuneError for an invalid byte
			i += n
		}
		args := p.Outputs[0].Where.Args
		if args[0]["col"] != want.String() || args[1]["str"] != lit {
			t.Errorf("%q %q came back as %q", name, lit, args)
		}
	})
}
