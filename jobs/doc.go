// Package jobs is where Cove's parts meet: it parses a job's manifest, has
// the store admit it against its grant and budget, streams the dataset through
// a connector into the guest, routes the guest's contributions to the enclave
// and commits the release. It is the only package that imports the others.
//
// # Modes
//
// A job runs on real data in one of three modes, each sound against an
// arbitrary module (docs/privacy.md): plan (a data-blind plan, built at
// submission from the manifest or the module's planning call, recorded
// canonically with the job and evaluated natively: planMode), unit (the
// module called once per privacy unit from a restored snapshot: unitMode)
// and block (once per block of units, a clamped vector per block:
// blockMode). Mode batch, whole batches to one guest, runs on mock data
// only. Every mode reads the data through one pass (exec.go: the dataset
// opened and checked, each row's unit, the deadline, the metering) and
// hands contributions to a sink, the mechanism's side: the DP accumulators
// (dp.go) or the HE weights (he.go).
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
