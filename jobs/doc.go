// Package jobs is where Cove's parts meet: it parses a job's manifest, has
// the store admit it against its grant and budget, streams the dataset through
// a connector into the guest, routes the guest's contributions to the enclave
// and commits the release. It is the only package that imports the others.
//
// # The life of a job
//
//	submitted → admitted (ε reserved) → ran → released (ε debited)
//	          ↘ rejected                    ↘ failed (ε refunded)
//
// Each arrow is a ledger entry written in the same transaction as the state
// it records.
//
// # What leaves
//
// A Run returns only the release: the enclave's noised aggregates for the
// partitions the manifest declared. Errors name the job, grant, dataset,
// column or limit at fault, never a data value; a guest's output and exit
// codes are shown only for runs on mock data.
//
// # Concurrency
//
// A Runner is safe for concurrent use; each Run has its own guest instance
// and accumulators.
package jobs
