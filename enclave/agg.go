package enclave

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// ciAlpha is the library's alpha: ComputeConfidenceInterval(alpha) covers the
// raw value with probability ≥ 1 − alpha, so 0.05 gives a 95% interval.
const ciAlpha = 0.05

// partAgg is one public partition's DP aggregator. fold receives one privacy
// unit's bounded contributions to the partition, once per unit.
type partAgg interface {
	fold(s *slot) error
	result() (Row, error)
}

func privacyErr(what string, err error) error {
	// Library messages carry parameters only, never contributed values, on
	// the paths used here (Result, ComputeConfidenceInterval, constructors).
	return fmt.Errorf("%w: %s: %v", cove.ErrPrivacy, what, err)
}

// newPartAgg builds the aggregator for one partition of a valid spec.
func newPartAgg(s Spec) (partAgg, error) {
	l0, linf := int64(s.MaxPartitions), int64(s.MaxContributions)
	switch s.Aggregate {
	case Count:
		// Laplace scale b = L0·L∞·1/ε, as noise.laplaceLambda computes it.
		sd := math.Sqrt2 * float64(l0) * float64(linf) / s.Epsilon
		if linf == 1 {
			c, err := dpagg.NewCount(&dpagg.CountOptions{
				Epsilon: s.Epsilon, MaxPartitionsContributed: l0, Noise: noise.Laplace(),
			})
			if err != nil {
				return nil, privacyErr("count", err)
			}
			return &countAgg{c: c, sd: sd}, nil
		}
		// dpagg.Count does not expose MaxContributionsPerPartition; its doc
		// sends multi-contribution counts to BoundedSumInt64. Each unit adds
		// its kept count k ∈ [0, L∞]: L∞ sensitivity L∞, the same noise.
		c, err := dpagg.NewBoundedSumInt64(&dpagg.BoundedSumInt64Options{
			Epsilon: s.Epsilon, MaxPartitionsContributed: l0,
			Lower: 0, Upper: linf, Noise: noise.Laplace(),
		})
		if err != nil {
			return nil, privacyErr("count", err)
		}
		return &multiCountAgg{c: c, linf: linf, sd: sd}, nil
	case Sum:
		// BoundedSumFloat64 assumes one value per unit per partition, so a
		// unit's ≤ L∞ kept values are pre-summed and the bounds scaled by L∞.
		// The library's L∞ sensitivity is then max(|lo|, |hi|) =
		// L∞·max(|Lower|, |Upper|), computed here from the same numbers.
		lo, hi := s.Lower*float64(linf), s.Upper*float64(linf)
		bs, err := dpagg.NewBoundedSumFloat64(&dpagg.BoundedSumFloat64Options{
			Epsilon: s.Epsilon, MaxPartitionsContributed: l0,
			Lower: lo, Upper: hi, Noise: noise.Laplace(),
		})
		if err != nil {
			return nil, privacyErr("sum", err)
		}
		sd := math.Sqrt2 * float64(l0) * math.Max(math.Abs(lo), math.Abs(hi)) / s.Epsilon
		return &sumAgg{s: bs, sd: sd}, nil
	case Mean:
		m, err := dpagg.NewBoundedMean(&dpagg.BoundedMeanOptions{
			Epsilon: s.Epsilon, MaxPartitionsContributed: l0, MaxContributionsPerPartition: linf,
			Lower: s.Lower, Upper: s.Upper, Noise: noise.Laplace(),
		})
		if err != nil {
			return nil, privacyErr("mean", err)
		}
		// The library's construction (dpagg/mean.go): ε/2 each for a count
		// and for a sum of values shifted by mid into [−h, h], both with
		// L0 and L∞ as given.
		mid := s.Lower + (s.Upper-s.Lower)/2
		h := s.Upper - mid
		half := s.Epsilon / 2
		return &meanAgg{
			m:       m,
			mid:     mid,
			lower:   s.Lower,
			upper:   s.Upper,
			sdCount: math.Sqrt2 * float64(l0) * float64(linf) / half,
			sdSum:   math.Sqrt2 * float64(l0) * float64(linf) * h / half,
		}, nil
	}
	return nil, invalid("Aggregate %q is not one of count, sum, mean", s.Aggregate)
}

// addErr hides the library's message: it may quote the value.
func addErr(what string) error {
	return fmt.Errorf("%w: %s: the aggregator refused a contribution", cove.ErrPrivacy, what)
}

type countAgg struct {
	c  *dpagg.Count
	sd float64
}

func (a *countAgg) fold(s *slot) error {
	if s.seen == 0 {
		return nil
	}
	if a.c.Increment() != nil {
		return addErr("count")
	}
	return nil
}

func (a *countAgg) result() (Row, error) {
	v, err := a.c.Result()
	if err != nil {
		return Row{}, privacyErr("count", err)
	}
	ci, err := a.c.ComputeConfidenceInterval(ciAlpha)
	if err != nil {
		return Row{}, privacyErr("count confidence interval", err)
	}
	return Row{Value: float64(v), NoiseStdDev: a.sd, CILow: ci.LowerBound, CIHigh: ci.UpperBound}, nil
}

type multiCountAgg struct {
	c    *dpagg.BoundedSumInt64
	linf int64
	sd   float64
}

func (a *multiCountAgg) fold(s *slot) error {
	k := int64(min(s.seen, uint64(a.linf))) // the reservoir's size
	if a.c.Add(k) != nil {
		return addErr("count")
	}
	return nil
}

func (a *multiCountAgg) result() (Row, error) {
	v, err := a.c.Result()
	if err != nil {
		return Row{}, privacyErr("count", err)
	}
	ci, err := a.c.ComputeConfidenceInterval(ciAlpha)
	if err != nil {
		return Row{}, privacyErr("count confidence interval", err)
	}
	return Row{Value: float64(v), NoiseStdDev: a.sd, CILow: ci.LowerBound, CIHigh: ci.UpperBound}, nil
}

type sumAgg struct {
	s  *dpagg.BoundedSumFloat64
	sd float64
}

func (a *sumAgg) fold(s *slot) error {
	var t float64
	for _, v := range s.vals {
		t += v
	}
	if a.s.Add(t) != nil {
		return addErr("sum")
	}
	return nil
}

func (a *sumAgg) result() (Row, error) {
	v, err := a.s.Result()
	if err != nil {
		return Row{}, privacyErr("sum", err)
	}
	ci, err := a.s.ComputeConfidenceInterval(ciAlpha)
	if err != nil {
		return Row{}, privacyErr("sum confidence interval", err)
	}
	return Row{Value: v, NoiseStdDev: a.sd, CILow: ci.LowerBound, CIHigh: ci.UpperBound}, nil
}

type meanAgg struct {
	m                 *dpagg.BoundedMean
	mid, lower, upper float64
	sdCount, sdSum    float64 // σ of the library's count and normalized-sum noise
}

func (a *meanAgg) fold(s *slot) error {
	for _, v := range s.vals {
		if a.m.Add(v) != nil {
			return addErr("mean")
		}
	}
	return nil
}

// pointAlpha makes the count's confidence interval collapse onto the noisy
// count: its half-width λ·ln(1/pointAlpha) rounds to 0 for λ < 5·10^8.
const pointAlpha = 1 - 1e-9

func (a *meanAgg) result() (Row, error) {
	v, err := a.m.Result()
	if err != nil {
		return Row{}, privacyErr("mean", err)
	}
	ci, err := a.m.ComputeConfidenceInterval(ciAlpha)
	if err != nil {
		return Row{}, privacyErr("mean confidence interval", err)
	}
	// The noisy count the library divided by, recovered without reading its
	// private state: Result() has been called, so the count's own interval
	// is available, and at pointAlpha it is [c̃, c̃] (clamped at 0). This is
	// post-processing of released noise and spends no budget.
	cci, err := a.m.Count.ComputeConfidenceInterval(pointAlpha)
	if err != nil {
		return Row{}, privacyErr("mean count", err)
	}
	n := math.Max(1, math.Round((cci.LowerBound+cci.UpperBound)/2))
	return Row{Value: v, NoiseStdDev: a.meanSD(v, n), CILow: ci.LowerBound, CIHigh: ci.UpperBound}, nil
}

// meanSD approximates the standard deviation of the released mean
// mid + S̃/max(1, C̃), where S̃ and C̃ are the library's noisy normalized sum and
// count with Laplace σ sdSum and sdCount. First-order (delta method) around
// the released values, with n = max(1, C̃) standing in for the true count and
// v − mid for S/C:
//
//	σ ≈ √(sdSum² + (v − mid)²·sdCount²) / n
//
// capped at (Upper − Lower)/2, the largest standard deviation any value
// clamped to [Lower, Upper] can have. It is an approximation: good when n is
// large against sdCount, pessimistic (capped) when the count is mostly noise.
func (a *meanAgg) meanSD(v, n float64) float64 {
	d := v - a.mid
	sd := math.Sqrt(a.sdSum*a.sdSum+d*d*a.sdCount*a.sdCount) / n
	return math.Min(sd, (a.upper-a.lower)/2)
}
