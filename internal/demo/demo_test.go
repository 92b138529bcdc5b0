package demo

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
)

// exactAggregates computes, natively and without noise, what the two example
// jobs release: keyed by output then by the joined key.
func exactAggregates(t *testing.T, dir string) map[string]map[string]float64 {
	t.Helper()
	type acc struct{ sum, n float64 }
	sums := map[string]map[string]*acc{"pm25_mean": {}, "high_income_count": {}, "hours_mean": {}}
	add := func(out, key string, v float64) {
		a := sums[out][key]
		if a == nil {
			a = &acc{}
			sums[out][key] = a
		}
		a.sum += v
		a.n++
	}
	read := func(name string, cols []string, fn func(rec map[string]arrayAt, i int)) {
		r, err := connectors.OpenFile(filepath.Join(dir, "datasets", name+".parquet"), connectors.Options{Columns: cols})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		for r.Next() {
			rec := r.RecordBatch()
			m := map[string]arrayAt{}
			for k, c := range cols {
				m[c] = arrayAt{rec.Column(k)}
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				fn(m, i)
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("beijing-air-quality", []string{"station", "year", "PM2.5"}, func(c map[string]arrayAt, i int) {
		if c["PM2.5"].IsNull(i) {
			return
		}
		add("pm25_mean", c["station"].str(i)+"|"+strconv.FormatInt(c["year"].i64(i), 10), c["PM2.5"].f64(i))
	})
	read("adult", []string{"education", "occupation", "hours-per-week", "income"}, func(c map[string]arrayAt, i int) {
		if c["income"].str(i) == ">50K" {
			add("high_income_count", c["education"].str(i), 1)
		}
		if !c["occupation"].IsNull(i) {
			add("hours_mean", c["occupation"].str(i), float64(c["hours-per-week"].i64(i)))
		}
	})
	exact := map[string]map[string]float64{}
	for out, m := range sums {
		exact[out] = map[string]float64{}
		for k, a := range m {
			if out == "high_income_count" {
				exact[out][k] = a.n
			} else {
				exact[out][k] = a.sum / a.n
			}
		}
	}
	return exact
}

type arrayAt struct{ a interface{ IsNull(int) bool } }

func (c arrayAt) IsNull(i int) bool { return c.a.IsNull(i) }
func (c arrayAt) str(i int) string  { return c.a.(*array.String).Value(i) }
func (c arrayAt) i64(i int) int64   { return c.a.(*array.Int64).Value(i) }
func (c arrayAt) f64(i int) float64 { return c.a.(*array.Float64).Value(i) }

// TestDemoEndToEnd runs the whole demo and checks every released value
// against the exact aggregate within 6σ of its noise, the two rejections, the
// budgets and the ledger.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo in -short mode")
	}
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{DataDir: dir, Out: &out, Config: jobs.NewConfig().WithAllocator(alloc)})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	exact := exactAggregates(t, dir)

	if len(res.Releases) != 2 {
		t.Fatalf("%d releases, want 2", len(res.Releases))
	}
	checked := 0
	for _, rel := range res.Releases {
		for _, o := range rel.Outputs {
			for _, r := range o.Rows {
				key := strings.Join(r.Key, "|")
				want, ok := exact[o.Name][key]
				if !ok {
					// A public partition with no data: only noise around nothing.
					continue
				}
				if !(r.NoiseStdDev > 0) {
					t.Errorf("%s %s: noise σ %v", o.Name, key, r.NoiseStdDev)
				}
				if d := math.Abs(r.Value - want); d > 6*r.NoiseStdDev {
					t.Errorf("%s %s: released %.3f, exact %.3f, off by %.3f > 6σ = %.3f", o.Name, key, r.Value, want, d, 6*r.NoiseStdDev)
				}
				checked++
			}
		}
	}
	// 57 station-years with data (2013 Mar–2017 Feb at 12 stations: 12×5 minus none)
	// plus 16 education levels and 14 occupations.
	if checked < 60+16+14-5 {
		t.Errorf("only %d released values had an exact counterpart", checked)
	}
	t.Logf("%d released values within 6σ of the exact aggregate", checked)

	wantCodes := [][]string{{policy.CodeBudget}, {policy.CodeColumn}}
	for i, err := range res.Rejections {
		var rej *policy.Rejection
		if !errors.As(err, &rej) || !slices.Equal(rej.Codes(), wantCodes[i]) {
			t.Errorf("rejection %d = %v, want codes %v", i, err, wantCodes[i])
		}
	}
	if !errors.Is(res.Rejections[0], cove.ErrBudgetExceeded) || !errors.Is(res.Rejections[1], cove.ErrOutOfScope) {
		t.Errorf("rejection categories: %v / %v", res.Rejections[0], res.Rejections[1])
	}
	for name, want := range map[string]float64{"beijing-air-quality": 0.5, "adult": 0.6} {
		if b := res.Budgets[name]; math.Abs(b.Spent-want) > 1e-9 || b.Reserved != 0 {
			t.Errorf("budget %s = %+v, want spent %g", name, b, want)
		}
	}
	// registered ×2, granted; the air job submitted/admitted/ran/released; the
	// Adult job (conditional data) submitted/queued/reviewed/ran/released; each
	// refused job submitted/rejected.
	if want := uint64(2 + 1 + 4 + 5 + 2*2); res.Ledger.Size != want {
		t.Errorf("ledger has %d entries, want %d", res.Ledger.Size, want)
	}
	for _, want := range []string{"ledger verified", "budget_exceeded", "column_not_granted", "Aotizhongxin", "Doctorate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
