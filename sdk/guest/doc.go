// Package guest is the Go SDK for Cove jobs: WebAssembly modules that run next
// to a dataset and may output nothing but contributions to the aggregates
// their manifest declares.
//
// The package is its own Go module with no dependencies; it never imports the
// host. It implements Cove guest ABI version 1, written down in docs/abi.md of
// the Cove repository.
//
// # Writing a job
//
// A job is a WASI reactor: its init registers a handler, main is never called.
//
//	package main
//
//	import "github.com/covedata/cove/sdk/guest"
//
//	func init() { guest.Handle(process) }
//	func main()  {}
//
//	func process(b *guest.Batch) error {
//		readings := b.All().NotNull("PM2.5").GroupBy("station", "year")
//		guest.Output("pm25_mean").AddColumn(readings, "PM2.5")
//		return nil
//	}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-buildid= -o job.wasm .
//
// # Modes
//
// The manifest's mode says how the host calls the handler on real data.
// Each mode makes it impossible for one privacy unit's data to move what
// another unit contributes, whatever the module does.
//
// Plan (the default). The host calls the handler once, in the planning
// call (export cove_plan), with a Batch that has the dataset's column names
// and types but no rows. The fluent calls (All, NotNull, IsNull, WhereInt,
// WhereFloat, WhereString, Where, GroupBy, GroupByExpr, Groups.NotNull,
// Emitter.AddColumn, Emitter.AddExpr, Emitter.CountRows, Batch.Derive)
// record a plan instead of running; the SDK hands the plan to the host
// (import plan), which checks it and runs it natively over the whole
// dataset. Reading column values, Len, Select, Indices, KeyIDs, Add, Count
// and Result have no meaning without data: they panic with a message
// saying so, and the planning call fails. Use plan mode whenever filters,
// derived columns (Expr), group-by keys and per-row values can say the
// job: it is the fastest mode, and reviewers read the plan itself (the
// host records its canonical text). PlanLocal shows a handler's plan.
//
// Unit. The host calls the handler once per privacy unit, with exactly that
// unit's rows, and restores the module's whole state (linear memory,
// globals) to one snapshot, taken after initialization, before every call:
// package variables, caches and the heap are as init left them, every time,
// and nothing a handler keeps reaches the next unit. Linear memory has a
// fixed size (the manifest's guest.memory_mib); growing past it fails. Each
// call has a CPU limit; a unit whose handler fails, panics or runs out of
// time contributes nothing and is counted, noised, as failed. Contributions
// are made with Add, Count or the kernels, as in batch mode. Use unit mode
// for per-row logic a plan cannot say (a per-unit statistic, a threshold on
// a unit's own readings).
//
// Block. The host splits the privacy units into k disjoint blocks (by a
// keyed hash) and calls the handler once per block with the block's rows,
// from the same snapshot each time. The handler computes one fixed-length
// vector per block output and hands it with Result, once per output and
// block; the host clamps each coordinate to the manifest's bounds and
// releases the noisy mean over the blocks (a failed block counts as the
// output's default vector). Use block mode for a whole-sample estimate
// (a regression's coefficients, a custom estimator) that no sum of
// per-unit contributions gives.
//
// Batch (mock-data runs only). The handler gets each record batch whole,
// and state persists from batch to batch: what today's examples and
// RunLocal do. The fluent calls run on host kernels; expressions run there
// only as far as the kernels go (see Expr).
//
// In every mode the handler must not rely on the order of units or blocks,
// on state from an earlier call, or on clocks and randomness: the host's
// WASI clock and random bytes restart from the same point for every call.
//
// # Batches and columns
//
// The host describes each Arrow record batch (rows, column names and types)
// in guest memory; the first time a handler asks for a column (b.Float64("x")
// and the like), the host copies that column into a buffer the SDK keeps for
// it: one copy per column and batch, and none for a column the handler does
// not read, so a job that only uses host kernels copies no column data at
// all. The column views (Int64s, Int32s, Float64s, Strings, Bools, ...) read
// that buffer in place, without copying.
//
// The SDK reuses its buffers batch after batch: a Batch, its column views and
// the strings Strings.Value returns are valid until the next batch begins.
// Copy what you keep longer (strings.Clone for a string, append for values).
// Keys passed to Emitter.Add are copied by the SDK.
//
// Asking for a column the batch does not have, or with another type, panics
// with a message naming the column. The SDK recovers every panic of a handler
// and reports the batch as failed, exactly like a handler that returns an
// error; the message reaches the operator only on mock-data runs.
//
// # Outputs, keys and rows
//
// Output resolves an output the manifest declares (an undeclared name stops
// the job). Add buffers one contribution (row, key, value); the SDK hands all
// the contributions of an output to the host in one call at the end of the
// batch, or every 65,536 contributions for larger ones. The row index is the
// only link between a contribution and the data: the host attributes each
// contribution to the privacy unit of that row, so a job never names units.
// Contributions of a batch whose handler fails are dropped.
//
// Key joins group-by parts with U+001F; the SDK interns each distinct key with
// the host once and caches its id.
//
// # Testing natively
//
// RunLocal runs a handler in-process over columns given as Go slices, with a
// fake host that checks what the real one checks; PlanLocal runs its
// planning call and returns the plan. They make `go test` work for jobs
// and document the API in examples. A job's main.go needs no build tag:
// it compiles natively for its tests and to wasip1 for Cove.
//
// # Concurrency
//
// A guest is single-threaded; nothing in this package is safe for concurrent
// use, and RunLocal calls are serialized.
package guest
