package enclave

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/covedata/cove"
)

// totals reads the exact (pre-noise) totals of every partition's integer
// primitives, in order: what a bounding path handed to the noise.
func totals(t *testing.T, a *Accumulator) [][]int64 {
	t.Helper()
	out := make([][]int64, len(a.aggs))
	for i, g := range a.aggs {
		switch g := g.(type) {
		case *countAgg:
			out[i] = []int64{g.c.total}
		case *sumAgg:
			out[i] = []int64{g.s.total}
		case *meanAgg:
			out[i] = []int64{g.c.total, g.s.total}
		case *varAgg:
			out[i] = []int64{g.c.total, g.s.total, g.q.total}
		case *histAgg:
			for _, c := range g.cells {
				out[i] = append(out[i], c.total)
			}
		default:
			t.Fatalf("partition %d: %T has no exact total", i, g)
		}
	}
	return out
}

func equalTotals(a, b [][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

// rowData is n rows over parts partitions, with some skipped rows (-1),
// NaN, infinite and out-of-bound values.
func rowData(n, parts int, seed uint64) ([]int32, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	ps := make([]int32, n)
	vs := make([]float64, n)
	for i := range ps {
		ps[i] = int32(r.IntN(parts+1)) - 1
		switch r.IntN(20) {
		case 0:
			vs[i] = math.NaN()
		case 1:
			vs[i] = math.Inf(1)
		case 2:
			vs[i] = -1e9
		default:
			vs[i] = r.Float64()*140 - 20
		}
	}
	return ps, vs
}

// TestAddRowsMatchesAdd: AddRows hands the noise exactly the totals that one
// Add per row, each row its own unit, would.
func TestAddRowsMatchesAdd(t *testing.T) {
	for _, agg := range []Aggregate{Count, Sum, Mean, Variance, StdDev, Histogram} {
		for _, private := range []bool{false, true} {
			t.Run(string(agg)+map[bool]string{false: "/public", true: "/private"}[private], func(t *testing.T) {
				s := Spec{Output: "o", Aggregate: agg, Epsilon: 1, MaxPartitions: 2, MaxContributions: 3}
				if agg != Count && agg != Histogram {
					s.Lower, s.Upper = -10, 100
				}
				if agg == Histogram {
					s.Buckets = []float64{0, 10, 50, 100}
				}
				keys := []string{"a", "b", "c", "d", "e"}
				if private {
					s.PrivatePartitions, s.Delta = true, 1e-5
				} else {
					s.Partitions = keys
				}
				fast, slow := mustAccumulator(t, s), mustAccumulator(t, s)
				if private {
					for _, k := range keys {
						if _, err := fast.Partition(k); err != nil {
							t.Fatal(err)
						}
						if _, err := slow.Partition(k); err != nil {
							t.Fatal(err)
						}
					}
				}
				unit := uint64(0)
				for call := range 3 {
					ps, vs := rowData(5000, len(keys), uint64(call))
					if agg == Count && call == 1 {
						vs = nil // counts take no values
					}
					if err := fast.AddRows(ps, vs); err != nil {
						t.Fatal(err)
					}
					for i, p := range ps {
						unit++
						if p < 0 {
							continue
						}
						v := 0.0
						if vs != nil {
							v = vs[i]
						}
						if err := slow.Add(unit, int(p), v); err != nil {
							t.Fatal(err)
						}
					}
				}
				slow.foldBelow(0, true)
				if got, want := totals(t, fast), totals(t, slow); !equalTotals(got, want) {
					t.Fatalf("AddRows totals %v, Add per unit %v", got, want)
				}
				if private {
					for i := range keys {
						if fast.nUnits[i] != slow.nUnits[i] {
							t.Fatalf("partition %d: %d units by AddRows, %d by Add", i, fast.nUnits[i], slow.nUnits[i])
						}
					}
					if fast.present != slow.present {
						t.Fatalf("present %d vs %d", fast.present, slow.present)
					}
				}
				if _, err := fast.Release(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestAddUnitsMatchesAdd: with bounds wide enough that nothing is sampled
// away, bulk bounding keeps exactly what a stream of Add keeps.
func TestAddUnitsMatchesAdd(t *testing.T) {
	for _, agg := range []Aggregate{Count, Sum, Mean, Variance, Histogram} {
		t.Run(string(agg), func(t *testing.T) {
			s := Spec{Output: "o", Aggregate: agg, Epsilon: 1, MaxPartitions: 5, MaxContributions: 64, Partitions: []string{"a", "b", "c", "d", "e"}}
			if agg != Count && agg != Histogram {
				s.Lower, s.Upper = -10, 100
			}
			if agg == Histogram {
				s.Buckets = []float64{0, 10, 50, 100}
			}
			bulk, stream := mustAccumulator(t, s), mustAccumulator(t, s)
			r := rand.New(rand.NewPCG(7, 7))
			ps, vs := rowData(20000, 5, 3)
			units := make([]uint64, len(ps))
			for i := range units {
				units[i] = r.Uint64() >> r.IntN(64) // spread over buckets, some shared
				if i > 0 && r.IntN(3) > 0 {
					units[i] = units[r.IntN(i)] // several rows per unit
				}
			}
			// Keep every unit under L∞ per partition: count rows per (unit, part).
			seen := map[[2]uint64]int{}
			for i := range ps {
				k := [2]uint64{units[i], uint64(ps[i] + 1)}
				if seen[k]++; seen[k] > 64 {
					ps[i] = -1
				}
			}
			if err := bulk.AddUnits(units, ps, vs); err != nil {
				t.Fatal(err)
			}
			for i, p := range ps {
				if p >= 0 {
					if err := stream.Add(units[i], int(p), vs[i]); err != nil {
						t.Fatal(err)
					}
				}
			}
			stream.foldBelow(0, true)
			bulk.foldBulk()
			if got, want := totals(t, bulk), totals(t, stream); !equalTotals(got, want) {
				t.Fatalf("AddUnits totals %v, Add %v", got, want)
			}
		})
	}
}

// TestAddUnitsBounds: every unit's kept contributions respect L0 and L∞.
func TestAddUnitsBounds(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Count, Epsilon: hugeEpsilon, MaxPartitions: 2, MaxContributions: 3, Partitions: []string{"a", "b", "c", "d"}}
	a := mustAccumulator(t, s)
	const units = 500
	var us []uint64
	var ps []int32
	for u := range units {
		for p := range 4 {
			for range 10 {
				us = append(us, uint64(u)*0x9e3779b97f4a7c15)
				ps = append(ps, int32(p))
			}
		}
	}
	if err := a.AddUnits(us, ps, nil); err != nil {
		t.Fatal(err)
	}
	a.foldBulk()
	var total int64
	for _, g := range totals(t, a) {
		total += g[0]
	}
	// Each unit keeps exactly 2 partitions × 3 contributions.
	if want := int64(units * 2 * 3); total != want {
		t.Fatalf("kept %d contributions, want %d", total, want)
	}
}

func TestFastPathErrors(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Sum, Epsilon: 1, Lower: 0, Upper: 1, MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"a"}}
	tests := []struct {
		name string
		do   func(a *Accumulator) error
	}{
		{"rows then add", func(a *Accumulator) error {
			if err := a.AddRows([]int32{0}, []float64{1}); err != nil {
				return err
			}
			return a.Add(1, 0, 1)
		}},
		{"add then rows", func(a *Accumulator) error {
			if err := a.Add(1, 0, 1); err != nil {
				return err
			}
			return a.AddRows([]int32{0}, []float64{1})
		}},
		{"units then add", func(a *Accumulator) error {
			if err := a.AddUnits([]uint64{1}, []int32{0}, []float64{1}); err != nil {
				return err
			}
			return a.Add(1, 0, 1)
		}},
		{"partition out of range", func(a *Accumulator) error { return a.AddRows([]int32{1}, []float64{1}) }},
		{"bulk partition out of range", func(a *Accumulator) error { return a.AddUnits([]uint64{1}, []int32{3}, []float64{1}) }},
		{"missing values", func(a *Accumulator) error { return a.AddRows([]int32{0, 0}, []float64{1}) }},
		{"after release", func(a *Accumulator) error {
			if _, err := a.Release(); err != nil {
				return err
			}
			return a.AddRows([]int32{0}, []float64{1})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(mustAccumulator(t, s))
			if !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("got %v, want cove.ErrInvalid", err)
			}
		})
	}
}

// BenchmarkAddRowsMean is the per-row path of a mean over 60 partitions.
func BenchmarkAddRowsMean(b *testing.B) {
	s := Spec{Output: "o", Aggregate: Mean, Epsilon: 1, Lower: 0, Upper: 1000, MaxPartitions: 1, MaxContributions: 1}
	for i := range 60 {
		s.Partitions = append(s.Partitions, string(rune('A'+i)))
	}
	ps, vs := rowData(1<<16, 60, 1)
	a, _ := NewAccumulator(s)
	b.SetBytes(int64(len(ps)) * 12)
	for b.Loop() {
		if err := a.AddRows(ps, vs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ps)), "ns/row")
}

// BenchmarkAddUnitsMean is the bulk path of a mean, 10 rows per unit, with
// the bounding at Release included.
func BenchmarkAddUnitsMean(b *testing.B) {
	s := Spec{Output: "o", Aggregate: Mean, Epsilon: 1, Lower: 0, Upper: 1000, MaxPartitions: 1, MaxContributions: 1}
	for i := range 60 {
		s.Partitions = append(s.Partitions, string(rune('A'+i)))
	}
	const n = 1 << 20
	ps, vs := rowData(n, 60, 1)
	us := make([]uint64, n)
	for i := range us {
		us[i] = mix64(uint64(i / 10))
	}
	for b.Loop() {
		a, _ := NewAccumulator(s)
		if err := a.AddUnits(us, ps, vs); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Release(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

// TestAddUnitsSingleUniform: with L0 = L∞ = 1 bulk bounding keeps one
// contribution per unit, its partition uniform among those the unit
// touched and its value uniform among the unit's values there (5σ bounds).
func TestAddUnitsSingleUniform(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Sum, Epsilon: hugeEpsilon, Lower: 0, Upper: 8, MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"a", "b", "c", "d"}}
	a := mustAccumulator(t, s)
	const units = 40000
	var us []uint64
	var ps []int32
	var vs []float64
	for u := range units {
		id := mix64(uint64(u) + 1)
		for p := range 4 {
			n := 1
			if p == 0 {
				n = 8 // partition 0 gets 8 contributions: still chosen 1/4 of the time
			}
			for j := range n {
				us, ps, vs = append(us, id), append(ps, int32(p)), append(vs, float64(j+1))
			}
		}
	}
	if err := a.AddUnits(us, ps, vs); err != nil {
		t.Fatal(err)
	}
	a.foldBulk()
	tot := totals(t, a)
	g := a.p.gran
	// Partitions b, c, d: kept value 1 each time, so the total counts units.
	for p := 1; p < 4; p++ {
		n := float64(tot[p][0]) * g
		if sd := math.Sqrt(units * 0.25 * 0.75); math.Abs(n-units/4) > 5*sd {
			t.Errorf("partition %d kept %v units, want %v ± %v", p, n, units/4, 5*sd)
		}
	}
	// Partition 0: the kept value is uniform on 1..8 (mean 4.5).
	n0 := units - (float64(tot[1][0])+float64(tot[2][0])+float64(tot[3][0]))*g
	mean := float64(tot[0][0]) * g / n0
	if sd := math.Sqrt((64 - 1) / 12.0 / n0); math.Abs(mean-4.5) > 5*sd {
		t.Errorf("partition 0 kept values of mean %v, want 4.5 ± %v", mean, 5*sd)
	}
}
