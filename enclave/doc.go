// Package enclave turns the contributions of untrusted jobs into
// differentially private releases.
//
// A job emits contributions (privacy unit, partition, value) for an output its
// manifest declares as a [Spec]. An [Accumulator] bounds each privacy unit's
// contributions, feeds them to google/differential-privacy aggregators, one
// per partition, and produces a [Release] exactly once. [Compose] gives the
// privacy cost of several outputs, for the budget ledger.
//
// # How contributions arrive
//
// Three ways, one per accumulator: [Accumulator.Add] (and AddKey) takes one
// unit's contributions as a stream, folded when [Accumulator.Seal] says the
// units below a mark are complete (per-unit mode: one unit per guest call);
// [Accumulator.AddUnits] takes contributions of hashed units in bulk and
// bounds them at Release, bucket by bucket (a plan over units of several
// rows; with L0 = L∞ = 1 one pass keeps, per unit, the contribution of
// least keyed priority); [Accumulator.AddRows] takes rows that are each
// their own unit and contribute at most once per output (a plan where the
// catalog's unit is one row): clamping is the whole bounding and no
// per-unit state is kept. [BlockAccumulator] releases the noisy mean of
// block vectors (block mode, sample and aggregate).
//
// # Aggregates and noise
//
// count, sum, mean, variance, stddev, quantiles (several ranks from one
// dpagg.BoundedQuantiles) and histogram (counts over declared bucket edges),
// each with the Laplace or the Gaussian mechanism (Gaussian needs δ > 0). All
// noise comes from google/differential-privacy (dpagg.BoundedSumInt64,
// BoundedQuantiles, PreAggSelectPartition, Count; noise.Laplace and
// noise.Gaussian, AddNoiseInt64 on the exact integer sums, with the
// parameters dpagg.BoundedSumInt64 would use): its secure,
// granularity-snapped geometric and binomial sampling, drawn from
// crypto/rand on the host. The enclave never generates noise itself.
//
// # The grid
//
// Floating-point sums are attackable: their rounding depends on the order of
// the terms (google/differential-privacy issue 126). Sum, mean, variance and
// stddev therefore compute in integers. Spec.Granularity g is a power of two
// (default: the smallest ≥ max(|Lower|, |Upper|)/2^24). A value is clamped
// to the grid points inside [Lower, Upper] (Release.Lower and Upper report
// them) and rounded to the nearest grid point; sums are int64 counts of g
// with int64 noise (noise.AddNoiseInt64), so a released sum k·g lies on the
// grid exactly. A mean is mid + S̃·g/max(1, C̃) from a noisy count and a noisy
// sum of values normalized around the grid midpoint (ε/2, δ/2 each, the
// construction of dpagg.BoundedMean), clamped to the bounds and rounded to
// the grid: post-processing, which costs no privacy. Variance uses a count,
// a sum and a sum of squares (ε/3, δ/3 each), the squares in coarser units
// so that they fit an int64. A sum that would pass 2^62 grid units fails the
// release with cove.ErrLimit (declare a coarser Granularity).
//
// # What it guarantees
//
// For one Spec, the Release is (Epsilon, Delta)-differentially private with
// respect to adding or removing all contributions of one privacy unit,
// provided that the caller passes the unit identifier chosen by the host
// (never one the guest made up).
//
// Partitions are either public (Spec.Partitions: a row is released for every
// declared key, in declared order, whether or not any unit contributed, so
// presence leaks nothing; contributions to other keys are dropped), or
// private (Spec.PrivatePartitions: keys come from the data through
// [Accumulator.AddKey] or [Accumulator.Partition]; dpagg.PreAggSelectPartition
// decides, with SelectionEpsilon and SelectionDelta, which are released, in
// key order). Suppressed partitions are never named: Release.Suppressed is a
// Laplace count (a tenth of SelectionEpsilon) of the partitions present but
// not released, clamped at 0.
//
// Contribution bounding keeps, for each unit, at most MaxPartitions (L0)
// partitions and at most MaxContributions (L∞) contributions per kept
// partition. Which ones are kept is chosen uniformly at random, never the
// first k: the order of a stream is itself data. Partitions are chosen by
// bottom-L0 sampling on a secretly keyed hash of (unit, partition); within a
// partition, contributions are chosen by reservoir sampling. NaN values are
// dropped, as the library itself does; they never fail an Add, because a
// failure the guest can trigger at will would be a side channel. An
// out-of-range partition index does fail Add (it breaks the ABI), and so does
// a private output seeing more than MaxPartitionKeys distinct keys
// (cove.ErrLimit); the caller must treat either as a guest failure, whose
// mere occurrence may depend on the data, and release nothing from the run.
//
// The sampling that chooses which contributions to keep uses a math/rand/v2
// ChaCha8 generator seeded from crypto/rand. That is fine: it selects, it is
// not noise. Differential privacy follows from the bound on what each unit may
// contribute, whatever the selection; the random choice only keeps the guest,
// which does not know the seed, from steering which contributions survive.
//
// # Accounting
//
// Spec.Epsilon and Spec.Delta are an output's whole share, partition
// selection included. [Compose] adds them up (basic composition) and, for
// Gaussian primitives, also in zero-concentrated DP: ρ = Δ₂²/(2σ²) per
// primitive, ρ adds up, and ρ-zCDP gives (ρ + 2√(ρ·ln(1/δ)), δ)-DP
// ([RhoToEpsilon]); the smaller ε is kept. The caller reserves the cost in
// the ledger before accumulating and stores the Release so that retries
// return it instead of drawing fresh noise.
//
// # Results
//
// Each Row carries the noisy value, the standard deviation of its noise and a
// 95% confidence interval for the raw (bounded) aggregate: from the library's
// ComputeConfidenceInterval(0.05) for count, sum and histogram; for mean
// combined from its parts' intervals like dpagg.BoundedMean does; for
// variance and stddev by the union bound over its three parts' intervals
// (α/3 each). Quantiles have none (Row.NoCI). The Release names the
// mechanism, ε and δ, and lists every noisy primitive with its ε, δ,
// sensitivities and noise scale (Release.Noise). A Release never contains NaN
// or ±Inf; if the library would produce one, the release fails with
// cove.ErrPrivacy.
//
// # Tests
//
// The stochastic suite (stochastic_test.go) checks every aggregate and
// partition selection on neighbouring datasets with google's approximate-DP
// histogram test and majority votes, and must reject two controls: ε 20%
// above the declared one and a naive floating-point Laplace. Package
// enclave/dpaudit bounds the ε really spent from below on Adult-derived
// neighbours (also `cove dp audit`).
//
// # Concurrency
//
// An Accumulator is not safe for concurrent use: one goroutine adds, seals and
// releases. A Spec and a Release are plain values, safe to share once built;
// Compose and RhoToEpsilon are pure.
package enclave
