// Package stattest holds the statistics of Cove's privacy tests: the
// approximate-DP histogram test of google/differential-privacy's stochastic
// suite, exact Clopper–Pearson bounds, and majority voting.
//
// It imports only the standard library so that both the enclave's tests and
// enclave/dpaudit can use it. Its functions are pure and safe for concurrent
// use.
package stattest

import (
	"math"
)

// ApproxDPTestValue is the statistic of google's verifyApproximateDp
// (StatisticalTestsUtil.java): with histograms of n samples from each of two
// neighbouring outputs, Σ over outcomes of max(0, (countA − e^ε·countB)/n),
// the empirical δ needed for (ε, δ)-DP in the direction A → B.
func ApproxDPTestValue(a, b map[int64]int, n int, epsilon float64) float64 {
	var v float64
	e := math.Exp(epsilon)
	for k, ca := range a {
		v += math.Max(0, (float64(ca)-e*float64(b[k]))/float64(n))
	}
	return v
}

// VerifyApproxDP reports whether two equally sized samples look (ε, δ)-DP:
// both directions' test values are below δ + tolerance. Samples are
// discretized to multiples of granularity first (google's discretize).
func VerifyApproxDP(a, b []float64, granularity, epsilon, delta, tolerance float64) (ok bool, vAB, vBA float64) {
	ha, hb := Histogram(a, granularity), Histogram(b, granularity)
	vAB = ApproxDPTestValue(ha, hb, len(a), epsilon)
	vBA = ApproxDPTestValue(hb, ha, len(b), epsilon)
	return vAB < delta+tolerance && vBA < delta+tolerance, vAB, vBA
}

// Histogram counts samples by their nearest multiple of granularity.
func Histogram(xs []float64, granularity float64) map[int64]int {
	h := make(map[int64]int)
	for _, x := range xs {
		h[int64(math.Round(x/granularity))]++
	}
	return h
}

// Majority reports whether more than half of the votes are true.
func Majority(votes []bool) bool {
	n := 0
	for _, v := range votes {
		if v {
			n++
		}
	}
	return 2*n > len(votes)
}

// ClopperPearson returns the exact one-sided bounds at confidence 1 − alpha
// each on a binomial proportion with k successes in n trials: P(p < lo) ≤
// alpha and P(p > hi) ≤ alpha.
func ClopperPearson(k, n int, alpha float64) (lo, hi float64) {
	lo, hi = 0, 1
	if k > 0 {
		lo = betaInv(alpha, float64(k), float64(n-k+1))
	}
	if k < n {
		hi = betaInv(1-alpha, float64(k+1), float64(n-k))
	}
	return lo, hi
}

// betaInv is the p-quantile of Beta(a, b), by bisection on BetaInc.
func betaInv(p, a, b float64) float64 {
	lo, hi := 0.0, 1.0
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if BetaInc(mid, a, b) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// BetaInc is the regularized incomplete beta function I_x(a, b), by the
// continued fraction of Numerical Recipes (modified Lentz), accurate to
// about 1e-14 for the a, b of binomial bounds.
func BetaInc(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(x, a, b) / a
	}
	return 1 - front*betaCF(1-x, b, a)/b
}

func betaCF(x, a, b float64) float64 {
	const tiny = 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 10000; m++ {
		fm := float64(m)
		aa := fm * (b - fm) * x / ((qam + 2*fm) * (a + 2*fm))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + 2*fm) * (qap + 2*fm))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return h
}
