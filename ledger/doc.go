// Package ledger defines Cove's tamper-evident event log: an append-only
// sequence of entries, each bound to the one before it by a SHA-256 hash chain.
//
// # What it records
//
// Every step that matters to the regulation: a dataset registered, a grant
// created, a job submitted, admitted or rejected, run or failed, a release and
// its budget debit. Bodies hold identifiers, parameters and released
// aggregates, never a raw row or cell.
//
// # Verifying
//
// Anyone holding the log can run Verify: it recomputes every hash and checks
// sequence numbers and links, so an edited, deleted, inserted or reordered
// entry is found. A bare chain cannot by itself detect truncation of its tail
// or a chain rebuilt by whoever holds the log; a head hash published elsewhere
// (Verify returns it) answers the first, signed checkpoints come later.
//
// # Storage
//
// This package is pure: it computes and checks hashes. The store appends
// entries in the same SQLite transaction as the state change they record, so
// an action whose entry cannot be written does not happen (fail closed).
package ledger
