package he

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
)

// runQuery encrypts vec under the fixture operator's key, evaluates it
// against X through the serialized forms and opens the reply.
func runQuery(t *testing.T, f *fixture, vec []float64, X [][]float64, qn QueryNoise) ([]float64, QueryNoiseInfo) {
	t.Helper()
	q, err := f.operator.EncryptQuery(vec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if q, err = UnmarshalQuery(b); err != nil {
		t.Fatal(err)
	}
	reply, err := EvaluateQuery(context.Background(), q, X, qn)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := reply.MarshalBinary()
	if reply, err = UnmarshalQueryReply(rb); err != nil {
		t.Fatal(err)
	}
	got, err := f.operator.OpenReply(reply)
	if err != nil {
		t.Fatal(err)
	}
	return got, reply.Noise()
}

// TestOperatorQuery: the operator encrypts a weight per district under its
// own key; the enclave noises the public aggregates (rows: indicators,
// columns: districts) in the clear and applies the query to them under
// encryption; only the operator opens the reply, which is within the
// interval the operator computes from the reported per-element noise.
func TestOperatorQuery(t *testing.T) {
	f := sharedFixture(t, CKKS)
	weights := []float64{0.5, 1.5, -2, 3, 0.25} // the operator's secret vector
	X := [][]float64{
		{80.0, 85.5, 79.6, 71.9, 92.7},
		{12, 15, 9, 22, 30},
		{1, 1, 1, 1, 1},
	}
	orig := make([][]float64, len(X))
	for r := range X {
		orig[r] = slices.Clone(X[r])
	}
	span := []float64{0.1, 0.1, 0.2, 0.1, 0.4}
	for _, dp := range []DP{{Mechanism: Laplace, Epsilon: 1}, {Mechanism: Gaussian, Epsilon: 1, Delta: 1e-6}} {
		t.Run(string(dp.Mechanism), func(t *testing.T) {
			got, nz := runQuery(t, f, weights, X, QueryNoise{DP: dp, Span: span})
			if !reflect.DeepEqual(X, orig) {
				t.Fatal("EvaluateQuery modified X")
			}
			if nz.Mechanism != dp.Mechanism || nz.L0 != int64(len(span)) || !slices.Equal(nz.LInf, span) || len(nz.Std) != len(span) {
				t.Fatalf("noise info %+v", nz)
			}
			for j, s := range span {
				want := math.Sqrt2 * 5 * s / dp.Epsilon // Laplace b_j = J·span_j/ε
				if dp.Mechanism == Gaussian {
					want = nz.Scale[j] // σ_j: the noise package's calibration, ∝ span_j
					if r := nz.Scale[j] / nz.Scale[0]; math.Abs(r-s/span[0]) > 1e-2*r {
						t.Errorf("σ_%d/σ_0 = %v, want span ratio %v", j, r, s/span[0])
					}
				}
				if math.Abs(nz.Std[j]-want) > 1e-9*want {
					t.Errorf("column %d: std %v, want %v", j, nz.Std[j], want)
				}
			}
			tol, err := nz.Interval(weights, 1e-9)
			if err != nil {
				t.Fatal(err)
			}
			sd, _ := nz.StdOf(weights)
			exact := 0
			for r, row := range X {
				var want float64
				for j, x := range row {
					want += weights[j] * x
				}
				t.Logf("row %d: reply %.4f exact %.4f (std %.3f, ±%.3f)", r, got[r], want, sd, tol)
				if math.Abs(got[r]-want) > tol {
					t.Errorf("row %d: %v, want %v ± %v", r, got[r], want, tol)
				}
				if math.Abs(got[r]-want) < 1e-4 {
					exact++
				}
			}
			if exact == len(X) {
				t.Error("every reply value is exact: no noise")
			}
		})
	}
	// Another key (the platform's, a provider's) cannot open a reply.
	q, _ := f.operator.EncryptQuery(weights)
	reply, err := EvaluateQuery(context.Background(), q, X, QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, Span: span})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.operator.OpenReply(reply)
	other, _ := NewOperator(f.params)
	if bad, err := other.OpenReply(reply); err == nil && math.Abs(bad[0]-got[0]) < 1 {
		t.Fatal("another key opened the reply")
	}
	// The spans must cover every column and be positive.
	for _, bad := range [][]float64{{0.1}, {0.1, 0.1, 0, 0.1, 0.1}, {0.1, 0.1, math.NaN(), 0.1, 0.1}} {
		if _, err := EvaluateQuery(context.Background(), q, X, QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, Span: bad}); err == nil {
			t.Errorf("spans %v accepted", bad)
		}
	}
}

// TestDishonestQuery: an operator that sends a huge vector (10^6 per
// entry, far beyond anything it might have declared) does not get an
// un-noised aggregate. The noise is on X, so the reported per-element noise
// does not depend on the vector (the enclave never sees it), and y/10^6
// still carries the per-element noise: over fresh queries its spread around
// the exact value matches the reported scale, not zero.
func TestDishonestQuery(t *testing.T) {
	f := sharedFixture(t, CKKS)
	const G = 64
	X := make([][]float64, G)
	for g := range X {
		X[g] = []float64{float64(10 * g), 1000 + float64(g)}
	}
	qn := QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, Span: []float64{10, 100}}
	_, honest := runQuery(t, f, []float64{0.5, -0.25}, X, qn)
	for _, c := range []struct {
		name string
		vec  []float64
	}{
		{"one-hot 1e6", []float64{1e6, 0}},
		{"1e6, -1e6", []float64{1e6, -1e6}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var res []float64 // (y − q·X)/10^6 over all groups of all queries
			outside := 0
			for range 4 {
				got, nz := runQuery(t, f, c.vec, X, qn)
				if !reflect.DeepEqual(nz, honest) {
					t.Fatalf("noise info depends on the vector: %+v vs %+v", nz, honest)
				}
				half, err := nz.Interval(c.vec, 0.05)
				if err != nil {
					t.Fatal(err)
				}
				for g, row := range X {
					d := got[g] - (c.vec[0]*row[0] + c.vec[1]*row[1])
					if math.Abs(d) > half {
						outside++
					}
					res = append(res, d/1e6)
				}
			}
			sd, _ := honest.StdOf(c.vec)
			sd /= 1e6 // the noise of y/10^6
			var m, v float64
			for _, r := range res {
				m += r
			}
			m /= float64(len(res))
			for _, r := range res {
				v += (r - m) * (r - m)
			}
			spread := math.Sqrt(v / float64(len(res)-1))
			t.Logf("%d values of y/1e6: mean error %.2f, spread %.2f, reported std %.2f (per element %v); %d outside the 95%% interval",
				len(res), m, spread, sd, honest.Std, outside)
			// 256 Laplace draws: the sample std is within ±10% of σ with
			// high probability; [0.7, 1.4] is more than four of its
			// standard deviations either side.
			if spread < 0.7*sd || spread > 1.4*sd {
				t.Errorf("spread of y/1e6 is %v, reported noise std %v", spread, sd)
			}
			if sd < honest.Std[0] {
				t.Errorf("noise of y/1e6 %v below the per-element std %v", sd, honest.Std[0])
			}
			if outside > len(res)/10 {
				t.Errorf("%d of %d values outside the 95%% interval", outside, len(res))
			}
		})
	}
}

// TestQueryLargeAggregateClampedAfterNoise: an aggregate beyond the
// encoding's ±2^30 is not refused (a refusal decided on X before the noise
// would disclose X); X̃ is clamped after the noise and the count told.
func TestQueryLargeAggregateClampedAfterNoise(t *testing.T) {
	f := sharedFixture(t, CKKS)
	X := [][]float64{{3 * (1 << 30), 10}, {-5 * (1 << 30), 20}}
	got, nz := runQuery(t, f, []float64{1, 1}, X, QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, Span: []float64{1, 1}})
	if nz.Clamped != 2 {
		t.Fatalf("clamped %d elements, want 2", nz.Clamped)
	}
	tol, err := nz.Interval([]float64{1, 1}, 1e-9)
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range []float64{1<<30 + 10, -(1 << 30) + 20} {
		if math.Abs(got[r]-want) > tol+1 { // + the CKKS error at 2^30
			t.Errorf("row %d: %v, want %v ± %v (clamped at ±2^30)", r, got[r], want, tol)
		}
	}
}
