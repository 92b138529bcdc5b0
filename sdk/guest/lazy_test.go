package guest

import (
	"strings"
	"testing"
)

func runBoth(t *testing.T, h Handler, cols ...LocalColumn) (lazy, eager []Contribution) {
	t.Helper()
	var err error
	for _, e := range []bool{false, true} {
		localEager = e
		out, runErr := RunLocal(h, []string{"o"}, cols...)
		if runErr != nil {
			err = runErr
		}
		if e {
			eager = out
		} else {
			lazy = out
		}
	}
	localEager = false
	if err != nil {
		t.Fatal(err)
	}
	return lazy, eager
}

func allCols() []LocalColumn {
	valid := []bool{true, false, true, true}
	return []LocalColumn{
		LocalInt64("i64", []int64{-1, 0, 1 << 40, 5}, valid),
		LocalInt32("i32", []int32{-2, 0, 7, 8}, nil),
		LocalFloat64("f64", []float64{3.5, 0, -9, 0.25}, valid),
		LocalString("s", []string{"héllo", "", "x", "yz"}, valid),
		LocalBool("b", []bool{true, false, false, true}, nil),
		LocalDictString("d", []string{"x", "yy"}, []int32{1, 0, 1, 0}, valid),
		LocalTimestamp("ts", Microsecond, []int64{1, 2, 3, 4}, nil),
		LocalDate32("dt", []int32{1, 2, 3, 4}, valid),
	}
}

// TestLazyMatchesEager: a handler reading every column sees the same data
// from a lazy batch (columns copied on first use) as from an eager region.
func TestLazyMatchesEager(t *testing.T) {
	h := func(b *Batch) error {
		i64, i32, f64, s, bo := b.Int64("i64"), b.Int32("i32"), b.Float64("f64"), b.String("s"), b.Bool("b")
		d, ts, dt := b.String("d"), b.Timestamp("ts"), b.Date("dt")
		_ = b.Int64("i64") // a second read copies nothing
		o := Output("o")
		for i := 0; i < b.Len(); i++ {
			if i64.IsNull(i) || f64.IsNull(i) || s.IsNull(i) || d.IsNull(i) || dt.IsNull(i) {
				o.Add(i, "null", 1)
				continue
			}
			v := float64(i64.Value(i)) + float64(i32.Value(i)) + f64.Value(i) + float64(ts.Value(i)+dt.Days(i))
			if bo.Value(i) {
				v++
			}
			o.Add(i, Key(s.Value(i), d.Value(i)), v)
		}
		return nil
	}
	lazy, eager := runBoth(t, h, allCols()...)
	if len(lazy) != 4 || len(lazy) != len(eager) {
		t.Fatalf("lazy %v, eager %v", lazy, eager)
	}
	for i := range lazy {
		if lazy[i] != eager[i] {
			t.Errorf("contribution %d: lazy %+v, eager %+v", i, lazy[i], eager[i])
		}
	}
}

// TestLazyKernelsCopyNothing: a job that only uses kernels never has a
// column copied into the guest.
func TestLazyKernelsCopyNothing(t *testing.T) {
	var fh *fakeHost
	out, err := RunLocal(func(b *Batch) error {
		fh = cur.host.(*fakeHost)
		g := b.All().NotNull("f64").WhereInt("i32", Ge, 0).GroupBy("s", "d")
		Output("o").AddColumn(g, "f64")
		return nil
	}, []string{"o"}, allCols()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Errorf("contributions %v", out)
	}
	for i, c := range fh.copied {
		if c {
			t.Errorf("column %d was copied into the guest", i)
		}
	}
}

func TestLazyRefusals(t *testing.T) {
	_, err := RunLocal(func(b *Batch) error {
		b.st.host.column(0, make([]byte, 3))
		return nil
	}, nil, allCols()...)
	if err == nil || !strings.Contains(err.Error(), "wrong size") {
		t.Errorf("short block: %v", err)
	}
	_, err = RunLocal(func(b *Batch) error {
		b.Int64("i64")
		b.columns[0].loaded = false
		b.Int64("i64")
		return nil
	}, nil, allCols()...)
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second copy: %v", err)
	}
}
