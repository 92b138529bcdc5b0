package enclave

import (
	"math"
	"math/rand/v2"
	"testing"
)

// contribution is one row of a synthetic dataset.
type contribution struct {
	unit  uint64
	part  int
	value float64
}

// realisticData builds a fixed dataset that respects L0 = 2 and L∞ = 2, so
// bounding drops nothing and the exact aggregates are known: 1000 units, each
// in 1–2 of 5 partitions with 1–2 values drawn from [−10, 60) (clamped to
// [0, 50], so clamping is exercised).
func realisticData() (rows []contribution, nParts int) {
	r := rand.New(rand.NewPCG(1, 2)) // data, not noise: fixed for reproducibility
	const units, parts = 1000, 5
	for u := range uint64(units) {
		first := r.IntN(parts)
		touched := []int{first}
		if r.IntN(2) == 0 {
			touched = append(touched, (first+1+r.IntN(parts-1))%parts)
		}
		for _, p := range touched {
			for range 1 + r.IntN(2) {
				rows = append(rows, contribution{u, p, -10 + 70*r.Float64()})
			}
		}
	}
	return rows, parts
}

func exact(agg Aggregate, rows []contribution, nParts int, lower, upper float64) []float64 {
	n := make([]float64, nParts)
	sum := make([]float64, nParts)
	for _, c := range rows {
		n[c.part]++
		sum[c.part] += min(max(c.value, lower), upper)
	}
	switch agg {
	case Count:
		return n
	case Sum:
		return sum
	}
	for i := range sum {
		sum[i] /= n[i]
	}
	return sum
}

// TestAccuracy releases the same realistic dataset many times and checks the
// noise against what each Row claims.
//
// Failure probabilities (per aggregate), for count and sum where the noise is
// Laplace with standard deviation σ = NoiseStdDev:
//   - P(|noise| > 6σ) = exp(−6√2) ≈ 2.1·10^-4 per row, so over 2000 rows the
//     number of such rows is ≈ Poisson(0.41); allowing 4, a false failure has
//     probability < 10^-4.
//   - The empirical standard deviation over 2000 Laplace samples has a
//     relative spread of ≈ √(5/2000)/2 = 2.5%; ±15% is 6 of those (< 10^-6 by
//     the normal approximation).
//   - 95% confidence intervals: coverage over 2000 rows has a spread of
//     0.5%; ≥ 92% is 6 of those below 95%.
//
// For mean, NoiseStdDev is an approximation (delta method), so only the 6σ
// rule (same allowance) and coverage are asserted, and the empirical spread
// is required to be within [0.8, 1.25] of the claim (observed ≈ 1.02 with
// ≈ 450 values per partition; the approximation is meant for such counts).
func TestAccuracy(t *testing.T) {
	rows, nParts := realisticData()
	tests := []struct {
		name string
		agg  Aggregate
		reps int
	}{
		{name: "count", agg: Count, reps: 400},
		{name: "sum", agg: Sum, reps: 400},
		{name: "mean", agg: Mean, reps: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Output: "o", Aggregate: tt.agg, Epsilon: 1, Lower: 0, Upper: 50,
				MaxPartitions: 2, MaxContributions: 2, Partitions: []string{"a", "b", "c", "d", "e"}}
			want := exact(tt.agg, rows, nParts, s.Lower, s.Upper)
			var n, beyond6, covered int
			var sqErr, sqClaim float64
			for range tt.reps {
				a := mustAccumulator(t, s)
				for _, c := range rows {
					if err := a.Add(c.unit, c.part, c.value); err != nil {
						t.Fatalf("Add: %v", err)
					}
				}
				r := mustRelease(t, a)
				for i, row := range r.Rows {
					d := row.Value - want[i]
					n++
					sqErr += d * d
					sqClaim += row.NoiseStdDev * row.NoiseStdDev
					if math.Abs(d) > 6*row.NoiseStdDev {
						beyond6++
					}
					if row.CILow <= want[i] && want[i] <= row.CIHigh {
						covered++
					}
				}
			}
			empirical, claimed := math.Sqrt(sqErr/float64(n)), math.Sqrt(sqClaim/float64(n))
			coverage := float64(covered) / float64(n)
			t.Logf("%d rows: empirical sd %.4g, claimed %.4g (ratio %.3f), beyond 6σ %d, CI coverage %.4f",
				n, empirical, claimed, empirical/claimed, beyond6, coverage)
			if beyond6 > 4 {
				t.Errorf("%d of %d rows beyond 6·NoiseStdDev, want ≤ 4", beyond6, n)
			}
			if coverage < 0.92 {
				t.Errorf("95%% CI coverage %.4f, want ≥ 0.92", coverage)
			}
			ratio := empirical / claimed
			lo, hi := 0.85, 1.15
			if tt.agg == Mean {
				lo, hi = 0.8, 1.25
			}
			if ratio < lo || ratio > hi {
				t.Errorf("empirical sd / NoiseStdDev = %.3f, want in [%.2f, %.2f]", ratio, lo, hi)
			}
		})
	}
}
