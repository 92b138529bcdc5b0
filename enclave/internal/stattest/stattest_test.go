package stattest

import (
	"math"
	"testing"
)

func TestClopperPearson(t *testing.T) {
	tests := []struct {
		name   string
		k, n   int
		alpha  float64
		lo, hi float64 // reference values (R: binom.test / qbeta)
	}{
		{name: "none of 10", k: 0, n: 10, alpha: 0.025, lo: 0, hi: 0.30849710},
		{name: "5 of 10", k: 5, n: 10, alpha: 0.025, lo: 0.18708603, hi: 0.81291397},
		{name: "all of 10", k: 10, n: 10, alpha: 0.025, lo: 0.69150290, hi: 1},
		{name: "none of 1000, 95% one-sided", k: 0, n: 1000, alpha: 0.05, lo: 0, hi: 1 - math.Pow(0.05, 1.0/1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := ClopperPearson(tt.k, tt.n, tt.alpha)
			if math.Abs(lo-tt.lo) > 1e-6 || math.Abs(hi-tt.hi) > 1e-6 {
				t.Errorf("got [%.8f, %.8f], want [%.8f, %.8f]", lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

func TestApproxDP(t *testing.T) {
	// Two-point distributions: A = {0: 3/4, 1: 1/4}, B = {0: 1/4, 1: 3/4}
	// are exactly ln 3-DP.
	a := []float64{0, 0, 0, 1}
	b := []float64{0, 1, 1, 1}
	if ok, _, _ := VerifyApproxDP(a, b, 1, math.Log(3), 0, 1e-9); !ok {
		t.Error("ln 3-DP pair rejected at ε = ln 3")
	}
	if ok, v, _ := VerifyApproxDP(a, b, 1, math.Log(2), 0, 0.1); ok {
		t.Errorf("ln 3-DP pair accepted at ε = ln 2 (test value %v)", v)
	}
	if !Majority([]bool{true, false, true}) || Majority([]bool{true, false}) {
		t.Error("Majority")
	}
}
