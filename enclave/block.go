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
// adding or removing it changes one block's vector, by at most the span of
// its bounds in each coordinate: coordinate j's sum has L∞ = upper_j −
// lower_j, and with Epsilon (and Delta) split across the coordinates by
// basic composition the noisy mean is (Epsilon, Delta)-DP whatever the
// computation. A failed or empty block counts as Default.
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
	// Bounds, when set, gives each coordinate its own [lower, upper]
	// (Dimension pairs) instead of Lower and Upper. The budget is then split
	// across coordinates in proportion to their spans, so every coordinate
	// gets the same absolute noise (Laplace: scale Σ spans / (ε·k)); with
	// one common range the split is even, the same thing.
	Bounds [][2]float64
	// Default is the vector of a failed or empty block (within bounds);
	// empty: the midpoint of the bounds in every coordinate.
	Default []float64
	// Granularity is the grid step (a power of two, 0 for the default: the
	// smallest ≥ max(|lower|, |upper|)/2^24, per coordinate).
	Granularity float64
}

// blockPlan is a validated BlockSpec.
type blockPlan struct {
	BlockSpec
	gauss bool
	coord []coordPlan
}

// coordPlan is one coordinate's clamp, grid and share of the budget.
type coordPlan struct {
	lower, upper float64 // effective bounds (grid points)
	gran         float64
	loU, hiU     int64
	def          int64 // Default on the grid
	pr           primitive
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
	bounds := s.Bounds
	if len(bounds) == 0 {
		bounds = make([][2]float64, s.Dimension)
		for j := range bounds {
			bounds[j] = [2]float64{s.Lower, s.Upper}
		}
	} else if len(bounds) != s.Dimension {
		return p, invalid("Bounds must give all %d coordinates", s.Dimension)
	}
	if len(s.Default) != 0 && len(s.Default) != s.Dimension {
		return p, invalid("Default must have %d coordinates", s.Dimension)
	}
	var spans float64
	for j, b := range bounds {
		if !finiteNum(b[0]) || !finiteNum(b[1]) || !(b[0] < b[1]) || math.IsInf(b[1]-b[0], 0) {
			return p, invalid("bounds of coordinate %d must be finite with lower < upper", j)
		}
		spans += b[1] - b[0]
	}
	if math.IsInf(spans, 0) {
		return p, invalid("the coordinates' spans overflow")
	}
	for j, b := range bounds {
		// The grid: the same rules as a Spec's.
		gp := plan{Spec: Spec{Aggregate: Sum, Lower: b[0], Upper: b[1], Granularity: s.Granularity}}
		if err := gp.grid(); err != nil {
			return p, fmt.Errorf("coordinate %d: %w", j, err)
		}
		c := coordPlan{lower: gp.lower, upper: gp.upper, gran: gp.gran, loU: gp.loU, hiU: gp.hiU}
		if len(s.Default) == 0 {
			c.def = c.loU + (c.hiU-c.loU)/2
		} else {
			d := s.Default[j]
			if !finiteNum(d) || d < b[0] || d > b[1] {
				return p, invalid("Default[%d] must lie within its coordinate's bounds", j)
			}
			c.def = c.snap(d)
		}
		// The budget share of coordinate j: ε·span_j/Σ spans (and δ/d).
		// Basic composition over the coordinates gives (ε, δ).
		share := (b[1] - b[0]) / spans
		eps, delta := s.Epsilon*share, s.Delta/float64(s.Dimension)
		if eps < MinEpsilon {
			return p, invalid("coordinate %d's share of Epsilon is below 2^-48", j)
		}
		c.pr = newPrimitive("block_sum", p.gauss, eps, delta, 1, float64(c.hiU-c.loU), c.gran)
		if c.pr.scale > maxNoiseUnits || !finiteNum(c.pr.scale) {
			return p, invalid("Epsilon is too small for the bounds and Granularity: noise would overflow (declare a coarser Granularity)")
		}
		p.coord = append(p.coord, c)
	}
	return p, nil
}

func (c *coordPlan) snap(v float64) int64 {
	return min(max(int64(math.Round(min(max(v, c.lower), c.upper)/c.gran)), c.loU), c.hiU)
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
		for _, cp := range p.coord {
			if pr := cp.pr; pr.gaussian {
				gEps += pr.eps
				gDelta += pr.delta
				rho += pr.rho
			}
		}
	}
	return zcdp(c, gEps, gDelta, rho)
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
	p.Labels, p.Default, p.Bounds = slices.Clone(s.Labels), slices.Clone(s.Default), slices.Clone(s.Bounds)
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
		c := &a.p.coord[j]
		if math.IsNaN(x) {
			a.sum[j] += c.def
			continue
		}
		a.sum[j] += c.snap(x) // |sum| ≤ MaxBlocks·2^40: no overflow
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
				a.sum[j] += p.coord[j].def
			}
			a.got[b] = true
		}
	}
	k := float64(p.Blocks)
	c0 := p.coord[0]
	r := &Release{
		Output: p.Output, Aggregate: BlockMean, Mechanism: p.Mechanism, Epsilon: p.Epsilon, Delta: p.Delta,
		Lower: c0.lower, Upper: c0.upper, Granularity: c0.gran, MaxPartitions: 1, MaxContributions: 1,
	}
	for j, s := range a.sum {
		c := &p.coord[j]
		pr := c.pr
		nz := noiseOf(pr)
		r.Noise = append(r.Noise, Noise{Primitive: pr.name, Mechanism: p.Mechanism, Epsilon: pr.eps, Delta: pr.delta, L0: pr.l0, LInf: pr.linf, Unit: pr.unit, Scale: pr.scale, StdDev: pr.sd})
		noisy, err := nz.AddNoiseInt64(s, pr.l0, int64(pr.linf), pr.eps, pr.delta)
		if err != nil {
			return nil, privacyErr(pr.name, err)
		}
		ci, err := nz.ComputeConfidenceIntervalInt64(noisy, pr.l0, int64(pr.linf), pr.eps, pr.delta, ciAlpha)
		if err != nil {
			return nil, privacyErr(pr.name+" confidence interval", err)
		}
		// Dividing by the public k and clamping are post-processing.
		clamp := func(x float64) float64 { return min(max(x*c.gran/k, c.lower), c.upper) }
		key := strconv.Itoa(j)
		if len(p.Labels) != 0 {
			key = p.Labels[j]
		}
		row := Row{Key: key, Value: clamp(float64(noisy)), NoiseStdDev: pr.sd * c.gran / k, CILow: clamp(ci.LowerBound), CIHigh: clamp(ci.UpperBound)}
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
