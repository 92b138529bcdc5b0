package enclave

// Release is one output's differentially private result: the rows and
// everything an analyst needs to read them. It never contains NaN or ±Inf.
//
// Every row of a release is computed with the same mechanism and budget:
// Mechanism, Epsilon and Delta (the output's whole share, selection
// included) and the per-partition primitives in Noise apply to each row.
type Release struct {
	Output    string    `json:"output"`
	Aggregate Aggregate `json:"aggregate"`
	Mechanism string    `json:"mechanism"` // "laplace" or "gaussian"
	Epsilon   float64   `json:"epsilon"`
	Delta     float64   `json:"delta"`
	// Lower and Upper are the clamp bounds applied: for grid aggregates the
	// grid points inside the declared bounds, for a histogram its outer
	// edges; 0 for count.
	Lower            float64 `json:"lower"`
	Upper            float64 `json:"upper"`
	Granularity      float64 `json:"granularity,omitempty"` // grid step of sum, mean, variance, stddev
	MaxPartitions    int     `json:"max_partitions"`
	MaxContributions int     `json:"max_contributions"`
	// PrivatePartitions: the rows are the partitions that private selection
	// kept, in key order; Suppressed is then a noisy (ε-DP) count of the
	// partitions present in the bounded data but not released, clamped at 0,
	// with SuppressedNoiseStdDev the standard deviation of its noise.
	PrivatePartitions     bool    `json:"private_partitions,omitempty"`
	Suppressed            int64   `json:"suppressed"`
	SuppressedNoiseStdDev float64 `json:"suppressed_noise_std_dev,omitempty"`
	// Noise describes each noisy primitive computed per partition.
	Noise []Noise `json:"noise"`
	Rows  []Row   `json:"rows"` // public partitions: one per key, in Spec order (× ranks or buckets)
}

// Noise describes one noisy primitive of an output: what the library was
// asked to compute, per partition, and with which parameters.
type Noise struct {
	// Primitive: count, sum, normalized_sum, sum_of_squares, tree_counts,
	// bucket_counts, selection or suppressed_count.
	Primitive string  `json:"primitive"`
	Mechanism string  `json:"mechanism"` // laplace, gaussian, or for selection "partition_selection"
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	// L0 and LInf are the sensitivities given to the library, LInf in the
	// primitive's units; Unit is one such unit in the output's units (the
	// grid step for sums).
	L0   int64   `json:"l0"`
	LInf float64 `json:"linf"`
	Unit float64 `json:"unit"`
	// Scale is the Laplace b or the Gaussian σ and StdDev the standard
	// deviation of the noise, both in the primitive's units; 0 for selection.
	Scale  float64 `json:"scale"`
	StdDev float64 `json:"std_dev"`
}

// Row is the release for one partition (and, for quantiles, one rank; for a
// histogram, one bucket).
type Row struct {
	Key    string   `json:"key"`
	Rank   *float64 `json:"rank,omitempty"`   // quantiles: the rank of Value
	Bucket string   `json:"bucket,omitempty"` // histogram: "[lo, hi)" of the bucket counted
	Value  float64  `json:"value"`
	// NoiseStdDev is the standard deviation of the noise in Value: exact for
	// count, sum and histogram, a first-order (delta method) approximation
	// for mean, variance and stddev; 0 for quantiles, whose error has no
	// closed form.
	NoiseStdDev float64 `json:"noise_std_dev"`
	// CILow and CIHigh bound a 95% confidence interval for the raw
	// (bounded, unnoised) aggregate, from the library's
	// ComputeConfidenceInterval(0.05); for mean, variance and stddev
	// combined from those of their parts (see the package doc). NoCI is set,
	// and both are 0, for quantiles: the library gives none.
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	NoCI   bool    `json:"no_ci,omitempty"`
}
