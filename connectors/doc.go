// Package connectors turns data sources into streams of Arrow record
// batches, the form in which Cove hands data to jobs.
//
// # Files
//
// OpenFile and OpenBytes choose the format from the file name's extension.
// Parquet (".parquet") is supported; CSV and Arrow IPC are to follow, and
// until then any other extension is refused with an error wrapping
// cove.ErrInvalid. ReadSchema reads only a file's footer.
//
//	r, err := connectors.OpenFile("air.parquet", connectors.Options{
//		Columns:   []string{"station", "PM2.5"},
//		BatchRows: 8192,
//	})
//	if err != nil {
//		return err
//	}
//	defer r.Release()
//	for r.Next() {
//		batch := r.RecordBatch() // valid until the next call to Next
//		...
//	}
//	if err := r.Err(); err != nil {
//		return err
//	}
//
// # Projection and streaming
//
// Only the columns named in Options.Columns are decoded, and the batches hold
// them in the order requested. Parquet is read column chunk by column chunk,
// page by page, so memory follows the batch size and the pages in flight,
// not the size of the file. A batch may span row groups; every batch has
// Options.BatchRows rows except the last.
//
// # Snapshots
//
// A job's result must say exactly which bytes it was computed from. Opening
// streams the whole input once through sha256 before any batch is decoded;
// Reader.Snapshot reports the hash, the byte count and the row count. For a
// file, the reader reads only the bytes that were hashed and, at the end of
// the stream, checks that the file's size and modification time are those it
// had when opened; if not, Err reports the change (wrapping cove.ErrInvalid)
// rather than letting a result carry a hash that no longer describes the
// data. OpenBytes hashes the slice it is given; the caller must not modify
// it while the reader is in use.
//
// # Limits and errors
//
// Inputs are untrusted. A file larger than Options.MaxBytes (default 4 GiB)
// is refused with cove.ErrLimit before it is read. A request for a column the
// file lacks, a truncated or corrupt file, or an unsupported format is an
// error wrapping cove.ErrInvalid that names the file and, where there is
// one, the column; messages never contain cell values. A panic inside the
// Parquet decoder, which malformed input can provoke, is turned into such an
// error. Parquet page sizes are bounded by arrow-go's reader defaults
// (64 MiB compressed, 256 MiB uncompressed).
//
// # Memory and concurrency
//
// Record batches are allocated from Options.Allocator (default
// memory.DefaultAllocator); page buffers come from Go's heap. A Reader follows
// the array.RecordReader contract: a batch is valid until the next call to
// Next, Retain it to keep it longer, and Release the Reader when done (this
// also closes the file). A Reader is not safe for concurrent use, except for
// Retain and Release; separate Readers are independent.
package connectors
