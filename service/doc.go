// Package service is Cove's network face: `cove serve`, an HTTP JSON API
// over the store, the jobs runner and the reports, for the four roles of the
// design (authority, provider, operator, public).
//
// # Routes
//
// Every route is listed once, in the route table of routes.go, with the
// roles allowed to call it; the OpenAPI 3 document served at /openapi.json
// is built from the same table, and a test checks that the document and the
// routes the server registered are the same set. Bodies are JSON; a job is
// submitted as multipart/form-data (parts "manifest" and "module") or as
// JSON with the module in base64. Every body has a size limit.
//
// # Modules
//
// An operator uploads a module once (POST /v1/modules, the raw bytes) and
// names it by its sha256 in later submissions ("module_sha256"), which are
// then a few hundred bytes of JSON: the SDK does this by itself. A module is
// streamed once, hashed on the way, compiled once per hash and stored once
// whoever uploads it; an upload is its operator's own (another operator
// naming it gets not_found). At most maxModuleReads bodies that may carry a
// module are read at once, into reused buffers, which bounds the memory of
// modules in transit whatever the number of clients.
//
// # Ledger
//
// Reports (disclosure, statements, usage) rest on the ledger as verified:
// wholly at start and every Options.LedgerVerifyEvery, and between, each
// new entry, tree hash and checkpoint as a report reads them; the entries a
// report folds are checked against the verified tree. The public
// disclosure is folded at most once a second. A verification failure makes
// those reports answer ledger_failure until a whole verification passes.
//
// # Roles and tokens
//
// A request carries "Authorization: Bearer <token>". Tokens are issued by
// the authority (`cove token create`), stored hashed (SHA-256 of 32 random
// bytes; compared in constant time) in their own SQLite file next to the
// state, and revocable. No token means the public role. An operator sees
// only its own grants, jobs, releases, budgets and statements; another
// operator's job answers not_found, so ids do not leak. The public sees the
// disclosure report, the ledger's checkpoints, consistency proofs, and
// inclusion proofs of entries the disclosure report makes public anyway.
//
// # Errors
//
// An error body is {"code": "...", "message": "..."}: the code is
// cove.Code of the error (docs/errors.md), or one of this package's
// transport codes (unauthenticated, forbidden); a rejected job also lists
// its violations. Messages never hold data values or stacks: internal errors
// are logged and answered with a fixed message.
//
// # Jobs
//
// A job's life is the store's state machine (lifecycle.go): submitted, then
// rejected, in_review or admitted; admitted jobs wait in the Scheduler's
// queue ("queued") until a worker runs them (running), and end released,
// failed, rejected or cancelled. The scheduler bounds concurrency and serves
// operators round robin, so one operator's batch does not starve another's
// single job. On start the server calls store.Recover (jobs left running by
// a crash fail, refunded) and queues every admitted job again; the store's
// state checks make a job's end happen once.
//
// A Server is safe for concurrent use.
package service
