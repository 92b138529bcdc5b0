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
	// days_by_category: per station-day, the mean of ≥ 18 non-null readings
	// and its AQI category (examples/c/pm25days/job.c).
	type day struct {
		st   string
		y    int64
		m, d int64
	}
	days := map[day]*acc{}
	read("beijing-air-quality", []string{"station", "year", "month", "day", "PM2.5"}, func(c map[string]arrayAt, i int) {
		if c["PM2.5"].IsNull(i) {
			return
		}
		k := day{c["station"].str(i), c["year"].i64(i), c["month"].i64(i), c["day"].i64(i)}
		a := days[k]
		if a == nil {
			a = &acc{}
			days[k] = a
		}
		a.sum += c["PM2.5"].f64(i)
		a.n++
	})
	categories := map[string]float64{}
	for k, a := range days {
		if a.n < 18 {
			continue
		}
		m, cat := a.sum/a.n, "severely-polluted"
		for _, b := range []struct {
			upTo float64
			name string
		}{{35, "excellent"}, {75, "good"}, {115, "lightly-polluted"}, {150, "moderately-polluted"}, {250, "heavily-polluted"}} {
			if m <= b.upTo {
				cat = b.name
				break
			}
		}
		categories[k.st+"|"+strconv.FormatInt(k.y, 10)+"|"+cat]++
	}
	exact := map[string]map[string]float64{"days_by_category": categories}
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

	if len(res.Releases) != 4 {
		t.Fatalf("%d releases, want 4 (two plan jobs, a per-unit and a block job)", len(res.Releases))
	}
	wantModes := []string{jobs.ModePlan, jobs.ModePlan, jobs.ModeUnit, jobs.ModeBlock}
	for i, rel := range res.Releases {
		if rel.Mode != wantModes[i] {
			t.Errorf("release %d ran in mode %q, want %q", i, rel.Mode, wantModes[i])
		}
	}
	checkCoefficients(t, dir, res.Releases[3])
	// Laplace noise has heavy tails: over m released values the largest
	// |noise|/σ is about ln(m)/√2, so a 6σ check fails every few dozen runs
	// with the ~450 values here. The tolerance below is exceeded by chance
	// once in 10^5 runs.
	m := 0
	for _, rel := range res.Releases[:3] {
		for _, o := range rel.Outputs {
			m += len(o.Rows)
		}
	}
	k := max(6, math.Log(float64(m)/1e-5)/math.Sqrt2)
	checked := 0
	for _, rel := range res.Releases[:3] {
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
				if d := math.Abs(r.Value - want); d > k*r.NoiseStdDev {
					t.Errorf("%s %s: released %.3f, exact %.3f, off by %.3f > %.1fσ = %.3f", o.Name, key, r.Value, want, d, k, k*r.NoiseStdDev)
				}
				checked++
			}
		}
	}
	// 57 station-years with data (2013 Mar–2017 Feb at 12 stations: 12×5 minus none)
	// plus 16 education levels and 14 occupations, plus station-year
	// categories with days.
	if checked < 60+16+14-5+100 {
		t.Errorf("only %d released values had an exact counterpart", checked)
	}
	t.Logf("%d released values within %.1fσ of the exact aggregate", checked, k)

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
	// Air quality: the plan job 0.5, the per-unit job 0.3 and the block job
	// 0.5, each of those two plus 0.01 for its noisy count of failures.
	for name, want := range map[string]float64{"beijing-air-quality": 0.5 + 0.31 + 0.51, "adult": 0.6} {
		if b := res.Budgets[name]; math.Abs(b.Spent-want) > 1e-9 || b.Reserved != 0 {
			t.Errorf("budget %s = %+v, want spent %g", name, b, want)
		}
	}
	// registered ×2, granted; the three air jobs submitted/admitted/ran/released;
	// the Adult job (conditional data) submitted/queued/reviewed/ran/released;
	// each refused job submitted/rejected.
	if want := uint64(2 + 1 + 3*4 + 5 + 2*2); res.Ledger.Size != want {
		t.Errorf("ledger has %d entries, want %d", res.Ledger.Size, want)
	}
	for _, want := range []string{"ledger verified", "budget_exceeded", "column_not_granted", "Aotizhongxin", "Doctorate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

// checkCoefficients checks the block job's release (mode block, 1,000
// blocks of station-days, OLS of PM2.5 on TEMP, DEWP and WSPM per block) against
// the same estimator computed natively on 1,000 blocks of another split: the
// mean over blocks of each block's clamped coefficients, within 6 noise σ
// plus 6 standard errors of that mean (the job's split is secret, so the
// two means differ by the split too).
func checkCoefficients(t *testing.T, dir string, rel *jobs.Release) {
	t.Helper()
	const k = 1000
	bounds := [][2]float64{{0, 300}, {-15, 5}, {-5, 15}, {-25, 5}} // the manifest's
	type day struct {
		st      string
		y, m, d int64
	}
	var xs [k][][4]float64 // per block: rows of (PM2.5, TEMP, DEWP, WSPM)
	r, err := connectors.OpenFile(filepath.Join(dir, "datasets", "beijing-air-quality.parquet"),
		connectors.Options{Columns: []string{"station", "year", "month", "day", "PM2.5", "TEMP", "DEWP", "WSPM"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		c := func(j int) arrayAt { return arrayAt{rec.Column(j)} }
		for i := range int(rec.NumRows()) {
			if c(4).IsNull(i) || c(5).IsNull(i) || c(6).IsNull(i) || c(7).IsNull(i) {
				continue
			}
			key := day{c(0).str(i), c(1).i64(i), c(2).i64(i), c(3).i64(i)}
			h := uint64(14695981039346656037)
			for _, b := range []byte(key.st + "|" + strconv.FormatInt(key.y*10000+key.m*100+key.d, 10)) {
				h = (h ^ uint64(b)) * 1099511628211
			}
			xs[h%k] = append(xs[h%k], [4]float64{c(4).f64(i), c(5).f64(i), c(6).f64(i), c(7).f64(i)})
		}
	}
	var sum, sq [4]float64
	for _, rows := range xs {
		beta, ok := ols(rows)
		if !ok {
			beta = [4]float64{140, -4, 4, -5} // the manifest's default: a block whose fit fails
		}
		for j := range 4 {
			v := min(max(beta[j], bounds[j][0]), bounds[j][1])
			sum[j] += v
			sq[j] += v * v
		}
	}
	o := rel.Outputs[0]
	if o.Aggregate != "block_mean" || len(o.Rows) != 4 {
		t.Fatalf("block release %+v", o)
	}
	for j, row := range o.Rows {
		mean := sum[j] / k
		se := math.Sqrt(max(sq[j]/k-mean*mean, 0) / k)
		if d := math.Abs(row.Value - mean); d > 6*row.NoiseStdDev+6*se {
			t.Errorf("%s: released %.3f, native mean over blocks %.3f (σ %.3f, se %.3f)", row.Key[0], row.Value, mean, row.NoiseStdDev, se)
		}
		t.Logf("coefficient %s: released %.3f, native mean over 1,000 blocks %.3f (σ %.3f, se %.3f)", row.Key[0], row.Value, mean, row.NoiseStdDev, se)
	}
}

// ols fits y = b0 + b1·x1 + b2·x2 + b3·x3 by least squares over rows of
// (y, x1, x2, x3) (normal equations, Gaussian elimination); false when the
// system is singular.
func ols(rows [][4]float64) ([4]float64, bool) {
	var a [4][5]float64
	for _, r := range rows {
		x := [4]float64{1, r[1], r[2], r[3]}
		for i := range 4 {
			for j := range 4 {
				a[i][j] += x[i] * x[j]
			}
			a[i][4] += x[i] * r[0]
		}
	}
	for c := range 4 {
		p := c
		for i := c + 1; i < 4; i++ {
			if math.Abs(a[i][c]) > math.Abs(a[p][c]) {
				p = i
			}
		}
		if math.Abs(a[p][c]) < 1e-9 {
			return [4]float64{}, false
		}
		a[c], a[p] = a[p], a[c]
		for i := range 4 {
			if i != c {
				f := a[i][c] / a[c][c]
				for j := c; j < 5; j++ {
					a[i][j] -= f * a[c][j]
				}
			}
		}
	}
	var b [4]float64
	for i := range 4 {
		b[i] = a[i][4] / a[i][i]
	}
	return b, len(rows) >= 8
}
