// Package connectors turns data sources into streams of Arrow record
// batches, the form in which Cove hands data to jobs.
//
// # Sources and formats
//
// Open is the one entry point: a location is a local path (or file://path),
// s3://bucket/key for one object, or s3://bucket/prefix/ (ending in "/")
// for every object under the prefix, read one after another in key order
// (folder markers skipped). The format comes from each name's extension, or
// from Options.Format:
//
//	.csv               CSV (RFC 4180; see CSVOptions)
//	.parquet           Parquet
//	.arrow, .feather   Arrow IPC file (Feather v2)
//	.arrows            Arrow IPC stream
//
// OpenFile and OpenBytes are Open for a path and for bytes in memory.
// ReadSchema reads a file's schema from its metadata alone.
//
//	s3, err := connectors.NewS3(connectors.S3Config{Endpoint: "minio:9000", AccessKey: ak, SecretKey: sk})
//	...
//	r, err := connectors.Open(ctx, "s3://public/air/", connectors.Options{
//		Columns: []string{"station", "PM2.5"},
//		Schema:  catalogSchema,
//		S3:      s3,
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
//		return err // never treat the batches seen so far as the dataset
//	}
//
// # Projection, schema and streaming
//
// Only the columns in Options.Columns (or, when empty, those of
// Options.Schema, or else all) are returned, in the order requested.
// Parquet decodes only those column chunks, row group by row group and page
// by page, and every batch has Options.BatchRows rows except the last. CSV
// parses only those fields. Arrow IPC cannot skip columns: each stored batch
// is read, validated (array.ValidateFull on the requested columns) and
// projected, and one larger than BatchRows is returned in slices.
//
// Options.Schema is the catalog's schema. CSV is decoded with it; without
// it, the types are inferred from the first CSVOptions.InferRows rows (the
// narrowest of int64, float64, bool and utf8; every column nullable) and
// then enforced: a later cell that does not fit is an error naming its row
// and column. For Parquet and IPC every column read must have the type the
// schema gives, and no nulls where it says not nullable.
//
// # S3
//
// NewS3 turns an S3Config (endpoint, credentials, TLS, optional bucket
// restriction, retries) into an S3 handle, shared by all Readers. Parquet
// and IPC files are read with ranged GETs (a Parquet footer, then the
// requested column chunks), CSV and IPC streams with one GET each. Every GET
// names the object's version (in a versioned bucket) and sends If-Match
// with the ETag seen at open, so a Reader never mixes two versions of an
// object: in a versioned bucket the read stays on the version it began
// with, otherwise a replaced object fails the read with ErrChanged. A body
// cut short is an error (ErrUnavailable), never a clean end.
//
// # Snapshots
//
// A job's result must say exactly which bytes it was computed from.
// Reader.Snapshot reports the sha256, the size and, per file or object,
// the location, size, sha256, ETag and version id. Opening streams every
// input once through sha256 before any batch is decoded (for S3,
// Options.SkipContentHash trades this pass for identification by ETag and
// version alone). For several objects the SHA256 is that of the sha256sum
// listing of the objects. A file is decoded only up to the bytes hashed,
// and its size and modification time are checked again at its end.
//
// # Limits
//
// Inputs are untrusted; each limit has a default, applied when the Options
// field is zero:
//
//	MaxBytes       per file or object         DefaultMaxBytes (4 GiB)
//	MaxRows        per Reader                 DefaultMaxRows (2^32)
//	BatchRows      rows per batch             DefaultBatchRows (65,536), at most MaxBatchRows (2^20)
//	MaxObjects     objects under a prefix     DefaultMaxObjects (10,000)
//	MaxFieldBytes  one CSV field              DefaultMaxFieldBytes (1 MiB); a CSV record is at most
//	                                          columns × MaxFieldBytes + 64 KiB
//	CSV InferRows  rows sampled for a schema  DefaultInferRows (1,000)
//
// Fixed: an IPC message body at most 256 MiB and its metadata 64 MiB (or
// MaxBytes if smaller); an IPC schema at most MaxIPCColumns fields;
// Parquet pages at most 64 MiB compressed and 256 MiB uncompressed
// (arrow-go's reader defaults).
//
// # Errors
//
// Every error names the file or object (s3://bucket/key) and, where there
// is one, the row (1-based data row; for CSV also the line) and the column.
// Messages never contain a cell's content. Categories: cove.ErrInvalid for
// malformed input, a wrong type or column count, an unknown column or
// format (ErrChanged, a source changed while read, wraps it);
// cove.ErrLimit for a limit; cove.ErrNotFound for a missing object, bucket
// or empty prefix; ErrAccessDenied for refused credentials; ErrUnavailable
// for a store that cannot be reached or broke off a transfer. Decoder
// panics on malformed input become ErrInvalid errors.
//
// # Memory and concurrency
//
// Record batches are allocated from Options.Allocator (default
// memory.DefaultAllocator); Parquet page buffers come from Go's heap. A
// Reader follows the array.RecordReader contract: a batch is valid until the
// next call to Next, Retain it to keep it longer, and Release the Reader
// when done (this also closes its file). A Reader is not safe for
// concurrent use, except for Retain and Release; separate Readers are
// independent. An S3 handle is safe for concurrent use.
//
// Known upstream issues: arrow-go v18.8 loses track of buffers when it
// recovers from a panic on a corrupt IPC record batch (the error is
// reported; a checked allocator sees the bytes as still allocated), and
// leaks 64 bytes per column chunk decoding DELTA_BINARY_PACKED Parquet.
package connectors
