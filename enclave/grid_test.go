package enclave

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func onGridOf(v, g float64) bool {
	q := v / g
	return q == math.Trunc(q) && !math.IsInf(q, 0)
}

// TestGridProperty: every released sum and mean is a multiple of its
// Granularity, over 10^5 releases of each (random grids, bounds, mechanisms
// and small datasets with off-grid, out-of-range and NaN values). The naive
// float Laplace control lands off the grid almost always.
func TestGridProperty(t *testing.T) {
	releases := 100_000
	if raceEnabled {
		releases = 2_000 // the property does not depend on scheduling
	}
	for _, agg := range []Aggregate{Sum, Mean} {
		t.Run(string(agg), func(t *testing.T) {
			var off, rows, n atomic.Int64
			w := runtime.GOMAXPROCS(0)
			var wg sync.WaitGroup
			for g := range w {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(g), 99)) // data and specs, not noise
					for i := g; i < releases; i += w {
						s := randomGridSpec(r, agg)
						a, err := NewAccumulator(s)
						if err != nil {
							t.Errorf("spec %+v: %v", s, err)
							return
						}
						for u := range uint64(1 + r.IntN(4)) {
							v := s.Lower + (s.Upper-s.Lower)*(1.4*r.Float64()-0.2)
							switch r.IntN(20) {
							case 0:
								v = math.NaN()
							case 1:
								v = math.Inf(1)
							}
							a.Add(u, 0, v)
						}
						rel, err := a.Release()
						if err != nil {
							t.Errorf("Release: %v", err)
							return
						}
						n.Add(1)
						for _, row := range rel.Rows {
							rows.Add(1)
							if !onGridOf(row.Value, rel.Granularity) || (agg == Mean && (row.Value < rel.Lower || row.Value > rel.Upper)) {
								if off.Add(1) <= 3 {
									t.Errorf("off grid: %v with granularity %v (spec %+v)", row.Value, rel.Granularity, s)
								}
							}
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%s: %d releases, %d values, %d off the grid", agg, n.Load(), rows.Load(), off.Load())
		})
	}
	t.Run("control naive float Laplace", func(t *testing.T) {
		off := 0
		const n = 10_000
		for range n {
			if !onGridOf(3+naiveLaplace(1), 0x1p-20) {
				off++
			}
		}
		t.Logf("naive float Laplace: %d of %d values off a 2^-20 grid", off, n)
		if off < n*99/100 {
			t.Errorf("only %d of %d naive values off the grid: the property test would not see them", off, n)
		}
	})
}

func randomGridSpec(r *rand.Rand, agg Aggregate) Spec {
	s := Spec{Output: "o", Aggregate: agg, Epsilon: math.Ldexp(1, r.IntN(8)-4),
		MaxPartitions: 1 + r.IntN(2), MaxContributions: 1 + r.IntN(3), Partitions: []string{"p"}}
	if r.IntN(2) == 0 {
		s.Mechanism, s.Delta = MechanismGaussian, 1e-6
	}
	scale := math.Ldexp(1, r.IntN(20)-8)
	s.Lower = -scale * 3 * r.Float64()
	s.Upper = s.Lower + scale*(0.5+r.Float64())
	if r.IntN(2) == 0 {
		s.Granularity = math.Ldexp(1, int(math.Floor(math.Log2(scale)))-r.IntN(10)-2)
	}
	return s
}
