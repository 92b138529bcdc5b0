// Package client is the Go SDK of Cove's HTTP API (cove serve): for
// operators' data scientists and batch pipelines, and for the authority's
// tools.
//
// # Use
//
//	c, err := client.New("https://cove.example:8443", client.WithToken(token))
//	rel, err := c.SubmitAndWait(ctx, client.Submission{Manifest: m, Module: wasm},
//		func(j client.Job) { log.Printf("%s: %s", j.ID, j.State) })
//
// Every call takes a context: cancelling it abandons the request (and a
// wait), never the job; cancel a job with Cancel.
//
// # Errors
//
// A failed call returns an *Error holding the API's stable code and
// message. errors.Is matches it against the root package's sentinels
// (cove.ErrNotFound, cove.ErrBudgetExceeded, ...) and this package's
// ErrUnauthenticated and ErrForbidden; a job that ended without a release
// is a *JobError, matching ErrJobFailed, cove.ErrCancelled or ErrRejected.
//
// # Results
//
// A Release holds its outputs as Go values (Output.Rows, Output.Get);
// Output.Record gives the same rows as an Arrow record batch.
//
// # Dependencies
//
// Of Cove, the package imports only the root package (for the error
// sentinels) and enclave/he (to open encrypted results on the operator's
// side); besides, arrow-go for records: it never drags the server in.
//
// A Client is safe for concurrent use.
package client
