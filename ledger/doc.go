// Package ledger defines Cove's tamper-evident event log: an append-only
// Merkle-tree log (RFC 6962 hashing, as Certificate Transparency and Go's
// checksum database) with Ed25519-signed checkpoints, inclusion proofs and
// consistency proofs. The tree, the proofs and the signed notes are those of
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note; this package
// only defines the entries and wires them in.
//
// # What it records
//
// Every step that matters to the regulation: a dataset registered, a grant
// created or revoked, a job submitted, queued for review, reviewed, admitted
// or rejected, cancelled, run or failed, a release and its budget debit.
// Bodies hold identifiers, parameters and released aggregates, never a raw
// row or cell. The set of kinds is closed.
//
// # Entries and the tree
//
// Entry n (Seq n, from 1) is record n-1 of the tree. Its record (Entry.Record)
// is a length-prefixed encoding of a version tag, Seq, time, kind, subject and
// the exact body bytes; a golden test freezes it. Entry.Hash is
// tlog.RecordHash of the record. A checkpoint is a signed note whose text is
// tlog.FormatTree of a tree head (size and tree hash); its signature line
// names the log (the key's name, "cove-ledger" by default).
//
// The hash chain of earlier versions (each entry holding its predecessor's
// hash) is gone: against a checkpoint the tree detects everything the chain
// did, and more (truncation, a log rebuilt by whoever holds it), and an
// inclusion proof needs a few hashes instead of the whole chain. Without any
// checkpoint neither detects a consistent rewrite, so the chain added nothing.
// Seq is inside the record, so an entry moved to another position no longer
// matches its hash even before the tree is checked.
//
// # What a verifier needs
//
//   - the log: a data directory, or an export (cove ledger export: a header
//     with the verifier key and the latest checkpoint, then one entry per
//     line);
//   - the verifier key (note format, Ed25519), obtained from a source the
//     operator cannot rewrite later; the key inside an export only proves the
//     export is self-consistent;
//   - a checkpoint kept from earlier (cove ledger checkpoint), signed by that
//     key.
//
// Verify recomputes every entry's hash and the tree; Log.Check then compares
// the tree of the checkpoint's size with the checkpoint. Holding only
// checkpoints, a verifier checks an InclusionProof (one entry is in a signed
// tree) or a ConsistencyProof (a later signed tree extends an earlier one)
// without the log.
//
// # What is detected, and what is not
//
// Against a kept checkpoint of size N, any edit, deletion, insertion,
// reordering or duplication of entries 1..N, a truncation below N, and a log
// rebuilt from any entry before N (even by the key holder, who can re-sign)
// is detected; a key holder's new checkpoint of such a log fails the
// consistency proof from the kept one. The acceptance suite applies each of
// these at every position of a 1,000-entry log (TestMutationsDetected).
//
// Not detected:
//   - changes to entries after the newest checkpoint the verifier holds:
//     sign often (the store signs every 100 entries and on demand) and keep
//     checkpoints outside the operator's reach;
//   - a split view: the key holder showing different, each self-consistent
//     logs to different verifiers. Catching it needs verifiers to compare
//     checkpoints, or witnesses that cosign each checkpoint only if it is
//     consistent with the last one they saw; note accepts their cosignatures,
//     Cove does not collect them yet;
//   - events never logged: the ledger proves what was written, and the store
//     writes each entry in the transaction of the action (fail closed), but a
//     compromised host could act without writing.
//
// # Storage and concurrency
//
// This package is pure: it computes and checks hashes and signatures. The
// store appends an entry, its stored tree hashes (tlog.StoredHashes) and any
// checkpoint due in the same SQLite transaction as the state change it
// records, so an action whose record cannot be written does not happen. A Log
// is not safe for concurrent use while it is appended to; Entry, Head,
// Checkpoint and the proofs are values.
package ledger
