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
