package enclave

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

func validSpec(agg Aggregate) Spec {
	return Spec{
		Output:           "spend_by_region",
		Aggregate:        agg,
		Epsilon:          1,
		Lower:            0,
		Upper:            100,
		MaxPartitions:    2,
		MaxContributions: 3,
		Partitions:       []string{"north", "south", "east", "west"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Spec)
		field string // "" when the spec is valid
	}{
		{name: "valid sum", edit: func(s *Spec) {}},
		{name: "valid mean", edit: func(s *Spec) { s.Aggregate = Mean }},
		{name: "valid count ignores bounds", edit: func(s *Spec) {
			s.Aggregate = Count
			s.Lower, s.Upper = math.NaN(), math.Inf(-1)
		}},
		{name: "valid negative bounds", edit: func(s *Spec) { s.Lower, s.Upper = -5, -1 }},
		{name: "empty output", edit: func(s *Spec) { s.Output = "" }, field: "Output"},
		{name: "unknown aggregate", edit: func(s *Spec) { s.Aggregate = "median" }, field: "Aggregate"},
		{name: "empty aggregate", edit: func(s *Spec) { s.Aggregate = "" }, field: "Aggregate"},
		{name: "epsilon zero", edit: func(s *Spec) { s.Epsilon = 0 }, field: "Epsilon"},
		{name: "epsilon negative", edit: func(s *Spec) { s.Epsilon = -1 }, field: "Epsilon"},
		{name: "epsilon NaN", edit: func(s *Spec) { s.Epsilon = math.NaN() }, field: "Epsilon"},
		{name: "epsilon infinite", edit: func(s *Spec) { s.Epsilon = math.Inf(1) }, field: "Epsilon"},
		{name: "epsilon below library minimum", edit: func(s *Spec) { s.Epsilon = 0x1p-50 }, field: "Epsilon"},
		{name: "delta nonzero", edit: func(s *Spec) { s.Delta = 1e-6 }, field: "Delta"},
		{name: "lower above upper", edit: func(s *Spec) { s.Lower, s.Upper = 10, 1 }, field: "Lower"},
		{name: "lower equals upper", edit: func(s *Spec) { s.Lower, s.Upper = 3, 3 }, field: "Lower"},
		{name: "lower NaN", edit: func(s *Spec) { s.Lower = math.NaN() }, field: "Lower"},
		{name: "upper infinite", edit: func(s *Spec) { s.Upper = math.Inf(1) }, field: "Upper"},
		{name: "bounds overflow sensitivity", edit: func(s *Spec) { s.Upper = math.MaxFloat64 }, field: "Upper"},
		{name: "max partitions zero", edit: func(s *Spec) { s.MaxPartitions = 0 }, field: "MaxPartitions"},
		{name: "max partitions too large", edit: func(s *Spec) { s.MaxPartitions = MaxBound + 1 }, field: "MaxPartitions"},
		{name: "max contributions zero", edit: func(s *Spec) { s.MaxContributions = 0 }, field: "MaxContributions"},
		{name: "max contributions negative", edit: func(s *Spec) { s.MaxContributions = -1 }, field: "MaxContributions"},
		{name: "no partitions", edit: func(s *Spec) { s.Partitions = nil }, field: "Partitions"},
		{name: "valid gaussian", edit: func(s *Spec) { s.Mechanism, s.Delta = MechanismGaussian, 1e-6 }},
		{name: "gaussian without delta", edit: func(s *Spec) { s.Mechanism = MechanismGaussian }, field: "Delta"},
		{name: "unknown mechanism", edit: func(s *Spec) { s.Mechanism = "exponential" }, field: "Mechanism"},
		{name: "delta one", edit: func(s *Spec) { s.Mechanism, s.Delta = MechanismGaussian, 1 }, field: "Delta"},
		{name: "valid granularity", edit: func(s *Spec) { s.Granularity = 0.25 }},
		{name: "granularity not a power of two", edit: func(s *Spec) { s.Granularity = 0.1 }, field: "Granularity"},
		{name: "granularity too fine", edit: func(s *Spec) { s.Granularity = 0x1p-60 }, field: "Granularity"},
		{name: "granularity coarser than bounds", edit: func(s *Spec) { s.Granularity = 256 }, field: "grid points"},
		{name: "granularity on count", edit: func(s *Spec) { s.Aggregate, s.Granularity = Count, 1 }, field: "Granularity"},
		{name: "noise overflows grid", edit: func(s *Spec) { s.Epsilon, s.Granularity = 0x1p-40, 0x1p-16 }, field: "Granularity"},
		{name: "valid private", edit: func(s *Spec) { s.Partitions, s.PrivatePartitions, s.Delta = nil, true, 1e-6 }},
		{name: "private with keys", edit: func(s *Spec) { s.PrivatePartitions, s.Delta = true, 1e-6 }, field: "Partitions"},
		{name: "private without delta", edit: func(s *Spec) { s.Partitions, s.PrivatePartitions = nil, true }, field: "SelectionDelta"},
		{name: "private laplace delta split", edit: func(s *Spec) {
			s.Partitions, s.PrivatePartitions, s.Delta, s.SelectionDelta = nil, true, 1e-6, 1e-7
		}, field: "SelectionDelta"},
		{name: "private selection takes all epsilon", edit: func(s *Spec) {
			s.Partitions, s.PrivatePartitions, s.Delta, s.SelectionEpsilon = nil, true, 1e-6, 1
		}, field: "SelectionEpsilon"},
		{name: "selection without private", edit: func(s *Spec) { s.SelectionEpsilon = 0.1 }, field: "PrivatePartitions"},
		{name: "valid quantiles", edit: func(s *Spec) { s.Aggregate, s.Ranks = Quantiles, []float64{0, 0.5, 1} }},
		{name: "quantiles without ranks", edit: func(s *Spec) { s.Aggregate = Quantiles }, field: "Ranks"},
		{name: "ranks unsorted", edit: func(s *Spec) { s.Aggregate, s.Ranks = Quantiles, []float64{0.5, 0.1} }, field: "Ranks[1]"},
		{name: "rank above one", edit: func(s *Spec) { s.Aggregate, s.Ranks = Quantiles, []float64{1.5} }, field: "Ranks[0]"},
		{name: "ranks on a sum", edit: func(s *Spec) { s.Ranks = []float64{0.5} }, field: "Ranks"},
		{name: "valid histogram", edit: func(s *Spec) { s.Aggregate, s.Buckets = Histogram, []float64{0, 1, 2} }},
		{name: "histogram one edge", edit: func(s *Spec) { s.Aggregate, s.Buckets = Histogram, []float64{0} }, field: "Buckets"},
		{name: "histogram edges unsorted", edit: func(s *Spec) { s.Aggregate, s.Buckets = Histogram, []float64{0, 2, 1} }, field: "Buckets[2]"},
		{name: "histogram edge NaN", edit: func(s *Spec) { s.Aggregate, s.Buckets = Histogram, []float64{0, math.NaN()} }, field: "Buckets[1]"},
		{name: "valid variance", edit: func(s *Spec) { s.Aggregate = Variance }},
		{name: "valid stddev gaussian", edit: func(s *Spec) { s.Aggregate, s.Mechanism, s.Delta = StdDev, MechanismGaussian, 1e-5 }},
		{name: "duplicate partition", edit: func(s *Spec) { s.Partitions = []string{"a", "b", "a"} }, field: "Partitions[2]"},
		{name: "partition not UTF-8", edit: func(s *Spec) { s.Partitions = []string{"a", "\xff"} }, field: "Partitions[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec(Sum)
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := NewAccumulator(s); err != nil {
					t.Fatalf("NewAccumulator() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, cove.ErrInvalid) {
				t.Fatalf("Validate() = %v, want an error wrapping cove.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate() = %q, want it to name %s", err, tt.field)
			}
			if _, err := NewAccumulator(s); !errors.Is(err, cove.ErrInvalid) {
				t.Errorf("NewAccumulator() = %v, want cove.ErrInvalid", err)
			}
		})
	}
}
