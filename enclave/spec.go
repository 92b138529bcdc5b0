package enclave

import (
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/covedata/cove"
)

// Aggregate names the statistic an output releases.
type Aggregate string

// The aggregates an output may declare.
const (
	Count     Aggregate = "count"
	Sum       Aggregate = "sum"
	Mean      Aggregate = "mean"
	Variance  Aggregate = "variance"
	StdDev    Aggregate = "stddev"
	Quantiles Aggregate = "quantiles"
	Histogram Aggregate = "histogram"
)

// The noise mechanisms an output may declare (Spec.Mechanism, Release.Mechanism).
const (
	MechanismLaplace  = "laplace"
	MechanismGaussian = "gaussian"
)

// Limits on a Spec. A manifest is untrusted input; these keep one output's
// memory and arithmetic within sane bounds.
const (
	// MaxPartitionKeys is the most partitions one output may declare, or
	// discover in the data when its partitions are private.
	MaxPartitionKeys = 1 << 20
	// MaxBound is the largest MaxPartitions or MaxContributions accepted.
	MaxBound = 1 << 20
	// MinEpsilon is the smallest ε accepted: the library refuses ε < 2^-50,
	// and a variance spends ε/3 on each of its three parts.
	MinEpsilon = 0x1p-48
	// MaxRanks is the most quantile ranks one output may ask for.
	MaxRanks = 100
	// MaxBuckets is the most histogram buckets one output may declare.
	MaxBuckets = 1000
	// MaxGridSteps bounds max(|Lower|, |Upper|) / Granularity: the largest
	// value, in grid units, one contribution can carry.
	MaxGridSteps = 1 << 40
	// maxNoiseUnits bounds the noise scale (Laplace b or Gaussian σ) in the
	// integer units of a primitive, so that the noisy int64 cannot overflow
	// (probability < e^-1000).
	maxNoiseUnits = 1 << 52
	// defaultGridSteps: the default Granularity makes max(|Lower|, |Upper|)
	// at most this many grid steps.
	defaultGridSteps = 1 << 24
	// suppressedShare is the part of SelectionEpsilon spent on the noisy
	// count of suppressed partitions; the rest selects partitions.
	suppressedShare = 0.1
)

// Spec declares one output: what a job may release. Validate it once;
// NewAccumulator validates it again.
//
// Budget: Epsilon and Delta are the output's whole share (what the ledger
// debits for it). With private partitions, SelectionEpsilon and
// SelectionDelta of it pay for choosing the partitions and the rest for the
// aggregate. [Compose] gives the cost of several outputs.
//
// Grid: sum, mean, variance and stddev compute in integers on a grid of step
// Granularity (a power of two). Values are clamped to the grid points inside
// [Lower, Upper] and rounded to the nearest grid point; every released sum and
// mean is a multiple of Granularity. Floating-point sums, whose rounding
// depends on order, are never used (google/differential-privacy issue 126).
type Spec struct {
	Output    string
	Aggregate Aggregate
	// Mechanism is "laplace" (default when empty) or "gaussian" (needs δ > 0).
	Mechanism string
	Epsilon   float64 // > 0, finite: the output's whole ε
	Delta     float64 // in [0, 1): the output's whole δ; 0 for Laplace with public partitions
	// Lower and Upper clamp values for sum, mean, variance, stddev and
	// quantiles; ignored for count and histogram.
	Lower, Upper float64
	// Granularity is the grid step of sum, mean, variance and stddev: a power
	// of two, or 0 for the default, the smallest power of two ≥
	// max(|Lower|, |Upper|)/2^24.
	Granularity      float64
	MaxPartitions    int // L0: partitions one privacy unit may contribute to (>=1)
	MaxContributions int // Linf: contributions per unit per partition (>=1)
	// Partitions are the public partition keys: results are released for
	// exactly these, in this order (no duplicates, >=1). Empty when
	// PrivatePartitions is set.
	Partitions []string
	// PrivatePartitions takes the keys from the data and releases only those
	// that dpagg.PreAggSelectPartition keeps; the others are counted
	// (noisily), never named.
	PrivatePartitions bool
	// SelectionEpsilon and SelectionDelta are the part of Epsilon and Delta
	// spent on partition selection (PrivatePartitions only); 0 picks the
	// default: Epsilon/2, and all of Delta for Laplace or Delta/2 for
	// Gaussian. A tenth of SelectionEpsilon pays for the noisy count of
	// suppressed partitions.
	SelectionEpsilon float64
	SelectionDelta   float64
	// Ranks are the quantiles' ranks, each in [0, 1], strictly increasing
	// (quantiles only). All come from one BoundedQuantiles: asking for more
	// ranks costs no more budget.
	Ranks []float64
	// Buckets are the histogram's edges, strictly increasing, at least two:
	// bucket i is [Buckets[i], Buckets[i+1]), the last one closed; values
	// are clamped to [Buckets[0], Buckets[len-1]] (histogram only).
	Buckets []float64
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: enclave spec: "+format, append([]any{cove.ErrInvalid}, args...)...)
}

func finiteNum(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// plan is a validated Spec with every default resolved: the parameters the
// aggregators are built from.
type plan struct {
	Spec
	gaussian bool
	aggEps   float64 // ε and δ left for the aggregate
	aggDelta float64
	selEps   float64 // ε and δ of partition selection proper
	selDelta float64
	supEps   float64 // ε of the noisy count of suppressed partitions

	// Grid aggregates: the grid step and the clamp bounds in grid units.
	gran       float64
	loU, hiU   int64
	lower      float64 // effective clamp bounds in value units
	upper      float64
	usesValues bool // the aggregate keeps contributed values (all but count)
}

// Validate reports the first thing wrong with s, wrapping cove.ErrInvalid
// with a message that names the field.
func (s Spec) Validate() error {
	_, err := s.plan()
	return err
}

func (s Spec) plan() (plan, error) {
	p := plan{Spec: s}
	if s.Output == "" || !utf8.ValidString(s.Output) {
		return p, invalid("Output must be a non-empty UTF-8 name")
	}
	switch s.Aggregate {
	case Count, Sum, Mean, Variance, StdDev, Quantiles, Histogram:
	default:
		return p, invalid("Aggregate %q is not one of count, sum, mean, variance, stddev, quantiles, histogram", s.Aggregate)
	}
	switch s.Mechanism {
	case "", MechanismLaplace:
		p.Mechanism = MechanismLaplace
	case MechanismGaussian:
		p.gaussian = true
	default:
		return p, invalid("Mechanism %q is not laplace or gaussian", s.Mechanism)
	}
	if !finiteNum(s.Epsilon) || s.Epsilon <= 0 {
		return p, invalid("Epsilon must be finite and > 0")
	}
	if !finiteNum(s.Delta) || s.Delta < 0 || s.Delta >= 1 {
		return p, invalid("Delta must be in [0, 1)")
	}
	if s.MaxPartitions < 1 || s.MaxPartitions > MaxBound {
		return p, invalid("MaxPartitions must be in [1, %d]", MaxBound)
	}
	if s.MaxContributions < 1 || s.MaxContributions > MaxBound {
		return p, invalid("MaxContributions must be in [1, %d]", MaxBound)
	}
	if err := p.budget(); err != nil {
		return p, err
	}
	if err := p.partitions(); err != nil {
		return p, err
	}
	if err := p.values(); err != nil {
		return p, err
	}
	// The noise scale of every primitive must fit its integers.
	for _, pr := range p.primitives() {
		if pr.scale > maxNoiseUnits || !finiteNum(pr.scale) {
			return p, invalid("Epsilon is too small for the bounds and Granularity: noise would overflow (declare a coarser Granularity)")
		}
	}
	return p, nil
}

// budget splits Epsilon and Delta between selection and the aggregate.
func (p *plan) budget() error {
	s := p.Spec
	p.aggEps, p.aggDelta = s.Epsilon, s.Delta
	if !s.PrivatePartitions {
		if s.SelectionEpsilon != 0 || s.SelectionDelta != 0 {
			return invalid("SelectionEpsilon and SelectionDelta need PrivatePartitions")
		}
	} else {
		se, sd := s.SelectionEpsilon, s.SelectionDelta
		if se == 0 {
			se = s.Epsilon / 2
		}
		if sd == 0 {
			sd = s.Delta
			if p.gaussian {
				sd = s.Delta / 2
			}
		}
		if !finiteNum(se) || se <= 0 || se >= s.Epsilon {
			return invalid("SelectionEpsilon must be in (0, Epsilon)")
		}
		if !finiteNum(sd) || sd <= 0 || sd > s.Delta {
			return invalid("SelectionDelta must be in (0, Delta]: private partitions need Delta > 0")
		}
		p.SelectionEpsilon, p.SelectionDelta = se, sd
		p.supEps = se * suppressedShare
		p.selEps, p.selDelta = se-p.supEps, sd
		p.aggEps, p.aggDelta = s.Epsilon-se, s.Delta-sd
		if p.supEps < MinEpsilon || p.selEps < MinEpsilon {
			return invalid("SelectionEpsilon must be at least %g", MinEpsilon/suppressedShare)
		}
	}
	if p.aggEps < MinEpsilon {
		return invalid("Epsilon must leave at least 2^-48 for the aggregate")
	}
	if p.gaussian {
		if !(p.aggDelta > 0) {
			return invalid("Delta must leave δ > 0 for the gaussian mechanism")
		}
	} else if p.aggDelta != 0 {
		if s.PrivatePartitions {
			return invalid("SelectionDelta must be all of Delta with the laplace mechanism")
		}
		return invalid("Delta must be 0 with the laplace mechanism and public partitions")
	}
	return nil
}

func (p *plan) partitions() error {
	s := p.Spec
	if s.PrivatePartitions {
		if len(s.Partitions) != 0 {
			return invalid("Partitions must be empty when PrivatePartitions is set")
		}
		return nil
	}
	if len(s.Partitions) == 0 {
		return invalid("Partitions must list at least one key (or set PrivatePartitions)")
	}
	if len(s.Partitions) > MaxPartitionKeys {
		return invalid("Partitions lists more than %d keys", MaxPartitionKeys)
	}
	seen := make(map[string]struct{}, len(s.Partitions))
	for i, k := range s.Partitions {
		if !utf8.ValidString(k) {
			return invalid("Partitions[%d] is not valid UTF-8", i)
		}
		if _, dup := seen[k]; dup {
			return invalid("Partitions[%d] duplicates key %q", i, k)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// values checks bounds, grid, ranks and buckets.
func (p *plan) values() error {
	s := p.Spec
	if s.Aggregate != Quantiles && len(s.Ranks) != 0 {
		return invalid("Ranks are for quantiles only")
	}
	if s.Aggregate != Histogram && len(s.Buckets) != 0 {
		return invalid("Buckets are for histogram only")
	}
	grid := s.Aggregate == Sum || s.Aggregate == Mean || s.Aggregate == Variance || s.Aggregate == StdDev
	if !grid && s.Granularity != 0 {
		return invalid("Granularity is for sum, mean, variance and stddev only")
	}
	p.usesValues = s.Aggregate != Count
	switch s.Aggregate {
	case Count:
		return nil
	case Histogram:
		n := len(s.Buckets)
		if n < 2 || n > MaxBuckets+1 {
			return invalid("Buckets must list 2 to %d edges", MaxBuckets+1)
		}
		for i, b := range s.Buckets {
			if !finiteNum(b) {
				return invalid("Buckets[%d] must be finite", i)
			}
			if i > 0 && !(b > s.Buckets[i-1]) {
				return invalid("Buckets[%d] must be greater than Buckets[%d]", i, i-1)
			}
		}
		p.lower, p.upper = s.Buckets[0], s.Buckets[n-1]
		return nil
	}
	if !finiteNum(s.Lower) {
		return invalid("Lower must be finite")
	}
	if !finiteNum(s.Upper) {
		return invalid("Upper must be finite")
	}
	if s.Lower >= s.Upper {
		return invalid("Lower must be < Upper")
	}
	if math.IsInf(s.Upper-s.Lower, 0) {
		return invalid("Upper − Lower overflows")
	}
	p.lower, p.upper = s.Lower, s.Upper
	if s.Aggregate == Quantiles {
		if len(s.Ranks) == 0 || len(s.Ranks) > MaxRanks {
			return invalid("Ranks must list 1 to %d ranks", MaxRanks)
		}
		for i, r := range s.Ranks {
			if !(r >= 0 && r <= 1) {
				return invalid("Ranks[%d] must be in [0, 1]", i)
			}
			if i > 0 && !(r > s.Ranks[i-1]) {
				return invalid("Ranks[%d] must be greater than Ranks[%d]", i, i-1)
			}
		}
		return nil
	}
	return p.grid()
}

// grid resolves the granularity and the clamp bounds in grid units.
func (p *plan) grid() error {
	s := p.Spec
	maxAbs := math.Max(math.Abs(s.Lower), math.Abs(s.Upper))
	g := s.Granularity
	if g == 0 {
		g = max(ceilPow2(maxAbs/defaultGridSteps), 0x1p-60)
		if g > 0x1p60 {
			return invalid("Lower and Upper are too large: max(|Lower|, |Upper|) must be below 2^84")
		}
	} else if !finiteNum(g) || g <= 0 || ceilPow2(g) != g || g < 0x1p-60 || g > 0x1p60 {
		return invalid("Granularity must be a power of two in [2^-60, 2^60]")
	}
	if maxAbs/g > MaxGridSteps {
		return invalid("Granularity is too fine: max(|Lower|, |Upper|) is more than 2^40 grid steps")
	}
	lo, hi := math.Ceil(s.Lower/g), math.Floor(s.Upper/g)
	if !(lo < hi) {
		return invalid("Lower and Upper must enclose at least two grid points of Granularity %g", g)
	}
	p.gran, p.loU, p.hiU = g, int64(lo), int64(hi)
	p.lower, p.upper = lo*g, hi*g
	return nil
}

// ceilPow2 is the smallest power of two ≥ x, for finite x > 0.
func ceilPow2(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 0) {
		return math.NaN()
	}
	frac, exp := math.Frexp(x) // x = frac·2^exp, frac in [0.5, 1)
	if frac == 0.5 {
		return x
	}
	return math.Ldexp(1, exp)
}

// sortedCopy returns a sorted copy of keys (private partitions release in key
// order, never in arrival order).
func sortedCopy(keys []string) []string {
	k := slices.Clone(keys)
	slices.Sort(k)
	return k
}
