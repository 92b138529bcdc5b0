package connectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// Defaults for zero Options fields.
const (
	DefaultBatchRows = 64 << 10
	DefaultMaxBytes  = 4 << 30
)

// Options say what to read from a source and within which limits.
type Options struct {
	Columns   []string         // columns to read, in this order; empty = all
	BatchRows int              // rows per batch; 0 = DefaultBatchRows
	Allocator memory.Allocator // for the record batches; nil = memory.DefaultAllocator
	MaxBytes  int64            // input size limit; 0 = DefaultMaxBytes
}

// resolve validates o and fills in the defaults.
func (o Options) resolve(name string) (Options, error) {
	if o.BatchRows < 0 {
		return o, fmt.Errorf("%w: %s: negative BatchRows %d", cove.ErrInvalid, name, o.BatchRows)
	}
	if o.MaxBytes < 0 {
		return o, fmt.Errorf("%w: %s: negative MaxBytes %d", cove.ErrInvalid, name, o.MaxBytes)
	}
	if o.BatchRows == 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	seen := make(map[string]bool, len(o.Columns))
	for _, c := range o.Columns {
		if seen[c] {
			return o, fmt.Errorf("%w: %s: column %q requested twice", cove.ErrInvalid, name, c)
		}
		seen[c] = true
	}
	return o, nil
}

// Snapshot identifies exactly what a Reader reads.
type Snapshot struct {
	SHA256 string // hex sha256 of the input's bytes
	Bytes  int64  // size of the input
	Rows   int64  // rows in the input, all of which the Reader streams
}

// Reader streams record batches from one input. It implements
// array.RecordReader.
type Reader struct {
	name string
	snap Snapshot
	src  batchSource
	file *os.File    // nil for OpenBytes
	info fs.FileInfo // of file, when it was opened
	refs atomic.Int64
	err  error
	done bool
}

// batchSource is what a format provides.
type batchSource interface {
	Schema() *arrow.Schema
	Next() (bool, error)
	RecordBatch() arrow.RecordBatch
	Close() error
}

// formats maps a lower-case file extension to its opener.
var formats = map[string]func(name string, in readerAtSeeker, opt Options) (batchSource, int64, error){
	".parquet": openParquet,
}

type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

func formatOf(name string) (func(string, readerAtSeeker, Options) (batchSource, int64, error), error) {
	ext := strings.ToLower(filepath.Ext(name))
	open, ok := formats[ext]
	if !ok {
		return nil, fmt.Errorf("%w: %s: unsupported format %q (supported: .parquet)", cove.ErrInvalid, name, ext)
	}
	return open, nil
}

// OpenFile opens the file at path, in the format its extension names, and
// hashes it. The Reader holds the file open until released.
func OpenFile(path string, opt Options) (*Reader, error) {
	open, err := formatOf(path)
	if err != nil {
		return nil, err
	}
	if opt, err = opt.resolve(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := openFile(path, f, open, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func openFile(path string, f *os.File, open func(string, readerAtSeeker, Options) (batchSource, int64, error), opt Options) (*Reader, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file", cove.ErrInvalid, path)
	}
	if info.Size() > opt.MaxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, path, info.Size(), opt.MaxBytes)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, opt.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if n > opt.MaxBytes {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", cove.ErrLimit, path, opt.MaxBytes)
	}
	if n != info.Size() {
		return nil, fmt.Errorf("%w: %s: changed while it was hashed", cove.ErrInvalid, path)
	}
	// Decode only the bytes that were hashed, even if the file grows.
	src, rows, err := open(path, io.NewSectionReader(f, 0, n), opt)
	if err != nil {
		return nil, err
	}
	r := &Reader{
		name: path,
		snap: Snapshot{SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: n, Rows: rows},
		src:  src,
		file: f,
		info: info,
	}
	r.refs.Add(1)
	return r, nil
}

// OpenBytes is OpenFile over b; name supplies the format (by extension) and
// the name used in errors. b must not be modified while the Reader is in use.
func OpenBytes(name string, b []byte, opt Options) (*Reader, error) {
	open, err := formatOf(name)
	if err != nil {
		return nil, err
	}
	if opt, err = opt.resolve(name); err != nil {
		return nil, err
	}
	if int64(len(b)) > opt.MaxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, name, len(b), opt.MaxBytes)
	}
	sum := sha256.Sum256(b)
	src, rows, err := open(name, bytes.NewReader(b), opt)
	if err != nil {
		return nil, err
	}
	r := &Reader{
		name: name,
		snap: Snapshot{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(b)), Rows: rows},
		src:  src,
	}
	r.refs.Add(1)
	return r, nil
}

// ReadSchema returns the Arrow schema of the file at path, reading only its
// metadata. Files over DefaultMaxBytes are refused with cove.ErrLimit.
func ReadSchema(path string) (*arrow.Schema, error) {
	if _, err := formatOf(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file", cove.ErrInvalid, path)
	}
	if info.Size() > DefaultMaxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, limit %d", cove.ErrLimit, path, info.Size(), int64(DefaultMaxBytes))
	}
	return parquetSchema(path, io.NewSectionReader(f, 0, info.Size()))
}

// Snapshot reports what the Reader reads. It is fixed when the Reader opens.
func (r *Reader) Snapshot() Snapshot { return r.snap }

// Schema returns the schema of the batches: the requested columns in the
// requested order.
func (r *Reader) Schema() *arrow.Schema { return r.src.Schema() }

// Next advances to the next batch, releasing the current one. It returns
// false at the end of the input or on error; Err tells which.
func (r *Reader) Next() bool {
	if r.err != nil || r.done {
		return false
	}
	ok, err := r.src.Next()
	if err != nil {
		r.err = err
		return false
	}
	if !ok {
		r.done = true
		r.err = r.checkUnchanged()
	}
	return ok
}

// checkUnchanged reports whether the file still looks as it did when it was
// hashed, so that the Snapshot describes what was decoded.
func (r *Reader) checkUnchanged() error {
	if r.file == nil {
		return nil
	}
	now, err := r.file.Stat()
	if err != nil {
		return err
	}
	if now.Size() != r.info.Size() || !now.ModTime().Equal(r.info.ModTime()) {
		return fmt.Errorf("%w: %s: changed while it was read; its snapshot no longer describes the data", cove.ErrInvalid, r.name)
	}
	return nil
}

// RecordBatch returns the current batch, valid until the next call to Next
// or Release; nil before the first Next and after the last.
func (r *Reader) RecordBatch() arrow.RecordBatch {
	if r.done || r.err != nil {
		return nil
	}
	return r.src.RecordBatch()
}

// Record returns the current batch.
//
// Deprecated: use RecordBatch; Record is kept for array.RecordReader.
func (r *Reader) Record() arrow.RecordBatch { return r.RecordBatch() }

// Err returns the error that ended the stream, or nil at a clean end.
func (r *Reader) Err() error { return r.err }

// Retain adds a reference to the Reader.
func (r *Reader) Retain() { r.refs.Add(1) }

// Release removes a reference; the last one frees the current batch and the
// decoder and closes the file.
func (r *Reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	r.done = true
	// Close errors are dropped: the data was read in full or abandoned, and
	// a read-only file loses nothing on close.
	r.src.Close()
	if r.file != nil {
		r.file.Close()
	}
}
