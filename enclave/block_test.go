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
	for _, n := range r.Noise {
		if n.L0 != 1 || n.LInf != 20/r.Granularity || math.Abs(n.Epsilon-hugeEpsilon/2) > 1e-6 {
			t.Errorf("noise %+v: want L0 1, L∞ the bounds' span, half of ε", n)
		}
	}
	if len(r.Noise) != 2 {
		t.Errorf("%d noise primitives, want one per coordinate", len(r.Noise))
	}
	if _, err := a.Release(); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("second Release: %v", err)
	}
}

// TestBlockCoordinateBounds: each coordinate its own range, the budget
// split by span so the absolute noise is the same in every coordinate.
func TestBlockCoordinateBounds(t *testing.T) {
	s := BlockSpec{Output: "coef", Epsilon: 0.5, Blocks: 100, Dimension: 2, Bounds: [][2]float64{{0, 300}, {-10, 10}}}
	a, err := NewBlockAccumulator(s)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 100 {
		if err := a.Add(b, []float64{500, -3}); err != nil { // 500 clamps to 300
			t.Fatal(err)
		}
	}
	r, err := a.Release()
	if err != nil {
		t.Fatal(err)
	}
	sd0, sd1 := r.Rows[0].NoiseStdDev, r.Rows[1].NoiseStdDev
	// Laplace scale (300 + 20)/(0.5·100) = 6.4, σ = √2·6.4.
	if want := math.Sqrt2 * 320 / 0.5 / 100; math.Abs(sd0-want) > 1e-6 || math.Abs(sd1-want) > 1e-6 {
		t.Fatalf("noise σ %v and %v, want %v each", sd0, sd1, want)
	}
	if eps := r.Noise[0].Epsilon + r.Noise[1].Epsilon; math.Abs(eps-0.5) > 1e-12 {
		t.Fatalf("coordinates spend ε %v, want 0.5", eps)
	}
	if v := r.Rows[0].Value; v < 300-6*sd0 || v > 300 {
		t.Fatalf("coordinate 0 = %v, want ≈ 300 (clamped)", v)
	}
	bad := s
	bad.Bounds = [][2]float64{{0, 1}}
	if err := bad.Validate(); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("bounds for 1 of 2 coordinates: %v", err)
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
