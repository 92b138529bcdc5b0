package dpaudit

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/internal/stattest"
)

// Contribution is one row of a dataset as the enclave sees it.
type Contribution struct {
	Unit  uint64
	Key   string
	Value float64
}

// Options tunes an audit. The zero value is usable.
type Options struct {
	Samples int     // releases per dataset; 0 = 100,000
	Alpha   float64 // 1 − confidence of the bound; 0 = 0.05
	Workers int     // goroutines drawing releases; 0 = GOMAXPROCS
	// Key selects the row whose Value is audited; "" = the first row.
	Key string
}

// Result is the outcome of an audit.
type Result struct {
	Declared   float64 `json:"declared_epsilon"`
	Delta      float64 `json:"delta"`
	LowerBound float64 `json:"epsilon_lower_bound"` // ≥ 0
	Samples    int     `json:"samples"`             // per dataset
	Alpha      float64 `json:"alpha"`
	// The chosen test: the event Value > Threshold (Above) or < Threshold,
	// with P1 the lower bound of its probability on the dataset named First
	// ("A" or "B") and P2 the upper bound on the other.
	Threshold float64 `json:"threshold"`
	Above     bool    `json:"above"`
	First     string  `json:"first"`
	P1        float64 `json:"p1"`
	P2        float64 `json:"p2"`
}

// Release runs one release of spec over data.
func Release(spec enclave.Spec, data []Contribution) (*enclave.Release, error) {
	a, err := enclave.NewAccumulator(spec)
	if err != nil {
		return nil, err
	}
	for _, c := range data {
		if err := a.AddKey(c.Unit, c.Key, c.Value); err != nil {
			return nil, err
		}
	}
	return a.Release()
}

// Sample releases spec over data n times and returns the value of the row
// called key ("" = the first row); a release without that row yields NaN.
func Sample(ctx context.Context, spec enclave.Spec, data []Contribution, key string, n, workers int) ([]float64, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]float64, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if i%256 == w && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				r, err := Release(spec, data)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = math.NaN()
				for _, row := range r.Rows {
					if key == "" || row.Key == key {
						out[i] = row.Value
						break
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Audit releases spec on a and on its neighbour b, opt.Samples times each,
// and bounds the ε spent from below (see the package doc).
func Audit(ctx context.Context, spec enclave.Spec, a, b []Contribution, opt Options) (Result, error) {
	if opt.Samples == 0 {
		opt.Samples = 100_000
	}
	if opt.Alpha == 0 {
		opt.Alpha = 0.05
	}
	if opt.Samples < 100 || !(opt.Alpha > 0 && opt.Alpha < 1) {
		return Result{}, fmt.Errorf("%w: dpaudit: need ≥ 100 samples and alpha in (0, 1)", cove.ErrInvalid)
	}
	sa, err := Sample(ctx, spec, a, opt.Key, opt.Samples, opt.Workers)
	if err != nil {
		return Result{}, err
	}
	sb, err := Sample(ctx, spec, b, opt.Key, opt.Samples, opt.Workers)
	if err != nil {
		return Result{}, err
	}
	r := EpsilonLowerBound(sa, sb, spec.Delta, opt.Alpha)
	r.Declared = spec.Epsilon
	return r, nil
}

// test is one candidate distinguishing event.
type test struct {
	t     float64
	above bool
	swap  bool // first = B
}

func (x test) hits(s []float64) int {
	n := 0
	for _, v := range s {
		if (x.above && v > x.t) || (!x.above && v < x.t) {
			n++
		}
	}
	return n
}

// bound is ln((p1 − δ)/p2) for the test on (first, second) at confidence
// 1 − alpha for each proportion.
func (x test) bound(a, b []float64, delta, alpha float64) (eps, p1, p2 float64) {
	first, second := a, b
	if x.swap {
		first, second = b, a
	}
	p1, _ = stattest.ClopperPearson(x.hits(first), len(first), alpha)
	_, p2 = stattest.ClopperPearson(x.hits(second), len(second), alpha)
	if p1-delta <= 0 {
		return 0, p1, p2
	}
	return math.Max(0, math.Log((p1-delta)/p2)), p1, p2
}

// EpsilonLowerBound chooses a threshold test on the first half of a and b
// and evaluates it on the second half: the returned LowerBound holds with
// confidence 1 − alpha. NaN samples (row not released) count as below every
// threshold. The choice scores each candidate at a stricter confidence
// (alpha/40) than the evaluation: an event seen a handful of times in the
// first half scores low, so a lucky tail event is not chosen over a
// frequent one that carries the evidence (it made the power checks fail one
// run in a few dozen).
func EpsilonLowerBound(a, b []float64, delta, alpha float64) Result {
	clean := func(s []float64) []float64 {
		s = slices.Clone(s)
		for i, v := range s {
			if math.IsNaN(v) {
				s[i] = math.Inf(-1)
			}
		}
		return s
	}
	a, b = clean(a), clean(b)
	ha, hb := len(a)/2, len(b)/2
	a1, a2, b1, b2 := a[:ha], a[ha:], b[:hb], b[hb:]

	pooled := slices.Concat(a1, b1)
	slices.Sort(pooled)
	var cands []float64
	for _, q := range []float64{0.001, 0.002, 0.005} {
		cands = append(cands, pooled[int(q*float64(len(pooled)))], pooled[int((1-q)*float64(len(pooled)))])
	}
	for i := 1; i < 100; i++ {
		cands = append(cands, pooled[i*len(pooled)/100])
	}
	best, bestEps := test{}, -1.0
	for _, t := range cands {
		for _, above := range []bool{true, false} {
			for _, swap := range []bool{false, true} {
				x := test{t: t, above: above, swap: swap}
				if e, _, _ := x.bound(a1, b1, delta, alpha/40); e > bestEps {
					best, bestEps = x, e
				}
			}
		}
	}
	eps, p1, p2 := best.bound(a2, b2, delta, alpha/2)
	first := "A"
	if best.swap {
		first = "B"
	}
	return Result{Delta: delta, LowerBound: eps, Samples: len(a), Alpha: alpha,
		Threshold: best.t, Above: best.above, First: first, P1: p1, P2: p2}
}

// WorstNeighbour returns data without the unit whose contributions have the
// largest total |Value| (for a count, any unit: the first largest), the
// neighbour that moves a sum or a mean the most, and that unit.
func WorstNeighbour(data []Contribution) ([]Contribution, uint64) {
	weight := map[uint64]float64{}
	for _, c := range data {
		weight[c.Unit] += math.Abs(c.Value)
	}
	var worst uint64
	w := -1.0
	for _, c := range data { // data order: deterministic
		if weight[c.Unit] > w {
			worst, w = c.Unit, weight[c.Unit]
		}
	}
	out := make([]Contribution, 0, len(data))
	for _, c := range data {
		if c.Unit != worst {
			out = append(out, c)
		}
	}
	return out, worst
}
