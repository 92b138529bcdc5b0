package he

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// QueryNoise sets the DP noise of a query: the privacy parameters and, per
// column j of X, Span[j], the most one privacy unit (one row) moves X[g][j]
// (max(hi−lo, |lo|, |hi|) for a sum clamped to [lo, hi]). A row reaches one
// row g of X: the lead enforces it (one group per row).
//
// The noise goes on X itself, in the clear, inside the enclave, before the
// encrypted evaluation: X̃ is an (ε, δ)-DP release whatever the query, and the
// reply y = q·X̃ is post-processing of X̃. Nothing depends on the operator's
// vector, which the enclave cannot read: an operator that sends a huge q
// scales the noise of y with it.
type QueryNoise struct {
	DP   DP
	Span []float64
}

// Calibration of the query noise (QueryNoiseInfo.Calibration).
//
// Normalize column j by Span[j]: one row then changes at most J = len(Span)
// entries of X/Span (the J columns of its group), each by at most 1. Google's
// noise package calibrates one mechanism for that vector with l0 = J and
// lInf = 1; noise on column j is that noise scaled back by Span[j], which is
// what the package draws with l0 = J, lInf = Span[j] (Laplace: b_j =
// J·Span[j]/ε, the same as ε/J per column by basic composition; Gaussian:
// σ_j = Span[j]·σ(L2 = √J, ε, δ), one (ε, δ) for the whole matrix).
const queryCalibration = "per-element; l0 = J columns, lInf = span_j (normalized L1 for Laplace, L2 = √J·span_j for Gaussian)"

// QueryNoiseInfo describes the DP noise of a query reply: the noise is on
// every element X[g][j] of the aggregate (independent draws, the same law
// for every g), so the noise of y[g] = Σ_j q[j]·X̃[g][j] is Σ_j q[j]·N[g][j]:
// its variance is Σ_j q[j]²·Std[j]², which only the operator (who knows q)
// can compute (StdOf, Interval).
type QueryNoiseInfo struct {
	Mechanism   Mechanism `json:"mechanism"`
	Epsilon     float64   `json:"epsilon"`
	Delta       float64   `json:"delta"`
	Calibration string    `json:"calibration"`
	L0          int64     `json:"l0"`    // entries of X one row reaches (the columns)
	LInf        []float64 `json:"linf"`  // per column: span_j
	Scale       []float64 `json:"scale"` // per column: Laplace b_j or Gaussian σ_j
	Std         []float64 `json:"std"`   // per column: standard deviation of the noise of one element
	// Rounding is the DecodePublic grid of the reply, 2^-20; the CKKS
	// evaluation error is far below it for values within the query limits.
	Rounding float64 `json:"rounding_ulp"`
	// Clamped counts the elements of X̃ clamped to ±2^30 (queryMaxAbs) after
	// the noise, for the encoding: the reply is exact only if it is 0.
	Clamped int `json:"clamped,omitempty"`
}

// queryMaxAbs bounds the elements of the noised aggregate a query is
// evaluated against (the CKKS encoding's headroom at the query's scale).
const queryMaxAbs = 1 << 30

func (n QueryNoiseInfo) check(q []float64) error {
	if len(q) != len(n.Std) || len(n.Scale) != len(n.Std) {
		return fmt.Errorf("%w: he: a vector of %d values for a reply over %d columns", cove.ErrInvalid, len(q), len(n.Std))
	}
	return nil
}

// StdOf returns the standard deviation of the DP noise of every value of
// the reply to the vector q: √(Σ_j q[j]²·Std[j]²).
func (n QueryNoiseInfo) StdOf(q []float64) (float64, error) {
	if err := n.check(q); err != nil {
		return 0, err
	}
	var v float64
	for j, x := range q {
		v += x * x * n.Std[j] * n.Std[j]
	}
	return math.Sqrt(v), nil
}

// Interval returns, for a value of the reply to the vector q, the half-width
// of an interval that contains the exact q·X[g] with probability at least
// 1−α (plus the DecodePublic rounding).
//
// Gaussian: the noise is N(0, StdOf(q)²); the half-width is
// σ·√(2·ln(2/α)) (Chernoff). Laplace: the noise is a sum of independent
// Laplace(c_j), c_j = |q[j]|·b_j; the half-width is the smallest of bounds
// that each hold with probability at least 1−α: the union bound
// ln(J'/α)·Σ_j c_j (J' the nonzero c_j); Chan–Shi–Song (2011, corollary 2.9) ν·√(8·ln(2/α))
// with ν = max(√Σ c_j², max_j c_j·√ln(2/α)); and the Chernoff bound from
// the Laplace moment generating function, min over λ < 1/max c_j of
// (ln(2/α) − Σ_j ln(1 − c_j²λ²))/λ.
func (n QueryNoiseInfo) Interval(q []float64, alpha float64) (float64, error) {
	if err := n.check(q); err != nil {
		return 0, err
	}
	if !(alpha > 0 && alpha < 1) {
		return 0, fmt.Errorf("%w: he: α %v is not in (0, 1)", cove.ErrInvalid, alpha)
	}
	switch n.Mechanism {
	case Gaussian:
		s, _ := n.StdOf(q)
		return s*math.Sqrt(2*math.Log(2/alpha)) + n.Rounding, nil
	case Laplace:
		var sum, sq, most float64
		terms := 0
		for j, x := range q {
			c := math.Abs(x) * n.Scale[j]
			sum += c
			sq += c * c
			most = max(most, c)
			if c > 0 {
				terms++
			}
		}
		if most == 0 {
			return n.Rounding, nil
		}
		l := math.Log(2 / alpha)
		half := math.Log(float64(terms)/alpha) * sum
		nu := max(math.Sqrt(sq), most*math.Sqrt(l))
		half = min(half, nu*math.Sqrt(8*l))
		// Chernoff with the Laplace moment generating function:
		// P(|S| ≥ t) ≤ 2·e^(−λt)·Π_j 1/(1 − c_j²λ²) for 0 < λ < 1/max c_j,
		// so each λ gives a valid t; take the best on a grid.
		for k := 1; k < 200; k++ {
			lam := float64(k) / 200 / most
			t := l
			for j, x := range q {
				c := math.Abs(x) * n.Scale[j]
				t -= math.Log1p(-c * c * lam * lam)
			}
			half = min(half, t/lam)
		}
		return half + n.Rounding, nil
	}
	return 0, fmt.Errorf("%w: he: unknown mechanism %q", cove.ErrInvalid, n.Mechanism)
}

// noiseMatrix returns X̃ = X + noise, drawn element by element from google's
// noise package (its secure randomness: crypto/rand, in the enclave), and
// the description of the noise. X is not modified; the caller clears both.
func noiseMatrix(X [][]float64, qn QueryNoise) ([][]float64, QueryNoiseInfo, error) {
	info := QueryNoiseInfo{Mechanism: qn.DP.Mechanism, Epsilon: qn.DP.Epsilon, Delta: qn.DP.Delta, Calibration: queryCalibration,
		L0: int64(len(qn.Span)), Rounding: math.Exp2(-queryLogPrecision)}
	var nz noise.Noise
	switch qn.DP.Mechanism {
	case Laplace:
		nz = noise.Laplace()
	case Gaussian:
		nz = noise.Gaussian()
	default:
		return nil, info, fmt.Errorf("%w: he: unknown mechanism %q", cove.ErrInvalid, qn.DP.Mechanism)
	}
	if len(qn.Span) < 1 {
		return nil, info, fmt.Errorf("%w: he: query noise without column spans", cove.ErrInvalid)
	}
	for j, s := range qn.Span {
		if !(s > 0) || s > 1<<30 {
			return nil, info, fmt.Errorf("%w: he: span of column %d is %v, not in (0, 2^30]", cove.ErrInvalid, j, s)
		}
		var scale, std float64
		if qn.DP.Mechanism == Laplace {
			scale = float64(info.L0) * s / qn.DP.Epsilon
			std = math.Sqrt2 * scale
		} else {
			scale = noise.SigmaForGaussian(info.L0, s, qn.DP.Epsilon, qn.DP.Delta)
			std = scale
		}
		if !(scale > 0) || math.IsInf(scale, 0) {
			return nil, info, fmt.Errorf("%w: he: noise of column %d: scale %v", cove.ErrPrivacy, j, scale)
		}
		info.LInf = append(info.LInf, s)
		info.Scale = append(info.Scale, scale)
		info.Std = append(info.Std, std)
	}
	out := make([][]float64, len(X))
	for g, row := range X {
		if len(row) != len(qn.Span) {
			return nil, info, fmt.Errorf("%w: he: row %d has %d values for %d columns", cove.ErrInvalid, g, len(row), len(qn.Span))
		}
		out[g] = make([]float64, len(row))
		for j, x := range row {
			v, err := nz.AddNoiseFloat64(x, info.L0, qn.Span[j], qn.DP.Epsilon, qn.DP.Delta)
			if err != nil {
				for _, r := range out {
					clear(r)
				}
				return nil, info, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
			}
			out[g][j] = v
		}
	}
	return out, info, nil
}
