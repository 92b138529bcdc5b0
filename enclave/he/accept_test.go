package he

import (
	"context"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// airQuality reads station, year and PM2.5 from the embedded demo data,
// dropping rows without PM2.5 (a provider decides how nulls enter).
func airQuality(t testing.TB) (stations []string, years []int64, pm []float64) {
	t.Helper()
	b, err := demodata.Open("beijing-air-quality")
	if err != nil {
		t.Fatal(err)
	}
	r, err := connectors.OpenBytes("beijing-air-quality.parquet", b, connectors.Options{Columns: []string{"station", "year", "PM2.5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		st := rec.Column(0).(*array.String)
		yr := rec.Column(1).(*array.Int64)
		v := rec.Column(2).(*array.Float64)
		for i := range int(rec.NumRows()) {
			if v.IsNull(i) {
				continue
			}
			stations = append(stations, st.Value(i))
			years = append(years, yr.Value(i))
			pm = append(pm, v.Value(i))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return stations, years, pm
}

// table is one provider's table: public columns in the clear, PM2.5 to encrypt.
type table struct {
	years []int64
	pm    []float64
}

// TestThreeProvidersRelease is the acceptance test: two air-quality station
// groups (east and west) and a third department (health: a synthetic daily
// indicator) generate a collective CKKS key; the station groups encrypt
// PM2.5; the host computes the mean PM2.5 per year over both groups (fusion
// of two providers' encrypted columns), adds Laplace noise under
// encryption, and every provider contributes its key-switch share to
// re-encrypt it to the operator, who decodes it with DecodePublic. The
// released means match the exact ones within the stated noise interval.
func TestThreeProvidersRelease(t *testing.T) {
	f := sharedFixture(t, CKKS)
	stations, years, pm := airQuality(t)
	east := map[string]bool{"Aotizhongxin": true, "Changping": true, "Dingling": true, "Dongsi": true, "Guanyuan": true, "Gucheng": true}
	var te, tw table
	for i := range pm {
		tb := &tw
		if east[stations[i]] {
			tb = &te
		}
		tb.years = append(tb.years, years[i])
		tb.pm = append(tb.pm, pm[i])
	}
	if len(te.pm) == 0 || len(tw.pm) == 0 {
		t.Fatal("a station group is empty")
	}
	const lo, hi = 0, 1000
	groups := []int64{2013, 2014, 2015, 2016, 2017}
	count := make([]float64, len(groups))
	exact := make([]float64, len(groups))
	for _, tb := range []table{te, tw} {
		for i, y := range tb.years {
			g := int(y - 2013)
			count[g]++
			exact[g] += min(max(tb.pm[i], lo), hi)
		}
	}
	for g := range exact {
		exact[g] /= count[g]
	}

	// Each station group encrypts its own column under the collective key.
	ev := NewEvaluator(f.keys)
	var aggs []*Aggregate
	for _, tb := range []table{te, tw} {
		col, err := NewEncryptor(f.keys).EncryptFloats(tb.pm, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		// The column rests in the sandbox serialized.
		b, err := col.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if col, err = UnmarshalColumn(f.keys, b); err != nil {
			t.Fatal(err)
		}
		// The guest's weights from public columns: 1/n(year) on that year's rows.
		spec := Spec{Kind: WeightedSum, Weights: make([][]float64, len(groups))}
		for g := range groups {
			spec.Weights[g] = make([]float64, len(tb.years))
		}
		for i, y := range tb.years {
			g := int(y - 2013)
			spec.Weights[g][i] = 1 / count[g]
		}
		a, err := ev.Aggregate(context.Background(), col, spec)
		if err != nil {
			t.Fatal(err)
		}
		aggs = append(aggs, a)
	}
	fused, err := ev.Add(aggs...)
	if err != nil {
		t.Fatal(err)
	}
	noised, err := ev.AddNoise(fused, DP{Mechanism: Laplace, Epsilon: 1})
	if err != nil {
		t.Fatal(err)
	}
	rel := f.release(t, "job-air-1", noised)
	b, err := rel.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if rel, err = UnmarshalRelease(b); err != nil {
		t.Fatal(err)
	}
	got, err := f.operator.Open(rel)
	if err != nil {
		t.Fatal(err)
	}
	info := rel.Noise()
	tol := info.Interval(1e-9)
	t.Logf("noise: DP std %.3g, flooding std %.3g, grid %.3g (log precision %v); tolerance %.3g", info.Std, info.FloodStdOut, info.Rounding, rel.meta.LogPrecision, tol)
	for g, y := range groups {
		t.Logf("%d: released %.4f exact %.4f (n = %.0f)", y, got[g], exact[g], count[g])
		if math.Abs(got[g]-exact[g]) > tol {
			t.Errorf("%d: released %v, exact %v, beyond ±%v", y, got[g], exact[g], tol)
		}
		if got[g] == exact[g] {
			t.Errorf("%d: released the exact mean: no noise was added", y)
		}
	}
	for i, l := range f.logs {
		if l.Count() != 1 {
			t.Errorf("provider %d recorded %d shares, want 1", i, l.Count())
		}
	}
}
