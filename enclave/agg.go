package enclave

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// ciAlpha is the library's alpha: ComputeConfidenceInterval(alpha) covers the
// raw value with probability ≥ 1 − alpha, so 0.05 gives a 95% interval.
const ciAlpha = 0.05

// quantileTreeHeight is the height of dpagg.BoundedQuantiles' tree (its
// default): each contribution increments one counter per level.
const quantileTreeHeight = dpagg.DefaultTreeHeight

// maxUnitsSum bounds the exact sum of a grid primitive; beyond it the
// accumulator fails rather than let the library's int64 sum wrap.
const maxUnitsSum = 1 << 62

// partAgg is one partition's DP aggregator. fold receives one privacy unit's
// bounded contributions to the partition, once per unit; rows draws the
// noise (once) and returns the partition's rows, Key left empty.
type partAgg interface {
	fold(s *slot) error
	rows() ([]Row, error)
}

func privacyErr(what string, err error) error {
	// Library messages carry parameters only, never contributed values, on
	// the paths used here (Result, ComputeConfidenceInterval, constructors).
	return fmt.Errorf("%w: %s: %v", cove.ErrPrivacy, what, err)
}

// addErr hides the library's message: it may quote the value.
func addErr(what string) error {
	return fmt.Errorf("%w: %s: the aggregator refused a contribution", cove.ErrPrivacy, what)
}

func noiseOf(pr primitive) noise.Noise {
	if pr.gaussian {
		return noise.Gaussian()
	}
	return noise.Laplace()
}

// intSum is one integer primitive: an exact int64 total of per-unit
// contributions, each clamped to [lo, hi], noised once by the library's
// noise (noise.Laplace or noise.Gaussian, AddNoiseInt64) with l0 = L0 and
// lInf = max(|lo|, |hi|), exactly what dpagg.BoundedSumInt64 computes. The
// total is kept here rather than in a dpagg.BoundedSumInt64 so that
// bulk paths can add many units' bounded contributions at once (addTotal);
// a running check refuses int64 overflow.
type intSum struct {
	pr     primitive
	lo, hi int64
	linf   int64
	total  int64
	noisy  int64
	done   bool
}

// newIntSum makes the primitive's sum. With check set it first has the
// library validate the parameters (dpagg.NewBoundedSumInt64 checks ε, δ,
// l0 and the bounds for the noise); the accumulator checks once per output,
// not once per partition.
func newIntSum(pr primitive, lo, hi int64, check bool) (*intSum, error) {
	if check {
		_, err := dpagg.NewBoundedSumInt64(&dpagg.BoundedSumInt64Options{
			Epsilon: pr.eps, Delta: pr.delta, MaxPartitionsContributed: pr.l0,
			Lower: lo, Upper: hi, Noise: noiseOf(pr),
		})
		if err != nil {
			return nil, privacyErr(pr.name, err)
		}
	}
	return &intSum{pr: pr, lo: lo, hi: hi, linf: max(abs64(lo), abs64(hi))}, nil
}

// add adds one unit's contribution, clamped to [lo, hi].
func (a *intSum) add(v int64) error {
	return a.addTotal(min(max(v, a.lo), a.hi))
}

// addTotal adds the sum of several units' contributions, each already
// within [lo, hi] (|t| ≤ 2^62 is checked by the caller's batch size).
func (a *intSum) addTotal(t int64) error {
	if t > maxUnitsSum || t < -maxUnitsSum {
		return fmt.Errorf("%w: enclave: %s exceeds 2^62 grid units: declare a coarser Granularity", cove.ErrLimit, a.pr.name)
	}
	s := a.total + t // |t|, |total| ≤ 2^62: no wrap
	if s > maxUnitsSum || s < -maxUnitsSum {
		return fmt.Errorf("%w: enclave: %s exceeds 2^62 grid units: declare a coarser Granularity", cove.ErrLimit, a.pr.name)
	}
	a.total = s
	return nil
}

func (a *intSum) result() (int64, error) {
	if a.done {
		return 0, fmt.Errorf("%w: enclave: %s noised twice", cove.ErrInvalid, a.pr.name)
	}
	a.done = true
	v, err := noiseOf(a.pr).AddNoiseInt64(a.total, a.pr.l0, a.linf, a.pr.eps, a.pr.delta)
	if err != nil {
		return 0, privacyErr(a.pr.name, err)
	}
	a.noisy = v
	return v, nil
}

// ci is the library's interval for the raw sum, in the primitive's units,
// trimmed to the sign of the bounds as dpagg.BoundedSumInt64 does.
func (a *intSum) ci(alpha float64) (noise.ConfidenceInterval, error) {
	if !a.done {
		return noise.ConfidenceInterval{}, fmt.Errorf("%w: enclave: %s interval before its result", cove.ErrInvalid, a.pr.name)
	}
	ci, err := noiseOf(a.pr).ComputeConfidenceIntervalInt64(a.noisy, a.pr.l0, a.linf, a.pr.eps, a.pr.delta, alpha)
	if err != nil {
		return ci, privacyErr(a.pr.name+" confidence interval", err)
	}
	if a.lo >= 0 {
		ci.LowerBound, ci.UpperBound = math.Max(0, ci.LowerBound), math.Max(0, ci.UpperBound)
	}
	if a.hi <= 0 {
		ci.LowerBound, ci.UpperBound = math.Min(0, ci.LowerBound), math.Min(0, ci.UpperBound)
	}
	return ci, nil
}

// newPartAgg builds the aggregator for one partition of a valid plan; prims
// are p.primitives().
func newPartAgg(p *plan, prims []primitive, check bool) (partAgg, error) {
	linf := int64(p.MaxContributions)
	switch p.Aggregate {
	case Count:
		// dpagg.Count does not expose MaxContributionsPerPartition; its doc
		// sends multi-contribution counts to BoundedSumInt64. Each unit adds
		// its kept count k ∈ [0, L∞]; for L∞ = 1 this is exactly a Count.
		c, err := newIntSum(prims[0], 0, linf, check)
		if err != nil {
			return nil, err
		}
		return &countAgg{c: c, linf: uint64(linf)}, nil
	case Sum:
		// A unit's ≤ L∞ values are pre-summed in grid units: the per-unit
		// total lies in [L∞·min(lo, 0), L∞·max(hi, 0)], whose larger
		// magnitude is prims[0].linf.
		s, err := newIntSum(prims[0], linf*min(p.loU, 0), linf*max(p.hiU, 0), check)
		if err != nil {
			return nil, err
		}
		return &sumAgg{p: p, s: s}, nil
	case Mean:
		midU, h := p.mid()
		c, err := newIntSum(prims[0], 0, linf, check)
		if err != nil {
			return nil, err
		}
		s, err := newIntSum(prims[1], -linf*h, linf*h, check)
		if err != nil {
			return nil, err
		}
		return &meanAgg{p: p, c: c, s: s, midU: midU}, nil
	case Variance, StdDev:
		midU, h := p.mid()
		c, err := newIntSum(prims[0], 0, linf, check)
		if err != nil {
			return nil, err
		}
		s, err := newIntSum(prims[1], -linf*h, linf*h, check)
		if err != nil {
			return nil, err
		}
		q, err := newIntSum(prims[2], 0, int64(prims[2].linf), check)
		if err != nil {
			return nil, err
		}
		return &varAgg{p: p, c: c, s: s, q: q, midU: midU, shift: math.Ldexp(1, p.sqShift())}, nil
	case Quantiles:
		bq, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{
			Epsilon: prims[0].eps, Delta: prims[0].delta,
			MaxPartitionsContributed: int64(p.MaxPartitions), MaxContributionsPerPartition: linf,
			Lower: p.lower, Upper: p.upper, Noise: noiseOf(prims[0]),
			TreeHeight: quantileTreeHeight,
		})
		if err != nil {
			return nil, privacyErr("quantiles", err)
		}
		return &quantAgg{q: bq, ranks: p.Ranks}, nil
	case Histogram:
		h := &histAgg{edges: p.Buckets, cells: make([]*intSum, len(p.Buckets)-1), k: make([]int64, len(p.Buckets)-1)}
		for i := range h.cells {
			c, err := newIntSum(prims[0], 0, linf, check)
			if err != nil {
				return nil, err
			}
			h.cells[i] = c
		}
		return h, nil
	}
	return nil, invalid("Aggregate %q is not supported", p.Aggregate)
}

// snap maps a clamped value to its nearest grid point, in grid units.
func (p *plan) snap(v float64) int64 {
	return min(max(int64(math.Round(v/p.gran)), p.loU), p.hiU)
}

// onGrid rounds x to the nearest multiple of the grid step: exact, since the
// step is a power of two.
func (p *plan) onGrid(x float64) float64 {
	return math.Round(x/p.gran) * p.gran
}

type countAgg struct {
	c    *intSum
	linf uint64
}

func (a *countAgg) fold(s *slot) error {
	return a.c.add(int64(min(s.seen, a.linf))) // the reservoir's size
}

func (a *countAgg) rows() ([]Row, error) {
	v, err := a.c.result()
	if err != nil {
		return nil, err
	}
	ci, err := a.c.ci(ciAlpha)
	if err != nil {
		return nil, err
	}
	return []Row{{Value: float64(v), NoiseStdDev: a.c.pr.sd, CILow: ci.LowerBound, CIHigh: ci.UpperBound}}, nil
}

type sumAgg struct {
	p *plan
	s *intSum
}

func (a *sumAgg) fold(s *slot) error {
	var t int64
	for _, v := range s.vals {
		t += a.p.snap(v)
	}
	return a.s.add(t)
}

func (a *sumAgg) rows() ([]Row, error) {
	v, err := a.s.result()
	if err != nil {
		return nil, err
	}
	ci, err := a.s.ci(ciAlpha)
	if err != nil {
		return nil, err
	}
	g := a.p.gran
	// float64(v) is an integer and g a power of two: the product is an
	// exact multiple of g.
	return []Row{{Value: float64(v) * g, NoiseStdDev: a.s.pr.sd * g, CILow: ci.LowerBound * g, CIHigh: ci.UpperBound * g}}, nil
}

// meanAgg is a mean on the grid: a noisy count C̃ (ε/2, δ/2) and a noisy sum
// S̃ of values normalized to t = x − mid in grid units (ε/2, δ/2), the
// construction of dpagg.BoundedMean with integer sums. The released mean is
// mid + S̃/max(1, C̃), clamped to [Lower, Upper] and rounded to the grid:
// post-processing, so the grid costs no privacy.
type meanAgg struct {
	p    *plan
	c, s *intSum
	midU int64
}

func (a *meanAgg) fold(s *slot) error {
	var t int64
	for _, v := range s.vals {
		t += a.p.snap(v) - a.midU
	}
	if err := a.c.add(int64(len(s.vals))); err != nil {
		return err
	}
	return a.s.add(t)
}

// ciSplits is how many ways of splitting alpha between numerator and
// denominator the mean's interval tries (the library tries 999; every split
// gives a valid interval, the tightest is kept). 20 is within a few percent
// of the tightest and keeps a Gaussian mean's release under 0.2 ms (each
// Gaussian interval recomputes σ).
const ciSplits = 20

func (a *meanAgg) rows() ([]Row, error) {
	c, err := a.c.result()
	if err != nil {
		return nil, err
	}
	s, err := a.s.result()
	if err != nil {
		return nil, err
	}
	p := a.p
	g, mid := p.gran, float64(a.midU)*p.gran
	n := math.Max(1, float64(c))
	v := p.onGrid(min(max(mid+float64(s)*g/n, p.lower), p.upper))

	lo, hi := math.Inf(-1), math.Inf(1)
	for i := 1; i < ciSplits; i++ {
		aNum := float64(i) / ciSplits * ciAlpha
		aDen := (ciAlpha - aNum) / (1 - aNum) // (1 − α) = (1 − aNum)(1 − aDen)
		num, err := a.s.ci(aNum)
		if err != nil {
			return nil, err
		}
		den, err := a.c.ci(aDen)
		if err != nil {
			return nil, err
		}
		l, h := ratioInterval(num.LowerBound*g, num.UpperBound*g, math.Max(den.LowerBound, 1), math.Max(den.UpperBound, 1))
		l = min(max(l+mid, p.lower), p.upper)
		h = min(max(h+mid, p.lower), p.upper)
		if i == 1 || h-l < hi-lo {
			lo, hi = l, h
		}
	}
	return []Row{{Value: v, NoiseStdDev: a.sd(v, n), CILow: lo, CIHigh: hi}}, nil
}

// ratioInterval bounds x/y for x in [xl, xh] and y in [yl, yh], 0 < yl ≤ yh
// (dpagg.BoundedMean's rule).
func ratioInterval(xl, xh, yl, yh float64) (float64, float64) {
	var l, h float64
	if xl >= 0 {
		l = xl / yh
	} else {
		l = xl / yl
	}
	if xh >= 0 {
		h = xh / yl
	} else {
		h = xh / yh
	}
	return l, h
}

// sd approximates the standard deviation of the released mean mid + S̃/C̃
// to first order (delta method) around the released values, with
// n = max(1, C̃) standing in for the true count and v − mid for S/C:
//
//	σ ≈ √(σ_S² + (v − mid)²·σ_C²) / n
//
// capped at (Upper − Lower)/2, the largest standard deviation any value
// clamped to [Lower, Upper] can have. Good when n is large against σ_C,
// pessimistic (capped) when the count is mostly noise.
func (a *meanAgg) sd(v, n float64) float64 {
	sdS, sdC := a.s.pr.sd*a.p.gran, a.c.pr.sd
	d := v - float64(a.midU)*a.p.gran
	return math.Min(math.Sqrt(sdS*sdS+d*d*sdC*sdC)/n, (a.p.upper-a.p.lower)/2)
}

// varAgg computes variance (and stddev) on the grid like dpagg.BoundedVariance,
// with integer sums: a noisy count, a noisy sum of t = x − mid and a noisy sum
// of t² (in units of shift grid units², so that it fits an int64), ε/3 and
// δ/3 each. var = m2 − m1², clamped to [0, (Upper − Lower)²/4].
type varAgg struct {
	p       *plan
	c, s, q *intSum
	midU    int64
	shift   float64
}

func (a *varAgg) sq(t int64) int64 {
	return int64(math.Round(float64(t) * float64(t) / a.shift))
}

func (a *varAgg) fold(s *slot) error {
	var t1, t2 int64
	for _, v := range s.vals {
		t := a.p.snap(v) - a.midU
		t1 += t
		t2 += a.sq(t)
	}
	if err := a.c.add(int64(len(s.vals))); err != nil {
		return err
	}
	if err := a.s.add(t1); err != nil {
		return err
	}
	return a.q.add(t2)
}

func (a *varAgg) rows() ([]Row, error) {
	c, err := a.c.result()
	if err != nil {
		return nil, err
	}
	s1, err := a.s.result()
	if err != nil {
		return nil, err
	}
	s2, err := a.q.result()
	if err != nil {
		return nil, err
	}
	p := a.p
	g, gq := p.gran, p.gran*p.gran*a.shift
	maxVar := (p.upper - p.lower) * (p.upper - p.lower) / 4
	n := math.Max(1, float64(c))
	m1, m2 := float64(s1)*g/n, float64(s2)*gq/n
	v := min(max(m2-m1*m1, 0), maxVar)

	// σ of V = S2/C − (S1/C)² to first order: ∂V/∂S2 = 1/C,
	// ∂V/∂S1 = −2·m1/C, ∂V/∂C = (2·m1² − m2)/C.
	sdC, sdS1, sdS2 := a.c.pr.sd, a.s.pr.sd*g, a.q.pr.sd*gq
	sdV := math.Sqrt(sdS2*sdS2+4*m1*m1*sdS1*sdS1+(2*m1*m1-m2)*(2*m1*m1-m2)*sdC*sdC) / n
	sdV = math.Min(sdV, maxVar)

	// 95% interval by the union bound: each part's library interval at α/3,
	// combined by interval arithmetic.
	cc, err := a.c.ci(ciAlpha / 3)
	if err != nil {
		return nil, err
	}
	c1, err := a.s.ci(ciAlpha / 3)
	if err != nil {
		return nil, err
	}
	c2, err := a.q.ci(ciAlpha / 3)
	if err != nil {
		return nil, err
	}
	cl, ch := math.Max(cc.LowerBound, 1), math.Max(cc.UpperBound, 1)
	m1l, m1h := ratioInterval(c1.LowerBound*g, c1.UpperBound*g, cl, ch)
	m2l, m2h := ratioInterval(math.Max(c2.LowerBound, 0)*gq, math.Max(c2.UpperBound, 0)*gq, cl, ch)
	sql, sqh := m1l*m1l, m1h*m1h
	if sql > sqh {
		sql, sqh = sqh, sql
	}
	if m1l <= 0 && m1h >= 0 {
		sql = 0
	}
	lo := min(max(m2l-sqh, 0), maxVar)
	hi := min(max(m2h-sql, 0), maxVar)

	if p.Aggregate == StdDev {
		sd := math.Sqrt(v)
		sdSD := (p.upper - p.lower) / 2
		if sd > 0 {
			sdSD = math.Min(sdV/(2*sd), sdSD)
		}
		return []Row{{Value: sd, NoiseStdDev: sdSD, CILow: math.Sqrt(lo), CIHigh: math.Sqrt(hi)}}, nil
	}
	return []Row{{Value: v, NoiseStdDev: sdV, CILow: lo, CIHigh: hi}}, nil
}

type quantAgg struct {
	q     *dpagg.BoundedQuantiles
	ranks []float64
}

func (a *quantAgg) fold(s *slot) error {
	for _, v := range s.vals {
		if a.q.Add(v) != nil {
			return addErr("quantiles")
		}
	}
	return nil
}

func (a *quantAgg) rows() ([]Row, error) {
	rows := make([]Row, len(a.ranks))
	for i, r := range a.ranks {
		v, err := a.q.Result(r)
		if err != nil {
			return nil, privacyErr("quantiles", err)
		}
		rank := r
		rows[i] = Row{Rank: &rank, Value: v, NoCI: true}
	}
	return rows, nil
}

// histAgg counts contributions per bucket: one integer primitive per bucket.
type histAgg struct {
	edges []float64
	cells []*intSum
	k     []int64 // scratch: one unit's counts per bucket
}

// bucket returns the index of the bucket holding v, v clamped to the edges.
func bucket(edges []float64, v float64) int {
	i := sort.SearchFloat64s(edges, v) // first edge ≥ v
	if i < len(edges) && edges[i] == v {
		i++ // v starts bucket i
	}
	return min(max(i-1, 0), len(edges)-2)
}

func (a *histAgg) fold(s *slot) error {
	clear(a.k)
	for _, v := range s.vals {
		a.k[bucket(a.edges, v)]++
	}
	for i, k := range a.k {
		if k == 0 {
			continue
		}
		if err := a.cells[i].add(k); err != nil {
			return err
		}
	}
	return nil
}

func (a *histAgg) rows() ([]Row, error) {
	rows := make([]Row, len(a.cells))
	for i, c := range a.cells {
		v, err := c.result()
		if err != nil {
			return nil, err
		}
		ci, err := c.ci(ciAlpha)
		if err != nil {
			return nil, err
		}
		closing := ")"
		if i == len(a.cells)-1 {
			closing = "]"
		}
		rows[i] = Row{
			Bucket: "[" + fmtEdge(a.edges[i]) + ", " + fmtEdge(a.edges[i+1]) + closing,
			Value:  float64(v), NoiseStdDev: c.pr.sd, CILow: ci.LowerBound, CIHigh: ci.UpperBound,
		}
	}
	return rows, nil
}

func fmtEdge(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
