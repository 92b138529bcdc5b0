package he

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

// TestAggregateSegments: a column encrypted in three segments (by three
// providers, in effect) fuses into the aggregate over every row; the mean's
// denominator and the sensitivity are the whole column's; a segment no
// group weights is skipped; gaps, overlaps, other bounds and other keys are
// refused.
func TestAggregateSegments(t *testing.T) {
	f := sharedFixture(t, CKKS)
	ctx := context.Background()
	const rows = 20000 // three segments of 9,000, 1,000 and 10,000 rows (several ciphertexts each)
	cuts := []int{0, 9000, 10000, rows}
	vals := make([]float64, rows)
	for i := range vals {
		vals[i] = float64((i*37)%100) + 0.5
	}
	enc := NewEncryptor(f.keys)
	var segs []Segment
	for s := range len(cuts) - 1 {
		col, err := enc.EncryptFloats(vals[cuts[s]:cuts[s+1]], 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, Segment{Start: cuts[s], Column: col})
	}
	// Two groups: even and odd rows, except the middle segment, which no
	// group weights (it is skipped). Mean weights 1 and 3.
	sumW, meanW := [][]float64{make([]float64, rows), make([]float64, rows)}, [][]float64{make([]float64, rows), make([]float64, rows)}
	exactSum, num, den := make([]float64, 2), make([]float64, 2), make([]float64, 2)
	for i := range rows {
		if i >= cuts[1] && i < cuts[2] {
			continue
		}
		g := i % 2
		sumW[g][i], meanW[g][i] = 1, float64(1+2*(i%3/2))
		exactSum[g] += vals[i]
		num[g] += meanW[g][i] * vals[i]
		den[g] += meanW[g][i]
	}
	ev := NewEvaluator(f.keys)
	for _, tc := range []struct {
		kind  Kind
		w     [][]float64
		exact []float64
	}{{Sum, sumW, exactSum}, {Mean, meanW, []float64{num[0] / den[0], num[1] / den[1]}}} {
		a, err := ev.AggregateSegments(ctx, segs, Spec{Kind: tc.kind, Weights: tc.w})
		if err != nil {
			t.Fatal(err)
		}
		// The sensitivity of the whole column: one row, one group, its
		// largest weight (a mean: over the whole group's total).
		l0, linf := a.Sensitivity()
		want := 100.0
		if tc.kind == Mean {
			want = 100 * 3 / min(den[0], den[1])
		}
		if l0 != 1 || math.Abs(linf-want) > 1e-12*want {
			t.Fatalf("%s: sensitivity l0 %d L∞ %v, want 1 and %v", tc.kind, l0, linf, want)
		}
		n, err := ev.AddNoise(a, DP{Mechanism: Laplace, Epsilon: 2})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.operator.Open(f.release(t, "segments-"+string(tc.kind), n))
		if err != nil {
			t.Fatal(err)
		}
		tol := n.Noise().Interval(1e-9)
		for g := range 2 {
			t.Logf("%s group %d: released %.3f exact %.3f (±%.3f)", tc.kind, g, got[g], tc.exact[g], tol)
			if math.Abs(got[g]-tc.exact[g]) > tol {
				t.Errorf("%s group %d: %v, exact %v beyond ±%v", tc.kind, g, got[g], tc.exact[g], tol)
			}
		}
	}

	// Refusals, before any ciphertext is touched.
	other, err := enc.EncryptFloats(vals[:cuts[1]], 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	foreign := *segs[1].Column
	foreign.keys[0] ^= 1
	for name, tc := range map[string]struct {
		segs []Segment
		want string
	}{
		"gap":          {[]Segment{segs[0], segs[2]}, "no segment covers rows [9000, 10000)"},
		"late start":   {[]Segment{segs[1], segs[2]}, "no segment covers rows [0, 9000)"},
		"overlap":      {[]Segment{segs[0], {Start: 8999, Column: segs[1].Column}, segs[2]}, "already covered"},
		"other bounds": {[]Segment{{Start: 0, Column: other}, segs[1], segs[2]}, "bounds"},
		"other keys":   {[]Segment{segs[0], {Start: cuts[1], Column: &foreign}, segs[2]}, "other keys"},
		"short":        {segs[:2], "weights"},
	} {
		_, err := ev.AggregateSegments(ctx, tc.segs, Spec{Kind: Sum, Weights: sumW})
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid naming %q", name, err, tc.want)
		}
	}
}
