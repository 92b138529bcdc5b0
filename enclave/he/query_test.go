package he

import (
	"context"
	"math"
	"testing"
)

// TestOperatorQuery: the operator encrypts a weight per district under its
// own key; the enclave applies it to public aggregates (rows: indicators,
// columns: districts), adds noise under encryption; only the operator opens
// the reply.
func TestOperatorQuery(t *testing.T) {
	f := sharedFixture(t, CKKS)
	weights := []float64{0.5, 1.5, -2, 3, 0.25} // the operator's secret vector
	X := [][]float64{
		{80.0, 85.5, 79.6, 71.9, 92.7},
		{12, 15, 9, 22, 30},
		{1, 1, 1, 1, 1},
	}
	q, err := f.operator.EncryptQuery(weights)
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
	reply, err := EvaluateQuery(context.Background(), q, X, QueryNoise{DP: DP{Mechanism: Laplace, Epsilon: 1}, L0: 1, LInf: 0.1})
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
	tol := reply.Noise().Interval(1e-9)
	for r, row := range X {
		var want float64
		for j, x := range row {
			want += weights[j] * x
		}
		t.Logf("row %d: reply %.4f exact %.4f (±%.3f)", r, got[r], want, tol)
		if math.Abs(got[r]-want) > tol {
			t.Errorf("row %d: %v, want %v ± %v", r, got[r], want, tol)
		}
	}
	// Another key (the platform's, a provider's) cannot open the reply.
	other, _ := NewOperator(f.params)
	if bad, err := other.OpenReply(reply); err == nil && math.Abs(bad[0]-got[0]) < 1 {
		t.Fatal("another key opened the reply")
	}
}
