package enclave

import (
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/covedata/cove"
)

// Aggregate names the statistic an output releases.
type Aggregate string

// The aggregates an output may declare.
const (
	Count Aggregate = "count"
	Sum   Aggregate = "sum"
	Mean  Aggregate = "mean"
)

// Limits on a Spec. A manifest is untrusted input; these keep one output's
// memory and arithmetic within sane bounds.
const (
	// MaxPartitionKeys is the most public partitions one output may declare.
	MaxPartitionKeys = 1 << 20
	// MaxBound is the largest MaxPartitions or MaxContributions accepted.
	MaxBound = 1 << 20
	// MinEpsilon is the smallest ε accepted: the library refuses ε < 2^-50,
	// and a mean spends ε/2 on each of its two parts.
	MinEpsilon = 0x1p-49
)

// Spec declares one output: what a job may release. Validated once.
type Spec struct {
	Output           string
	Aggregate        Aggregate
	Epsilon          float64  // > 0, finite
	Delta            float64  // 0 for Laplace (the only mechanism now)
	Lower, Upper     float64  // clamp bounds for sum/mean; ignored for count
	MaxPartitions    int      // L0: partitions one privacy unit may contribute to (>=1)
	MaxContributions int      // Linf: contributions per unit per partition (>=1)
	Partitions       []string // public partition keys; results are released for exactly these, in this order (no duplicates, >=1)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: enclave spec: "+format, append([]any{cove.ErrInvalid}, args...)...)
}

// Validate reports the first thing wrong with s, wrapping cove.ErrInvalid
// with a message that names the field.
func (s Spec) Validate() error {
	if s.Output == "" || !utf8.ValidString(s.Output) {
		return invalid("Output must be a non-empty UTF-8 name")
	}
	switch s.Aggregate {
	case Count, Sum, Mean:
	default:
		return invalid("Aggregate %q is not one of count, sum, mean", s.Aggregate)
	}
	if math.IsNaN(s.Epsilon) || math.IsInf(s.Epsilon, 0) || s.Epsilon <= 0 {
		return invalid("Epsilon must be finite and > 0")
	}
	if s.Epsilon < MinEpsilon {
		return invalid("Epsilon must be at least 2^-49")
	}
	if s.Delta != 0 {
		return invalid("Delta must be 0 (Laplace mechanism)")
	}
	if s.MaxPartitions < 1 || s.MaxPartitions > MaxBound {
		return invalid("MaxPartitions must be in [1, %d]", MaxBound)
	}
	if s.MaxContributions < 1 || s.MaxContributions > MaxBound {
		return invalid("MaxContributions must be in [1, %d]", MaxBound)
	}
	if s.Aggregate != Count {
		if math.IsNaN(s.Lower) || math.IsInf(s.Lower, 0) {
			return invalid("Lower must be finite")
		}
		if math.IsNaN(s.Upper) || math.IsInf(s.Upper, 0) {
			return invalid("Upper must be finite")
		}
		if s.Lower >= s.Upper {
			return invalid("Lower must be < Upper")
		}
		// The L1 sensitivity L0·L∞·max(|Lower|,|Upper|) must be finite.
		l1 := float64(s.MaxPartitions) * float64(s.MaxContributions) * math.Max(math.Abs(s.Lower), math.Abs(s.Upper))
		if math.IsInf(l1, 0) || math.IsInf(s.Upper-s.Lower, 0) {
			return invalid("Lower and Upper are too large for MaxPartitions × MaxContributions")
		}
	}
	if len(s.Partitions) == 0 {
		return invalid("Partitions must list at least one key")
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
