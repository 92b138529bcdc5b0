package dpaudit_test

import (
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/dpaudit"
)

// adultByEducation: every Adult row, one unit per row, key education, value age.
func adultByEducation(tb testing.TB) []dpaudit.Contribution {
	b, err := demodata.Open(demodata.Adult)
	if err != nil {
		tb.Fatal(err)
	}
	rd, err := connectors.OpenBytes("adult.parquet", b, connectors.Options{Columns: []string{"age", "education"}})
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Release()
	var out []dpaudit.Contribution
	var row uint64
	for rd.Next() {
		rec := rd.RecordBatch()
		age, edu := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
		for i := range int(rec.NumRows()) {
			if edu.IsValid(i) && age.IsValid(i) {
				out = append(out, dpaudit.Contribution{Unit: row, Key: edu.Value(i), Value: float64(age.Value(i))})
			}
			row++
		}
	}
	return out
}

// exact computes the raw (bounded, unnoised) aggregate per key.
func exact(agg enclave.Aggregate, data []dpaudit.Contribution, key string, rank float64) float64 {
	var xs []float64
	for _, c := range data {
		if c.Key == key {
			xs = append(xs, math.Min(math.Max(c.Value, 0), 100))
		}
	}
	n := float64(len(xs))
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	switch agg {
	case enclave.Count:
		return n
	case enclave.Sum:
		return s
	case enclave.Mean:
		return s / n
	case enclave.Variance:
		return s2/n - (s/n)*(s/n)
	case enclave.StdDev:
		return math.Sqrt(s2/n - (s/n)*(s/n))
	case enclave.Quantiles:
		slices.Sort(xs)
		return xs[min(int(rank*n), len(xs)-1)]
	}
	return math.NaN()
}

// BenchmarkUtilityAdult releases age aggregates by education (16 public
// partitions, 32,561 units, ε 1, age in [0, 100]) b.N times and compares the
// observed error with what the release claims (Row.NoiseStdDev, the
// mechanism's σ). Run it with
//
//	go test ./enclave/dpaudit/ -run '^$' -bench UtilityAdult -benchtime 200x
//
// err/theory ≈ 1 means the noise is what the mechanism says; quantiles have
// no closed-form error (only the observed RMSE is reported).
func BenchmarkUtilityAdult(b *testing.B) {
	data := adultByEducation(b)
	keys := demodata.AdultEducation()
	for _, tc := range []struct {
		agg  enclave.Aggregate
		mech string
	}{
		{enclave.Count, enclave.MechanismLaplace}, {enclave.Sum, enclave.MechanismLaplace},
		{enclave.Mean, enclave.MechanismLaplace}, {enclave.Variance, enclave.MechanismLaplace},
		{enclave.StdDev, enclave.MechanismLaplace}, {enclave.Quantiles, enclave.MechanismLaplace},
		{enclave.Count, enclave.MechanismGaussian}, {enclave.Sum, enclave.MechanismGaussian},
		{enclave.Mean, enclave.MechanismGaussian},
	} {
		b.Run(string(tc.agg)+"/"+tc.mech, func(b *testing.B) {
			spec := enclave.Spec{Output: "age", Aggregate: tc.agg, Mechanism: tc.mech, Epsilon: 1,
				MaxPartitions: 1, MaxContributions: 1, Partitions: keys}
			if tc.mech == enclave.MechanismGaussian {
				spec.Delta = 1e-6
			}
			if tc.agg != enclave.Count {
				spec.Lower, spec.Upper = 0, 100
			}
			if tc.agg == enclave.Quantiles {
				spec.Ranks = []float64{0.5}
			}
			want := map[string]float64{}
			for _, k := range keys {
				want[k] = exact(tc.agg, data, k, 0.5)
			}
			var sq, claim float64
			var n int
			for range b.N {
				r, err := dpaudit.Release(spec, data)
				if err != nil {
					b.Fatal(err)
				}
				for _, row := range r.Rows {
					d := row.Value - want[row.Key]
					sq += d * d
					claim += row.NoiseStdDev * row.NoiseStdDev
					n++
				}
			}
			obs, th := math.Sqrt(sq/float64(n)), math.Sqrt(claim/float64(n))
			b.ReportMetric(obs, "rmse")
			if th > 0 {
				b.ReportMetric(th, "theory")
				b.ReportMetric(obs/th, "err/theory")
			}
			b.Logf("%-9s %-8s %5d values: observed RMSE %.4g, theoretical %.4g, ratio %.3f", tc.agg, tc.mech, n, obs, th, obs/th)
		})
	}
}
