package enclave

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// Cost is a privacy cost: the releases it covers are (Epsilon, Delta)-DP
// with respect to adding or removing one privacy unit.
type Cost struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// primitive is one noisy quantity computed per partition: an output is made
// of one or more (a mean: a count and a sum), plus partition selection.
type primitive struct {
	name     string  // "count", "sum", "normalized_sum", "sum_of_squares", "tree_counts", "bucket_counts", "selection", "suppressed_count"
	gaussian bool    // Gaussian noise (zCDP-accountable); false: Laplace or selection
	eps      float64 // the primitive's share of the output's budget
	delta    float64
	l0       int64   // partitions a unit may change
	linf     float64 // most a unit may change one partition's value, in the primitive's units
	unit     float64 // the primitive's unit in output units (the grid step for sums)
	scale    float64 // Laplace b or Gaussian σ, in the primitive's units; 0 for selection
	sd       float64 // standard deviation of the noise, in the primitive's units
	rho      float64 // ρ of ρ-zCDP for Gaussian noise: Δ₂²/(2σ²) with Δ₂ = linf·√l0
	selector bool    // partition selection: accounted by basic composition only
}

func newPrimitive(name string, gaussian bool, eps, delta float64, l0 int64, linf, unit float64) primitive {
	p := primitive{name: name, gaussian: gaussian, eps: eps, delta: delta, l0: l0, linf: linf, unit: unit}
	if gaussian {
		p.scale = noise.SigmaForGaussian(l0, linf, eps, delta)
		p.sd = p.scale
		l2 := linf * math.Sqrt(float64(l0))
		p.rho = l2 * l2 / (2 * p.scale * p.scale)
	} else {
		// noise.laplaceLambda: b = L1/ε with L1 = l0·linf.
		p.scale = float64(l0) * linf / eps
		p.sd = math.Sqrt2 * p.scale
	}
	return p
}

// grid geometry shared by mean, variance and stddev: values are normalized
// to t = x − mid in grid units, |t| ≤ h; squares are kept in units of
// 2^sqShift grid units² so that they fit an int64 sum.
func (p *plan) mid() (midU, hU int64) {
	midU = p.loU + (p.hiU-p.loU)/2
	return midU, max(p.hiU-midU, midU-p.loU)
}

func (p *plan) sqShift() int {
	_, h := p.mid()
	hh := float64(h) * float64(h)
	s := 0
	for hh > 0x1p31 {
		hh /= 2
		s++
	}
	return s
}

// primitives lists the noisy quantities one partition of p's output is made
// of, with their share of the budget and their sensitivities.
func (p *plan) primitives() []primitive {
	g := p.gaussian
	l0, linf := int64(p.MaxPartitions), float64(p.MaxContributions)
	e, d := p.aggEps, p.aggDelta
	var out []primitive
	switch p.Aggregate {
	case Count:
		out = append(out, newPrimitive("count", g, e, d, l0, linf, 1))
	case Histogram:
		// Each kept contribution adds 1 to one bucket: a unit changes a
		// partition's bucket vector by ≤ L∞ in L1 (and so in L2), which the
		// library's (l0, linf) = (L0, L∞) bounds for both noises.
		out = append(out, newPrimitive("bucket_counts", g, e, d, l0, linf, 1))
	case Quantiles:
		// dpagg.BoundedQuantiles: l0 = treeHeight·L0, linf = L∞.
		out = append(out, newPrimitive("tree_counts", g, e, d, quantileTreeHeight*l0, linf, 1))
	case Sum:
		m := float64(max(abs64(p.loU), abs64(p.hiU)))
		out = append(out, newPrimitive("sum", g, e, d, l0, linf*m, p.gran))
	case Mean:
		_, h := p.mid()
		out = append(out,
			newPrimitive("count", g, e/2, d/2, l0, linf, 1),
			newPrimitive("normalized_sum", g, e/2, d/2, l0, linf*float64(h), p.gran))
	case Variance, StdDev:
		_, h := p.mid()
		s := p.sqShift()
		sqMax := math.Round(float64(h) * float64(h) / math.Ldexp(1, s))
		out = append(out,
			newPrimitive("count", g, e/3, d/3, l0, linf, 1),
			newPrimitive("normalized_sum", g, e/3, d/3, l0, linf*float64(h), p.gran),
			newPrimitive("sum_of_squares", g, e-2*(e/3), d-2*(d/3), l0, linf*sqMax, p.gran*p.gran*math.Ldexp(1, s)))
	}
	if p.PrivatePartitions {
		out = append(out,
			primitive{name: "selection", eps: p.selEps, delta: p.selDelta, l0: l0, linf: 1, unit: 1, selector: true},
			newPrimitive("suppressed_count", false, p.supEps, 0, l0, 1, 1))
	}
	return out
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// RhoToEpsilon converts ρ-zCDP to (ε, δ)-DP: ε = ρ + 2·√(ρ·ln(1/δ))
// (Bun & Steinke 2016, Proposition 1.3). δ must be in (0, 1).
func RhoToEpsilon(rho, delta float64) float64 {
	return rho + 2*math.Sqrt(rho*math.Log(1/delta))
}

// Cost is the privacy cost of one output: (Epsilon, Delta) as declared.
func (s Spec) Cost() (Cost, error) { return Compose([]Spec{s}) }

// Compose returns the privacy cost of releasing all outputs in specs on the
// same dataset, each with respect to adding or removing one privacy unit.
//
// Basic composition holds for every output: ε = Σ ε_i, δ = Σ δ_i. The
// Gaussian primitives (count, sums, tree or bucket counts calibrated with
// noise.SigmaForGaussian, partition selection excluded) are also accounted
// in zero-concentrated DP: a Gaussian of standard deviation σ on a quantity
// of L2 sensitivity Δ₂ = L∞·√L0 is ρ-zCDP with ρ = Δ₂²/(2σ²); ρ adds up
// under composition, and ρ-zCDP implies (ρ + 2√(ρ·ln(1/δ)), δ)-DP. With δ_G
// the δ declared by those primitives, their ε is the smaller of Σ ε_i and
// RhoToEpsilon(Σ ρ_i, δ_G); δ is unchanged. The result is never above basic
// composition, and below it when many Gaussian outputs compose.
func Compose(specs []Spec) (Cost, error) {
	var c Cost
	var gEps, gDelta, rho float64
	for i, s := range specs {
		p, err := s.plan()
		if err != nil {
			return Cost{}, fmt.Errorf("specs[%d]: %w", i, err)
		}
		c.Epsilon += s.Epsilon
		c.Delta += s.Delta
		for _, pr := range p.primitives() {
			if pr.gaussian {
				gEps += pr.eps
				gDelta += pr.delta
				rho += pr.rho
			}
		}
	}
	return zcdp(c, gEps, gDelta, rho)
}

// zcdp finishes a composition c whose Gaussian primitives spend gEps and
// gDelta in basic composition and rho in zCDP: the smaller ε is kept.
func zcdp(c Cost, gEps, gDelta, rho float64) (Cost, error) {
	if rho > 0 && gDelta > 0 && gDelta < 1 {
		if z := RhoToEpsilon(rho, gDelta); z < gEps {
			c.Epsilon -= gEps - z
		}
	}
	if !finiteNum(c.Epsilon) || !(c.Delta < 1) {
		return Cost{}, fmt.Errorf("%w: enclave: composed cost (ε %g, δ %g) is out of range", cove.ErrInvalid, c.Epsilon, c.Delta)
	}
	return c, nil
}
