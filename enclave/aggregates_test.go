package enclave

import (
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

// valuesData: 200 units, one value each in partition 0, values 0.5, 1.5, …
// (i mod 50) + 0.5, all inside [0, 50].
func valuesData() []float64 {
	v := make([]float64, 200)
	for i := range v {
		v[i] = float64(i%50) + 0.5
	}
	return v
}

// TestAggregatesNoiseless releases each aggregate with negligible noise and
// checks it against the exact value.
func TestAggregatesNoiseless(t *testing.T) {
	vals := valuesData()
	var mean, m2 float64
	for _, v := range vals {
		mean += v
	}
	mean /= float64(len(vals))
	for _, v := range vals {
		m2 += (v - mean) * (v - mean)
	}
	variance := m2 / float64(len(vals))
	sorted := slices.Clone(vals)
	sort.Float64s(sorted)

	tests := []struct {
		name  string
		spec  Spec
		check func(t *testing.T, rows []Row)
	}{
		{name: "variance", spec: Spec{Aggregate: Variance, Lower: 0, Upper: 50}, check: func(t *testing.T, rows []Row) {
			if math.Abs(rows[0].Value-variance) > 1e-3 {
				t.Errorf("variance %v, want %v", rows[0].Value, variance)
			}
			if !(rows[0].CILow <= variance && variance <= rows[0].CIHigh) {
				t.Errorf("CI [%v, %v] misses %v", rows[0].CILow, rows[0].CIHigh, variance)
			}
		}},
		{name: "stddev", spec: Spec{Aggregate: StdDev, Lower: 0, Upper: 50}, check: func(t *testing.T, rows []Row) {
			if math.Abs(rows[0].Value-math.Sqrt(variance)) > 1e-3 {
				t.Errorf("stddev %v, want %v", rows[0].Value, math.Sqrt(variance))
			}
		}},
		{name: "quantiles", spec: Spec{Aggregate: Quantiles, Lower: 0, Upper: 50, Ranks: []float64{0.1, 0.5, 0.9}}, check: func(t *testing.T, rows []Row) {
			if len(rows) != 3 {
				t.Fatalf("%d rows, want 3", len(rows))
			}
			for i, r := range []float64{0.1, 0.5, 0.9} {
				want := sorted[int(r*float64(len(sorted)))]
				if rows[i].Rank == nil || *rows[i].Rank != r || !rows[i].NoCI {
					t.Errorf("row %d: rank %v, NoCI %v", i, rows[i].Rank, rows[i].NoCI)
				}
				if math.Abs(rows[i].Value-want) > 1.01 { // one value step
					t.Errorf("q(%v) = %v, want ≈ %v", r, rows[i].Value, want)
				}
			}
		}},
		{name: "histogram", spec: Spec{Aggregate: Histogram, Buckets: []float64{0, 10, 25, 50}}, check: func(t *testing.T, rows []Row) {
			want := []float64{40, 60, 100} // values 0.5..9.5 ×4, 10.5..24.5 ×4, 25.5..49.5 ×4
			labels := []string{"[0, 10)", "[10, 25)", "[25, 50]"}
			if len(rows) != 3 {
				t.Fatalf("%d rows, want 3", len(rows))
			}
			for i := range rows {
				if math.Abs(rows[i].Value-want[i]) > 0.5 || rows[i].Bucket != labels[i] {
					t.Errorf("bucket %q = %v, want %q = %v", rows[i].Bucket, rows[i].Value, labels[i], want[i])
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Output, s.Epsilon, s.MaxPartitions, s.MaxContributions, s.Partitions = "o", hugeEpsilon*100, 1, 1, []string{"p"}
			a := mustAccumulator(t, s)
			for u, v := range vals {
				if err := a.Add(uint64(u), 0, v); err != nil {
					t.Fatal(err)
				}
			}
			r := mustRelease(t, a)
			for _, row := range r.Rows {
				if row.Key != "p" {
					t.Errorf("key %q", row.Key)
				}
			}
			tt.check(t, r.Rows)
		})
	}
}

func TestBucket(t *testing.T) {
	edges := []float64{0, 1, 2}
	for _, tc := range []struct {
		v    float64
		want int
	}{{-5, 0}, {0, 0}, {0.5, 0}, {1, 1}, {1.5, 1}, {2, 1}, {7, 1}} {
		if got := bucket(edges, tc.v); got != tc.want {
			t.Errorf("bucket(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestGaussianRelease(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Sum, Mechanism: MechanismGaussian, Epsilon: 1, Delta: 1e-6,
		Lower: 0, Upper: 10, MaxPartitions: 2, MaxContributions: 1, Partitions: []string{"a"}}
	a := mustAccumulator(t, s)
	a.Add(1, 0, 5)
	r := mustRelease(t, a)
	if r.Mechanism != MechanismGaussian || r.Noise[0].Mechanism != MechanismGaussian {
		t.Errorf("mechanism %q / %q", r.Mechanism, r.Noise[0].Mechanism)
	}
	// Δ₂ = 10·√2. The analytic Gaussian (Balle & Wang) needs σ ≈ 4.2·Δ₂ at
	// ε = 1, δ = 10^-6, below the classical Δ₂·√(2·ln(1.25/δ))/ε ≈ 5.3·Δ₂.
	l2 := 10 * math.Sqrt2
	if sd := r.Rows[0].NoiseStdDev; sd < 4*l2 || sd > math.Sqrt(2*math.Log(1.25/1e-6))*l2 {
		t.Errorf("σ = %v, want ≈ %v", sd, 4.2*l2)
	}
}

// TestPrivatePartitions: a key with many units is released, a key of one
// unit is not (δ = 10^-9), and the suppressed count says about one.
func TestPrivatePartitions(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Count, Epsilon: 20, Delta: 1e-9, MaxPartitions: 1, MaxContributions: 1,
		PrivatePartitions: true}
	var sup float64
	const reps = 20
	for range reps {
		a := mustAccumulator(t, s)
		for u := range uint64(500) {
			if err := a.AddKey(u, "crowd", 0); err != nil {
				t.Fatal(err)
			}
		}
		a.AddKey(1000, "alone", 0)
		a.AddKey(1001, "\xffbad", 0)
		r := mustRelease(t, a)
		if len(r.Rows) != 1 || r.Rows[0].Key != "crowd" {
			t.Fatalf("rows %+v, want only crowd", r.Rows)
		}
		if math.Abs(r.Rows[0].Value-500) > 10 {
			t.Errorf("crowd = %v", r.Rows[0].Value)
		}
		if !r.PrivatePartitions || r.Suppressed < 0 {
			t.Errorf("release %+v", r)
		}
		sup += float64(r.Suppressed)
	}
	// ε_sup = 20·0.5·0.1 = 1, noise σ = √2: the mean of 20 is within 2 of 2.
	if m := sup / reps; m < 0.5 || m > 4 {
		t.Errorf("mean suppressed %v, want ≈ 2", m)
	}
	if b, _ := mustAccumulator(t, s).Partition("x"); b != 0 {
		t.Errorf("first private key index %d", b)
	}
}

func TestPublicAddKey(t *testing.T) {
	s := validSpec(Count)
	s.Epsilon = hugeEpsilon
	a := mustAccumulator(t, s)
	if err := a.AddKey(1, "south", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.AddKey(2, "undeclared", 0); err != nil {
		t.Fatalf("undeclared key: %v, want dropped", err)
	}
	if i, _ := a.Partition("undeclared"); i != -1 {
		t.Errorf("Partition(undeclared) = %d, want -1", i)
	}
	r := mustRelease(t, a)
	if len(r.Rows) != 4 || r.Rows[1].Value != 1 || r.Suppressed != 0 {
		t.Errorf("rows %+v suppressed %d", r.Rows, r.Suppressed)
	}
}

func TestPrivateKeyLimit(t *testing.T) {
	s := Spec{Output: "o", Aggregate: Count, Epsilon: 1, Delta: 1e-6, MaxPartitions: 1, MaxContributions: 1, PrivatePartitions: true}
	a := mustAccumulator(t, s)
	a.maxKeys = 100 // MaxPartitionKeys takes seconds to reach
	for i := range 100 {
		if _, err := a.Partition(strconv.Itoa(i)); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if _, err := a.Partition("7"); err != nil {
		t.Errorf("a known key at the limit: %v", err)
	}
	if _, err := a.Partition("one more"); !errors.Is(err, cove.ErrLimit) {
		t.Errorf("key 101: %v, want ErrLimit", err)
	}
}

func TestCompose(t *testing.T) {
	lap := Spec{Output: "a", Aggregate: Count, Epsilon: 0.5, MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"x"}}
	gau := Spec{Output: "g", Aggregate: Count, Mechanism: MechanismGaussian, Epsilon: 0.5, Delta: 1e-6,
		MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"x"}}
	priv := Spec{Output: "p", Aggregate: Mean, Epsilon: 1, Delta: 1e-6, Lower: 0, Upper: 1,
		MaxPartitions: 1, MaxContributions: 1, PrivatePartitions: true}

	c, err := Compose([]Spec{lap, priv})
	if err != nil || c.Epsilon != 1.5 || c.Delta != 1e-6 {
		t.Errorf("laplace + private = %+v, %v; want basic (1.5, 1e-6)", c, err)
	}
	one, _ := gau.Cost()
	if one.Epsilon != 0.5 || one.Delta != 1e-6 {
		t.Errorf("one gaussian = %+v, want its declared (0.5, 1e-6)", one)
	}
	many := make([]Spec, 100)
	for i := range many {
		many[i] = gau
	}
	c, err = Compose(many)
	if err != nil {
		t.Fatal(err)
	}
	// 100 Gaussians of ε 0.5: basic says 50; zCDP says far less.
	if !(c.Epsilon < 25) || math.Abs(c.Delta-1e-4) > 1e-12 {
		t.Errorf("100 gaussians = %+v, want ε < 25 (zCDP) and δ = 1e-4", c)
	}
	t.Logf("100 Gaussian counts (ε 0.5, δ 1e-6 each): basic (50, 1e-4), composed (%.3f, %g)", c.Epsilon, c.Delta)
	if got := RhoToEpsilon(0.5, math.Exp(-2)); math.Abs(got-2.5) > 1e-12 {
		t.Errorf("RhoToEpsilon(0.5, e^-2) = %v, want 0.5 + 2·√(0.5·2) = 2.5", got)
	}
	bad := lap
	bad.Epsilon = -1
	if _, err := Compose([]Spec{lap, bad}); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "specs[1]") {
		t.Errorf("Compose with an invalid spec: %v", err)
	}
}
