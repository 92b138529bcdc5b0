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
//	//go:build wasip1
//
//	package main
//
//	import "github.com/covedata/cove/sdk/guest"
//
//	func init() { guest.Handle(process) }
//	func main()  {}
//
//	func process(b *guest.Batch) error {
//		station, pm := b.String("station"), b.Float64("PM2.5")
//		out := guest.Output("pm25_mean")
//		for i := 0; i < b.Len(); i++ {
//			if pm.IsNull(i) {
//				continue
//			}
//			out.Add(i, guest.Key(station.Value(i)), pm.Value(i))
//		}
//		return nil
//	}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-buildid= -o job.wasm .
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
// fake host that checks what the real one checks. It makes `go test` work for
// jobs and documents the API in examples.
//
// # Concurrency
//
// A guest is single-threaded; nothing in this package is safe for concurrent
// use, and RunLocal calls are serialized.
package guest
