package guest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/covedata/cove/sdk/guest"
)

func TestAllTypes(t *testing.T) {
	valid := []bool{true, false, true}
	var seen []string
	_, err := guest.RunLocal(func(b *guest.Batch) error {
		i64, i32, f64 := b.Int64("i64"), b.Int32("i32"), b.Float64("f64")
		s, bo := b.String("s"), b.Bool("b")
		for i := 0; i < b.Len(); i++ {
			if i64.IsNull(i) {
				seen = append(seen, "null")
				continue
			}
			seen = append(seen, strings.Join([]string{
				itoa(i64.Value(i)), itoa(int64(i32.Value(i))), itoa(int64(f64.Value(i))), s.Value(i), map[bool]string{true: "T", false: "F"}[bo.Value(i)],
			}, ","))
		}
		if got := b.Columns(); len(got) != 5 || got[0] != "i64" || !b.Has("s") || b.Has("x") {
			t.Errorf("columns = %v", got)
		}
		return nil
	}, nil,
		guest.LocalInt64("i64", []int64{-1, 0, 1 << 40}, valid),
		guest.LocalInt32("i32", []int32{-2, 0, 7}, valid),
		guest.LocalFloat64("f64", []float64{3.5, 0, -9}, valid),
		guest.LocalString("s", []string{"héllo", "", "x"}, valid),
		guest.LocalBool("b", []bool{true, false, false}, valid),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := "-1,-2,3,héllo,T|null|1099511627776,7,-9,x,F"
	if got := strings.Join(seen, "|"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func itoa(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	var b []byte
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			break
		}
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

func TestFailures(t *testing.T) {
	col := guest.LocalInt64("n", []int64{1, 2}, nil)
	tests := []struct {
		name    string
		handler guest.Handler
		want    string
	}{
		{"missing column", func(b *guest.Batch) error { b.Int64("x"); return nil }, `column "x" is not in the batch`},
		{"wrong type", func(b *guest.Batch) error { b.String("n"); return nil }, `column "n" is int64, not utf8`},
		{"undeclared output", func(b *guest.Batch) error { guest.Output("nope"); return nil }, `output "nope" is not declared`},
		{"row out of range", func(b *guest.Batch) error { guest.Output("o").Add(2, "k", 1); return nil }, "row 2 out of range"},
		{"handler error", func(b *guest.Batch) error { return errors.New("boom") }, "boom"},
		{"panic", func(b *guest.Batch) error { var p *int; _ = *p; return nil }, "nil pointer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := guest.RunLocal(tt.handler, []string{"o"}, col)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if got != nil {
				t.Errorf("contributions = %v after a failure", got)
			}
		})
	}
}

func TestFlushAndIntern(t *testing.T) {
	n := 70000 // more than one flush
	rows := make([]int64, n)
	got, err := guest.RunLocal(func(b *guest.Batch) error {
		a, c := guest.Output("a"), guest.Output("c")
		for i := 0; i < b.Len(); i++ {
			a.Add(i, guest.Key("k", itoa(int64(i%3))), 2)
			if i%2 == 0 {
				c.Count(i, "even")
			}
		}
		if guest.Output("a") != a {
			t.Error("Output not cached")
		}
		return nil
	}, []string{"a", "c"}, guest.LocalInt64("r", rows, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n+n/2 {
		t.Fatalf("%d contributions, want %d", len(got), n+n/2)
	}
	if got[0] != (guest.Contribution{Output: "a", Row: 0, Key: "k\x1f0", Value: 2}) {
		t.Errorf("first = %+v", got[0])
	}
}

func TestEmptyBatch(t *testing.T) {
	got, err := guest.RunLocal(func(b *guest.Batch) error {
		if b.Len() != 0 || b.String("s").Len() != 0 {
			t.Error("not empty")
		}
		return nil
	}, nil, guest.LocalString("s", nil, nil))
	if err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
}

func TestNewTypes(t *testing.T) {
	var seen []string
	_, err := guest.RunLocal(func(b *guest.Batch) error {
		d, ts, dt := b.String("d"), b.Timestamp("ts"), b.Date("dt")
		if !d.IsDict() || d.DictLen() != 2 || ts.Unit() != guest.Millisecond {
			t.Errorf("dict %v %d unit %v", d.IsDict(), d.DictLen(), ts.Unit())
		}
		for i := 0; i < b.Len(); i++ {
			if d.IsNull(i) {
				seen = append(seen, "null")
				continue
			}
			seen = append(seen, d.Value(i)+","+itoa(ts.UnixSeconds(i))+","+itoa(dt.Days(i)))
		}
		return nil
	}, nil,
		guest.LocalDictString("d", []string{"x", "yy"}, []int32{1, 0, 1}, []bool{true, false, true}),
		guest.LocalTimestamp("ts", guest.Millisecond, []int64{1500, 0, -1500}, nil),
		guest.LocalDate32("dt", []int32{19000, 0, -1}, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(seen, "|"), "yy,1,19000|null|yy,-2,-1"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
