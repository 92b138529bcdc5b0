package enclave

// MechanismLaplace names the Laplace mechanism in a Release.
const MechanismLaplace = "laplace"

// Release is one output's differentially private result: the rows and
// everything an analyst needs to read them. It never contains NaN or ±Inf.
type Release struct {
	Output           string    `json:"output"`
	Aggregate        Aggregate `json:"aggregate"`
	Mechanism        string    `json:"mechanism"` // "laplace"
	Epsilon          float64   `json:"epsilon"`
	Delta            float64   `json:"delta"`
	Lower            float64   `json:"lower"` // clamp bounds; 0 for count
	Upper            float64   `json:"upper"`
	MaxPartitions    int       `json:"max_partitions"`
	MaxContributions int       `json:"max_contributions"`
	Rows             []Row     `json:"rows"` // one per public partition, in Spec order
}

// Row is the release for one public partition.
type Row struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
	// NoiseStdDev is the standard deviation of the noise in Value: exact for
	// count and sum (√2·b of the Laplace scale b), a documented approximation
	// for mean (see meanAgg.meanSD).
	NoiseStdDev float64 `json:"noise_std_dev"`
	// CILow and CIHigh bound a 95% confidence interval for the raw aggregate,
	// from the library's ComputeConfidenceInterval(0.05).
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
}
