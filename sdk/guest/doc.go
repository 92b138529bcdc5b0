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
// The host writes each Arrow record batch once into a region of guest memory
// that the SDK allocated; the column views (Int64s, Int32s, Float64s, Strings,
// Bools) read that region in place, without copying. A region is never reused,
// so a string returned by Strings.Value stays valid after the batch (keeping it
// keeps the whole batch region alive, so clone what you keep for long).
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
