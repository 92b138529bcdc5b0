package enclave

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

// hugeEpsilon makes the noise negligible: the Laplace scale is L0·L∞·Δ/ε, of
// order 10^-5 here, so released values show what bounding kept.
const hugeEpsilon = 1e6

func mustAccumulator(t testing.TB, s Spec) *Accumulator {
	t.Helper()
	a, err := NewAccumulator(s)
	if err != nil {
		t.Fatalf("NewAccumulator: %v", err)
	}
	return a
}

func mustRelease(t testing.TB, a *Accumulator) *Release {
	t.Helper()
	r, err := a.Release()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	return r
}

func TestBounding(t *testing.T) {
	tests := []struct {
		name      string
		agg       Aggregate
		l0, linf  int
		perUnit   float64 // what one unit contributes to a kept partition when saturated
		seal      bool
		wantTotal float64 // released total over all partitions, for 3 units
	}{
		{name: "count linf 1", agg: Count, l0: 2, linf: 1, perUnit: 1, wantTotal: 3 * 2 * 1},
		{name: "count linf 3", agg: Count, l0: 2, linf: 3, perUnit: 3, wantTotal: 3 * 2 * 3},
		{name: "count linf 3 sealed", agg: Count, l0: 2, linf: 3, perUnit: 3, seal: true, wantTotal: 3 * 2 * 3},
		{name: "sum clamps and bounds", agg: Sum, l0: 3, linf: 2, perUnit: 2 * 10, wantTotal: 3 * 3 * 2 * 10},
		{name: "sum sealed", agg: Sum, l0: 1, linf: 4, perUnit: 4 * 10, seal: true, wantTotal: 3 * 1 * 4 * 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{
				Output: "o", Aggregate: tt.agg, Epsilon: hugeEpsilon, Lower: 0, Upper: 10,
				MaxPartitions: tt.l0, MaxContributions: tt.linf,
				Partitions: []string{"p0", "p1", "p2", "p3", "p4", "p5"},
			}
			a := mustAccumulator(t, s)
			// Three units, each touching all six partitions ten times,
			// round-robin, with values above Upper (clamped to 10).
			for unit := uint64(1); unit <= 3; unit++ {
				for rep := 0; rep < 10; rep++ {
					for p := range s.Partitions {
						if err := a.Add(unit, p, 1000); err != nil {
							t.Fatalf("Add: %v", err)
						}
					}
				}
				if tt.seal {
					a.Seal(unit + 1)
					if len(a.units) != 0 {
						t.Fatalf("after Seal: %d live units, want 0", len(a.units))
					}
				}
			}
			r := mustRelease(t, a)
			var total float64
			for _, row := range r.Rows {
				if row.Value > 3*tt.perUnit+1e-3 {
					t.Errorf("partition %s: %v, more than 3 units × %v", row.Key, row.Value, tt.perUnit)
				}
				total += row.Value
			}
			if math.Abs(total-tt.wantTotal) > 1e-3 {
				t.Errorf("total = %v, want %v (units × L0 × per-partition bound)", total, tt.wantTotal)
			}
		})
	}
}

// TestBoundingMean: a unit may move a mean by at most L0·L∞ values.
func TestBoundingMean(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Mean, Epsilon: hugeEpsilon, Lower: 0, Upper: 10,
		MaxPartitions: 1, MaxContributions: 2, Partitions: []string{"p"}}
	a := mustAccumulator(t, s)
	// 8 honest units contribute 0 once; unit 99 contributes 10 a hundred times.
	for u := uint64(0); u < 8; u++ {
		a.Add(u, 0, 0)
	}
	for range 100 {
		a.Add(99, 0, 1e9)
	}
	r := mustRelease(t, a)
	// Kept: 8 zeros and 2 tens: mean 2 (the unbounded mean would be ≈ 9.3).
	if got := r.Rows[0].Value; math.Abs(got-2) > 1e-3 {
		t.Errorf("mean = %v, want 2", got)
	}
}

// frequencyBounds: for X ~ Binomial(n, 1/k), μ = n/k, the multiplicative
// Chernoff bounds give P(X ≥ 1.5μ) ≤ exp(−0.25μ/3) and P(X ≤ 0.5μ) ≤
// exp(−0.25μ/2). With μ = 200 the sum is < 1.2·10^-7 per cell, so a test over
// 10 cells fails by chance with probability < 1.2·10^-6.
const (
	freqTrials = 2000
	freqCells  = 10
)

func checkUniform(t *testing.T, what string, hits [freqCells]int) {
	t.Helper()
	mu := float64(freqTrials) / freqCells
	for v, h := range hits {
		if float64(h) <= 0.5*mu || float64(h) >= 1.5*mu {
			t.Errorf("%s: cell %d kept %d times in %d, want within (%.0f, %.0f); all: %v",
				what, v, h, freqTrials, 0.5*mu, 1.5*mu, hits)
		}
	}
}

// TestReservoirNotFirstK: a unit offers values 1..10, in order, to one
// partition with L∞ = 1. First-k would always keep 1; uniform sampling keeps
// each value with probability 1/10.
func TestReservoirNotFirstK(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Sum, Epsilon: hugeEpsilon, Lower: 0, Upper: 10,
		MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"p"}}
	var hits [freqCells]int
	for range freqTrials {
		a := mustAccumulator(t, s)
		for v := 1; v <= freqCells; v++ {
			a.Add(42, 0, float64(v))
		}
		kept := int(math.Round(mustRelease(t, a).Rows[0].Value))
		if kept < 1 || kept > freqCells {
			t.Fatalf("released %d, not one of the offered values", kept)
		}
		hits[kept-1]++
	}
	checkUniform(t, "kept value", hits)
}

// TestPartitionSamplingNotFirstK: a unit touches partitions 0..9, in order,
// with L0 = 1; each should be the kept one with probability 1/10.
func TestPartitionSamplingNotFirstK(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Count, Epsilon: hugeEpsilon,
		MaxPartitions: 1, MaxContributions: 1}
	for p := range freqCells {
		s.Partitions = append(s.Partitions, string(rune('a'+p)))
	}
	var hits [freqCells]int
	for range freqTrials {
		a := mustAccumulator(t, s)
		for p := range freqCells {
			a.Add(42, p, 0)
			a.Add(42, p, 0) // a second offer must not re-admit an evicted partition
		}
		kept := -1
		for i, row := range mustRelease(t, a).Rows {
			switch row.Value {
			case 0:
			case 1:
				if kept >= 0 {
					t.Fatalf("two partitions kept with L0 = 1")
				}
				kept = i
			default:
				t.Fatalf("partition count %v, want 0 or 1", row.Value)
			}
		}
		if kept < 0 {
			t.Fatalf("no partition kept")
		}
		hits[kept]++
	}
	checkUniform(t, "kept partition", hits)
}

func TestAddErrors(t *testing.T) {
	const secret = 98765.4321
	tests := []struct {
		name string
		run  func(a *Accumulator) error
	}{
		{name: "unit below sealed mark", run: func(a *Accumulator) error {
			a.Seal(100)
			if err := a.Add(100, 0, secret); err != nil {
				return errors.New("Add at the mark failed: " + err.Error())
			}
			return a.Add(99, 0, secret)
		}},
		{name: "lowering the mark does not reopen", run: func(a *Accumulator) error {
			a.Seal(100)
			a.Seal(10)
			return a.Add(50, 0, secret)
		}},
		{name: "partition negative", run: func(a *Accumulator) error { return a.Add(1, -1, secret) }},
		{name: "partition past the end", run: func(a *Accumulator) error { return a.Add(1, 4, secret) }},
		{name: "add after release", run: func(a *Accumulator) error {
			if _, err := a.Release(); err != nil {
				return errors.New("first Release failed: " + err.Error())
			}
			return a.Add(1, 0, secret)
		}},
		{name: "release twice", run: func(a *Accumulator) error {
			a.Add(1, 0, secret)
			if _, err := a.Release(); err != nil {
				return errors.New("first Release failed: " + err.Error())
			}
			r, err := a.Release()
			if r != nil {
				return errors.New("second Release returned a release")
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustAccumulator(t, validSpec(Sum))
			err := tt.run(a)
			if !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping cove.ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "98765") {
				t.Errorf("error %q quotes a contributed value", err)
			}
		})
	}
}

// TestAddIgnoresNaN: a NaN value is dropped, never an error (the guest could
// otherwise signal through failures), and never reaches a release.
func TestAddIgnoresNaN(t *testing.T) {
	for _, agg := range []Aggregate{Sum, Mean} {
		t.Run(string(agg), func(t *testing.T) {
			s := validSpec(agg)
			s.Epsilon = hugeEpsilon
			a := mustAccumulator(t, s)
			if err := a.Add(1, 0, math.NaN()); err != nil {
				t.Fatalf("Add(NaN) = %v", err)
			}
			a.Add(2, 0, math.Inf(1)) // clamped to Upper
			r := mustRelease(t, a)
			if got := r.Rows[0].Value; math.Abs(got-100) > 0.05 { // noise σ ≈ 8.5·10^-4 for sum
				t.Errorf("value = %v, want 100 (NaN dropped, +Inf clamped)", got)
			}
		})
	}
}

func TestReleaseShape(t *testing.T) {
	for _, agg := range []Aggregate{Count, Sum, Mean} {
		t.Run(string(agg), func(t *testing.T) {
			s := validSpec(agg)
			if agg == Count {
				s.Lower, s.Upper = math.NaN(), math.Inf(1) // ignored, must not leak into the release
			}
			a := mustAccumulator(t, s)
			for u := range uint64(50) {
				a.Add(u, int(u%3), float64(u)) // partition "west" gets nothing
			}
			r := mustRelease(t, a)
			if r.Output != s.Output || r.Aggregate != agg || r.Mechanism != "laplace" ||
				r.Epsilon != 1 || r.Delta != 0 || r.MaxPartitions != 2 || r.MaxContributions != 3 {
				t.Errorf("release header = %+v", r)
			}
			if len(r.Rows) != len(s.Partitions) {
				t.Fatalf("%d rows, want %d", len(r.Rows), len(s.Partitions))
			}
			for i, row := range r.Rows {
				if row.Key != s.Partitions[i] {
					t.Errorf("row %d key %q, want %q", i, row.Key, s.Partitions[i])
				}
				if !(row.NoiseStdDev > 0) || !(row.CILow <= row.CIHigh) {
					t.Errorf("row %s: sd %v, ci [%v, %v]", row.Key, row.NoiseStdDev, row.CILow, row.CIHigh)
				}
			}

			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			for _, key := range []string{`"output"`, `"aggregate"`, `"mechanism"`, `"epsilon"`, `"delta"`,
				`"lower"`, `"upper"`, `"max_partitions"`, `"max_contributions"`, `"rows"`,
				`"key"`, `"value"`, `"noise_std_dev"`, `"ci_low"`, `"ci_high"`} {
				if !strings.Contains(string(b), key) {
					t.Errorf("JSON lacks %s: %s", key, b)
				}
			}
			if lb := strings.ToLower(string(b)); strings.Contains(lb, ":nan") || strings.Contains(lb, "inf,") || strings.Contains(lb, "inf}") {
				t.Errorf("JSON contains a non-finite value: %s", b)
			}
			var back Release
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(&back, r) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, *r)
			}
		})
	}
}

// TestSpecCopied: the caller may reuse its Partitions slice.
func TestSpecCopied(t *testing.T) {
	s := validSpec(Count)
	a := mustAccumulator(t, s)
	s.Partitions[0] = "changed"
	if got := mustRelease(t, a).Rows[0].Key; got != "north" {
		t.Errorf("key = %q, want north", got)
	}
}
