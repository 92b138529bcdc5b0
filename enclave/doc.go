// Package enclave turns the contributions of untrusted jobs into
// differentially private releases.
//
// A job emits contributions (privacy unit, partition, value) for an output its
// manifest declares as a [Spec]. An [Accumulator] bounds each privacy unit's
// contributions, feeds them to google/differential-privacy aggregators, one
// per public partition, and produces a [Release] exactly once.
//
// # What it guarantees
//
// For one Spec, the released Rows are (ε, 0)-differentially private with
// respect to adding or removing all contributions of one privacy unit, with
// ε = Spec.Epsilon, provided that:
//   - the caller passes the unit identifier chosen by the host (never one the
//     guest made up), and
//   - the partition keys are public (declared in the Spec, not derived from
//     the data): a row is released for every declared key, in declared order,
//     whether or not any unit contributed to it, so presence leaks nothing.
//
// Contribution bounding keeps, for each unit, at most MaxPartitions (L0)
// partitions and at most MaxContributions (L∞) contributions per kept
// partition. Which ones are kept is chosen uniformly at random, never the
// first k: the order of a stream is itself data. Partitions are chosen by
// bottom-L0 sampling on a secretly keyed hash of (unit, partition); within a
// partition, contributions are chosen by reservoir sampling. Values are
// clamped to [Lower, Upper] before they are kept (the library clamps again).
// NaN values of sum and mean outputs are dropped, as the library itself does;
// they never fail an Add, because a failure the guest can trigger at will
// would be a side channel. An out-of-range partition index does fail Add (it
// breaks the ABI); the caller must treat that as a guest failure, whose mere
// occurrence may depend on the data, and so release nothing else from the run.
//
// Budget accounting is not done here: the caller reserves Spec.Epsilon in the
// ledger before accumulating and stores the Release so that retries return it
// instead of drawing fresh noise.
//
// # Noise
//
// All noise comes from google/differential-privacy (dpagg Count,
// BoundedSumInt64, BoundedSumFloat64 and BoundedMean, with noise.Laplace()):
// its secure, granularity-snapped geometric sampling, drawn from crypto/rand on
// the host. The enclave never generates noise itself.
//
// The sampling that chooses which contributions to keep uses a math/rand/v2
// ChaCha8 generator seeded from crypto/rand. That is fine: it selects, it is
// not noise. Differential privacy follows from the bound on what each unit may
// contribute, whatever the selection; the random choice only keeps the guest,
// which does not know the seed, from steering which contributions survive.
//
// # Results
//
// Each Row carries the noisy value, the standard deviation of its noise and a
// 95% confidence interval from the library's ComputeConfidenceInterval(0.05).
// A Release never contains NaN or ±Inf; if the library would produce one, the
// release fails with cove.ErrPrivacy.
//
// # Concurrency
//
// An Accumulator is not safe for concurrent use: one goroutine adds, seals and
// releases. A Spec and a Release are plain values, safe to share once built.
package enclave
