// Package store keeps Cove's state in SQLite (modernc.org/sqlite, pure Go):
// the catalog, grants, budgets, jobs, releases and the ledger.
//
// # Atomicity
//
// Every state change and its ledger entry are written in one transaction,
// so either both are durable or neither is: if the ledger cannot be written,
// the action does not happen. A release, its budget debit and its ledger
// entries are one transaction too; a job that fails is refunded in the same
// transaction that records the failure.
//
// # Idempotence
//
// A release is stored with its job. Asking again for a job that was released
// returns the stored release; nothing draws fresh noise.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes take SQLite's write lock at the
// start of the transaction (BEGIN IMMEDIATE), so a budget check and the
// reservation it allows cannot interleave with another.
package store
