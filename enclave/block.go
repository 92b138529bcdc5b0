package enclave

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// BlockMean is the aggregate of a block-mode output.
const BlockMean Aggregate = "block_mean"

// Limits on a BlockSpec.
const (
	MaxBlocks    = 10_000
	MaxDimension = 1024
)

// BlockSpec declares a block-mode output (sample and aggregate, Smith 2011;
// GUPT, Mohan et al. 2012): the privacy units are split into Blocks
// disjoint blocks, a computation on each block gives a vector of Dimension
// coordinates, each coordinate is clamped to [Lower, Upper], and the mean of
// the block vectors is released with noise. One unit is in one block, so
// adding or removing it changes one block's vector, by at most Upper −
// Lower in each coordinate: the sum of the vectors has L0 = Dimension and
// L∞ = Upper − Lower, and its noisy mean is (Epsilon, Delta)-DP whatever
// the computation. A failed or empty block counts as Default.
type BlockSpec struct {
	Output    string
	Mechanism string // "laplace" (default when empty) or "gaussian" (needs δ > 0)
	Epsilon   float64
	Delta     float64
	Blocks    int // k, 2 to MaxBlocks
	Dimension int // coordinates per block, 1 to MaxDimension
	// Labels name the coordinates (the release's row keys); empty: "0",
	// "1", …
	Labels       []string
	Lower, Upper float64
	// Default is the vector of a failed or empty block (within bounds);
	// empty: the midpoint of [Lower, Upper] in every coordinate.
	Default []float64
	// Granularity is the grid step (a power of two, 0 for the default: the
	// smallest ≥ max(|Lower|, |Upper|)/2^24).
	Granularity float64
}

// blockPlan is a validated BlockSpec.
type blockPlan struct {
	BlockSpec
	gauss    bool
	gran     float64
	loU, hiU int64
	def      []int64 // Default on the grid
}

func (s BlockSpec) plan() (blockPlan, error) {
	p := blockPlan{BlockSpec: s}
	if s.Output == "" || !utf8.ValidString(s.Output) {
		return p, invalid("Output must be a non-empty UTF-8 name")
	}
	switch s.Mechanism {
	case "", MechanismLaplace:
		p.Mechanism = MechanismLaplace
	case MechanismGaussian:
		p.gauss = true
	default:
		return p, invalid("Mechanism %q is not laplace or gaussian", s.Mechanism)
	}
	if !finiteNum(s.Epsilon) || s.Epsilon < MinEpsilon {
		return p, invalid("Epsilon must be finite and at least 2^-48")
	}
	if !finiteNum(s.Delta) || s.Delta < 0 || s.Delta >= 1 || (p.gauss && s.Delta == 0) || (!p.gauss && s.Delta != 0) {
		return p, invalid("Delta must be in (0, 1) for gaussian and 0 for laplace")
	}
	if s.Blocks < 2 || s.Blocks > MaxBlocks {
		return p, invalid("Blocks must be in [2, %d]", MaxBlocks)
	}
	if s.Dimension < 1 || s.Dimension > MaxDimension {
		return p, invalid("Dimension must be in [1, %d]", MaxDimension)
	}
	if len(s.Labels) != 0 {
		if len(s.Labels) != s.Dimension {
			return p, invalid("Labels must name all %d coordinates", s.Dimension)
		}
		seen := map[string]bool{}
		for i, l := range s.Labels {
			if l == "" || !utf8.ValidString(l) || seen[l] {
				return p, invalid("Labels[%d] must be a non-empty, unique UTF-8 name", i)
			}
			seen[l] = true
		}
	}
	if !finiteNum(s.Lower) || !finiteNum(s.Upper) || !(s.Lower < s.Upper) || math.IsInf(s.Upper-s.Lower, 0) {
		return p, invalid("Lower and Upper must be finite with Lower < Upper")
	}
	// The grid: the same rules as a Spec's.
	g := Spec{Aggregate: Sum, Lower: s.Lower, Upper: s.Upper, Granularity: s.Granularity}
	gp := plan{Spec: g}
	if err := gp.grid(); err != nil {
		return p, err
	}
	p.gran, p.loU, p.hiU = gp.gran, gp.loU, gp.hiU
	p.Lower, p.Upper = gp.lower, gp.upper
	if len(s.Default) != 0 && len(s.Default) != s.Dimension {
		return p, invalid("Default must have %d coordinates", s.Dimension)
	}
	p.def = make([]int64, s.Dimension)
	for j := range p.def {
		if len(s.Default) == 0 {
			p.def[j] = p.loU + (p.hiU-p.loU)/2
			continue
		}
		d := s.Default[j]
		if !finiteNum(d) || d < s.Lower || d > s.Upper {
			return p, invalid("Default[%d] must lie within [Lower, Upper]", j)
		}
		p.def[j] = p.snap(d)
	}
	pr := p.primitive()
	if pr.scale > maxNoiseUnits || !finiteNum(pr.scale) {
		return p, invalid("Epsilon is too small for the bounds and Granularity: noise would overflow (declare a coarser Granularity)")
	}
	return p, nil
}

func (p *blockPlan) snap(v float64) int64 {
	return min(max(int64(math.Round(min(max(v, p.Lower), p.Upper)/p.gran)), p.loU), p.hiU)
}

// primitive is the noisy sum of the block vectors, per coordinate.
func (p *blockPlan) primitive() primitive {
	return newPrimitive("block_sum", p.gauss, p.Epsilon, p.Delta, int64(p.Dimension), float64(p.hiU-p.loU), p.gran)
}

// Validate reports the first thing wrong with s, wrapping cove.ErrInvalid.
func (s BlockSpec) Validate() error {
	_, err := s.plan()
	return err
}

// ComposeBlocks is the privacy cost of releasing every block output of
// specs (basic composition; Gaussian outputs also in zCDP, as Compose).
func ComposeBlocks(specs []BlockSpec) (Cost, error) {
	var c Cost
	var gEps, gDelta, rho float64
	for i, s := range specs {
		p, err := s.plan()
		if err != nil {
			return Cost{}, fmt.Errorf("specs[%d]: %w", i, err)
		}
		c.Epsilon += s.Epsilon
		c.Delta += s.Delta
		if pr := p.primitive(); pr.gaussian {
			gEps += pr.eps
			gDelta += pr.delta
			rho += pr.rho
		}
	}
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

// BlockAccumulator collects the block vectors of one block output and
// releases their noisy mean exactly once. Not safe for concurrent use.
type BlockAccumulator struct {
	p        blockPlan
	got      []bool
	sum      []int64 // per coordinate, grid units
	released bool
}

// NewBlockAccumulator validates s and returns an empty accumulator.
func NewBlockAccumulator(s BlockSpec) (*BlockAccumulator, error) {
	p, err := s.plan()
	if err != nil {
		return nil, err
	}
	p.Labels, p.Default = slices.Clone(s.Labels), slices.Clone(s.Default)
	return &BlockAccumulator{p: p, got: make([]bool, s.Blocks), sum: make([]int64, s.Dimension)}, nil
}

// Add records block b's vector: each coordinate clamped to [Lower, Upper]
// and snapped to the grid; a NaN coordinate counts as Default's. A second
// vector for one block, a block out of range or a vector of another length
// is an error wrapping cove.ErrInvalid (the host's mistake, never a
// guest's: the runtime checks the length it accepts).
func (a *BlockAccumulator) Add(b int, v []float64) error {
	switch {
	case a.released:
		return fmt.Errorf("%w: enclave: block Add after Release", cove.ErrInvalid)
	case b < 0 || b >= len(a.got):
		return fmt.Errorf("%w: enclave: block index out of range [0, %d)", cove.ErrInvalid, len(a.got))
	case a.got[b]:
		return fmt.Errorf("%w: enclave: block %d added twice", cove.ErrInvalid, b)
	case len(v) != len(a.sum):
		return fmt.Errorf("%w: enclave: block vector of %d coordinates, want %d", cove.ErrInvalid, len(v), len(a.sum))
	}
	a.got[b] = true
	for j, x := range v {
		if math.IsNaN(x) {
			a.sum[j] += a.p.def[j]
			continue
		}
		a.sum[j] += a.p.snap(x) // |sum| ≤ MaxBlocks·2^40: no overflow
	}
	return nil
}

// Blocks is the number of blocks that gave a vector so far.
func (a *BlockAccumulator) Blocks() int {
	n := 0
	for _, g := range a.got {
		if g {
			n++
		}
	}
	return n
}

// Release counts every block without a vector as Default, draws the noise
// once per coordinate and returns the release: one row per coordinate, keyed
// by its label, in order. A second call is an error.
func (a *BlockAccumulator) Release() (*Release, error) {
	if a.released {
		return nil, fmt.Errorf("%w: enclave: Release called twice", cove.ErrInvalid)
	}
	a.released = true
	p := &a.p
	for b, g := range a.got {
		if !g {
			for j := range a.sum {
				a.sum[j] += p.def[j]
			}
			a.got[b] = true
		}
	}
	pr := p.primitive()
	nz := noiseOf(pr)
	k := float64(p.Blocks)
	r := &Release{
		Output: p.Output, Aggregate: BlockMean, Mechanism: p.Mechanism, Epsilon: p.Epsilon, Delta: p.Delta,
		Lower: p.Lower, Upper: p.Upper, Granularity: p.gran, MaxPartitions: 1, MaxContributions: 1,
		Noise: []Noise{{Primitive: pr.name, Mechanism: p.Mechanism, Epsilon: pr.eps, Delta: pr.delta, L0: pr.l0, LInf: pr.linf, Unit: pr.unit, Scale: pr.scale, StdDev: pr.sd}},
	}
	for j, s := range a.sum {
		noisy, err := nz.AddNoiseInt64(s, pr.l0, int64(pr.linf), pr.eps, pr.delta)
		if err != nil {
			return nil, privacyErr(pr.name, err)
		}
		ci, err := nz.ComputeConfidenceIntervalInt64(noisy, pr.l0, int64(pr.linf), pr.eps, pr.delta, ciAlpha)
		if err != nil {
			return nil, privacyErr(pr.name+" confidence interval", err)
		}
		// Dividing by the public k and clamping are post-processing.
		clamp := func(x float64) float64 { return min(max(x*p.gran/k, p.Lower), p.Upper) }
		key := strconv.Itoa(j)
		if len(p.Labels) != 0 {
			key = p.Labels[j]
		}
		row := Row{Key: key, Value: clamp(float64(noisy)), NoiseStdDev: pr.sd * p.gran / k, CILow: clamp(ci.LowerBound), CIHigh: clamp(ci.UpperBound)}
		if !finite(row.Value, row.NoiseStdDev, row.CILow, row.CIHigh) {
			return nil, fmt.Errorf("%w: enclave: coordinate %s: the library produced a non-finite result", cove.ErrPrivacy, key)
		}
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

// NoisyCount releases a count to which one privacy unit adds at most one
// (units or blocks that failed, say) with the Laplace mechanism: the noisy
// count, clamped at 0, and the standard deviation of its noise.
func NoisyCount(n int64, epsilon float64) (int64, float64, error) {
	c, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: epsilon, MaxPartitionsContributed: 1, Noise: noise.Laplace()})
	if err != nil {
		return 0, 0, privacyErr("count", err)
	}
	if c.IncrementBy(n) != nil {
		return 0, 0, addErr("count")
	}
	v, err := c.Result()
	if err != nil {
		return 0, 0, privacyErr("count", err)
	}
	return max(v, 0), math.Sqrt2 / epsilon, nil
}
