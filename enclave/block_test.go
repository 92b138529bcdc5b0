package enclave

import (
	"errors"
	"math"
	"testing"

	"github.com/covedata/cove"
)

func TestBlockMeanRelease(t *testing.T) {
	s := BlockSpec{Output: "coef", Epsilon: hugeEpsilon, Blocks: 4, Dimension: 2, Labels: []string{"a", "b"}, Lower: -10, Upper: 10, Default: []float64{1, -1}}
	a, err := NewBlockAccumulator(s)
	if err != nil {
		t.Fatal(err)
	}
	// Block 3 gives nothing (it failed or was empty): it counts as Default.
	for b, v := range [][]float64{{2, 4}, {100, math.NaN()}, {-3, 0}} {
		if err := a.Add(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Blocks(); got != 3 {
		t.Fatalf("Blocks() = %d, want 3", got)
	}
	r, err := a.Release()
	if err != nil {
		t.Fatal(err)
	}
	// Coordinate a: (2 + 10 (clamped) − 3 + 1) / 4; b: (4 − 1 (NaN → default) + 0 − 1) / 4.
	want := map[string]float64{"a": 10.0 / 4, "b": 2.0 / 4}
	if len(r.Rows) != 2 || r.Aggregate != BlockMean {
		t.Fatalf("release %+v", r)
	}
	for _, row := range r.Rows {
		if math.Abs(row.Value-want[row.Key]) > 1e-3 {
			t.Errorf("%s = %v, want %v", row.Key, row.Value, want[row.Key])
		}
		if !(row.CILow <= row.Value && row.Value <= row.CIHigh) {
			t.Errorf("%s: value %v outside its interval [%v, %v]", row.Key, row.Value, row.CILow, row.CIHigh)
		}
	}
	if n := r.Noise[0]; n.L0 != 2 || n.LInf != 20/r.Granularity {
		t.Errorf("noise sensitivities L0 %d, L∞ %v: want 2 and the bounds' span", n.L0, n.LInf)
	}
	if _, err := a.Release(); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("second Release: %v", err)
	}
}

func TestBlockSpecErrors(t *testing.T) {
	ok := BlockSpec{Output: "o", Epsilon: 1, Blocks: 10, Dimension: 2, Lower: 0, Upper: 1}
	tests := []struct {
		name string
		edit func(*BlockSpec)
	}{
		{"no output", func(s *BlockSpec) { s.Output = "" }},
		{"one block", func(s *BlockSpec) { s.Blocks = 1 }},
		{"too many blocks", func(s *BlockSpec) { s.Blocks = MaxBlocks + 1 }},
		{"no dimension", func(s *BlockSpec) { s.Dimension = 0 }},
		{"labels short", func(s *BlockSpec) { s.Labels = []string{"x"} }},
		{"labels twice", func(s *BlockSpec) { s.Labels = []string{"x", "x"} }},
		{"bounds reversed", func(s *BlockSpec) { s.Lower, s.Upper = 1, 0 }},
		{"default outside", func(s *BlockSpec) { s.Default = []float64{0, 2} }},
		{"default short", func(s *BlockSpec) { s.Default = []float64{0} }},
		{"laplace with delta", func(s *BlockSpec) { s.Delta = 1e-6 }},
		{"gaussian without delta", func(s *BlockSpec) { s.Mechanism = MechanismGaussian }},
		{"epsilon zero", func(s *BlockSpec) { s.Epsilon = 0 }},
		{"unknown mechanism", func(s *BlockSpec) { s.Mechanism = "exponential" }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			if err := s.Validate(); !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("Validate: %v, want cove.ErrInvalid", err)
			}
		})
	}
	a, _ := NewBlockAccumulator(ok)
	for _, bad := range []struct {
		b int
		v []float64
	}{{-1, []float64{0, 0}}, {10, []float64{0, 0}}, {0, []float64{0}}} {
		if err := a.Add(bad.b, bad.v); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("Add(%d, %v): %v", bad.b, bad.v, err)
		}
	}
	if err := a.Add(0, []float64{0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(0, []float64{0, 0}); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("second vector of one block: %v", err)
	}
}

func TestNoisyCount(t *testing.T) {
	v, sd, err := NoisyCount(1000, hugeEpsilon)
	if err != nil || math.Abs(float64(v)-1000) > 1 || sd <= 0 {
		t.Fatalf("NoisyCount = %d, %v, %v", v, sd, err)
	}
	if v, _, err := NoisyCount(0, 0.01); err != nil || v < 0 {
		t.Fatalf("NoisyCount(0) = %d, %v: never negative", v, err)
	}
	if _, _, err := NoisyCount(1, 0); err == nil {
		t.Fatal("ε 0 accepted")
	}
}
