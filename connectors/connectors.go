package connectors

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// Defaults for zero Options fields, and hard caps.
const (
	DefaultBatchRows     = 64 << 10
	MaxBatchRows         = 1 << 20 // Options.BatchRows above this is refused
	DefaultMaxBytes      = 4 << 30 // per file or object
	DefaultMaxRows       = 1 << 32 // per Reader, all objects together
	DefaultMaxObjects    = 10000   // objects under one S3 prefix
	DefaultMaxFieldBytes = 1 << 20 // one CSV field
	DefaultInferRows     = 1000    // CSV rows sampled to infer a schema
)

// DefaultNullValues are the CSV cells read as null when CSVOptions.NullValues
// is nil.
var DefaultNullValues = []string{"", "NA"}

// Category errors of this package, beside cove's. Each is wrapped with the
// file or object it concerns.
var (
	// ErrChanged: a source changed while it was read, so its snapshot no
	// longer describes the data. It wraps cove.ErrInvalid.
	ErrChanged = fmt.Errorf("%w: source changed while it was read", cove.ErrInvalid)
	// ErrAccessDenied: the object store refused the configured credentials.
	ErrAccessDenied = fmt.Errorf("%w: access denied by the object store", cove.ErrUnavailable)
	// ErrUnavailable: the object store could not be reached or broke off a
	// transfer. Reading again may succeed.
	ErrUnavailable = fmt.Errorf("%w: object store unavailable", cove.ErrUnavailable)
)

// Format names an input format.
type Format string

// Formats. FormatAuto chooses by the file or object name's extension.
const (
	FormatAuto      Format = ""
	FormatCSV       Format = "csv"     // .csv
	FormatParquet   Format = "parquet" // .parquet
	FormatIPCFile   Format = "arrow"   // .arrow, .feather (Feather v2 is the IPC file format)
	FormatIPCStream Format = "arrows"  // .arrows
)

var extensions = map[string]Format{
	".csv":     FormatCSV,
	".parquet": FormatParquet,
	".arrow":   FormatIPCFile,
	".feather": FormatIPCFile,
	".arrows":  FormatIPCStream,
}

// Options say what to read from a source and within which limits. The zero
// value reads every column with the documented defaults.
type Options struct {
	// Columns to read, in this order; empty means the columns of Schema, or
	// when Schema is nil, every column of the input.
	Columns []string
	// Schema is the catalog's schema of the dataset. CSV is decoded with it
	// (nil: inferred from the first CSVOptions.InferRows rows, then enforced
	// for the rest); for the other formats each column read must have the
	// type Schema gives it, and no nulls where Schema says not nullable.
	Schema *arrow.Schema
	// Format overrides the choice by extension.
	Format Format
	// BatchRows is the number of rows per batch; 0 = DefaultBatchRows, at
	// most MaxBatchRows.
	BatchRows int
	// Allocator for the record batches; nil = memory.DefaultAllocator.
	Allocator memory.Allocator
	// MaxBytes limits each file or object; 0 = DefaultMaxBytes.
	MaxBytes int64
	// MaxRows limits the rows of the whole read; 0 = DefaultMaxRows.
	MaxRows int64
	// MaxObjects limits the objects under an S3 prefix; 0 = DefaultMaxObjects.
	MaxObjects int
	// MaxFieldBytes limits one CSV field; 0 = DefaultMaxFieldBytes.
	MaxFieldBytes int
	// CSV holds the CSV dialect.
	CSV CSVOptions
	// S3 is the object store that s3:// locations name; nil refuses them.
	S3 *S3
	// SkipContentHash, for S3 only, identifies objects by size, ETag and
	// version instead of streaming each through sha256 before decoding.
	// Snapshot.SHA256 is then empty.
	SkipContentHash bool
}

// CSVOptions describe a CSV dialect. The zero value is RFC 4180 with a
// header line, "," between fields, and DefaultNullValues.
type CSVOptions struct {
	Comma            rune     // field separator; 0 = ','
	Comment          rune     // lines starting with it are skipped; 0 = none
	NoHeader         bool     // the first line is data; Options.Schema names the columns
	NullValues       []string // cells read as null in every column; nil = DefaultNullValues
	LazyQuotes       bool     // accept a quote inside an unquoted field and unescaped quotes in a quoted one
	TrimLeadingSpace bool     // ignore spaces after a separator
	InferRows        int      // rows sampled to infer a schema; 0 = DefaultInferRows
}

// resolve validates o and fills in the defaults.
func (o Options) resolve(name string) (Options, error) {
	bad := func(format string, a ...any) (Options, error) {
		return o, fmt.Errorf("%w: %s: %s", cove.ErrInvalid, name, fmt.Sprintf(format, a...))
	}
	switch {
	case o.BatchRows < 0:
		return bad("negative BatchRows %d", o.BatchRows)
	case o.BatchRows > MaxBatchRows:
		return o, fmt.Errorf("%w: %s: BatchRows %d, limit %d", cove.ErrLimit, name, o.BatchRows, MaxBatchRows)
	case o.MaxBytes < 0:
		return bad("negative MaxBytes %d", o.MaxBytes)
	case o.MaxRows < 0:
		return bad("negative MaxRows %d", o.MaxRows)
	case o.MaxObjects < 0:
		return bad("negative MaxObjects %d", o.MaxObjects)
	case o.MaxFieldBytes < 0:
		return bad("negative MaxFieldBytes %d", o.MaxFieldBytes)
	case o.CSV.InferRows < 0:
		return bad("negative CSV InferRows %d", o.CSV.InferRows)
	}
	if o.BatchRows == 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRows == 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxObjects == 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	if o.MaxFieldBytes == 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if o.CSV.InferRows == 0 {
		o.CSV.InferRows = DefaultInferRows
	}
	if o.CSV.Comma == 0 {
		o.CSV.Comma = ','
	}
	if o.CSV.NullValues == nil {
		o.CSV.NullValues = DefaultNullValues
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	switch o.Format {
	case FormatAuto, FormatCSV, FormatParquet, FormatIPCFile, FormatIPCStream:
	default:
		return bad("unknown format %q", o.Format)
	}
	seen := make(map[string]bool, len(o.Columns))
	for _, c := range o.Columns {
		if seen[c] {
			return bad("column %q requested twice", c)
		}
		seen[c] = true
		if o.Schema != nil && o.Schema.FieldIndices(c) == nil {
			return bad("column %q is not in the schema", c)
		}
	}
	if o.Schema != nil {
		names := map[string]bool{}
		for _, f := range o.Schema.Fields() {
			if names[f.Name] {
				return bad("schema names column %q twice", f.Name)
			}
			names[f.Name] = true
		}
		if len(o.Columns) == 0 {
			for _, f := range o.Schema.Fields() {
				o.Columns = append(o.Columns, f.Name)
			}
		}
	}
	return o, nil
}

// formatOf returns the format of the input called name.
func formatOf(name string, f Format) (Format, error) {
	if f != FormatAuto {
		return f, nil
	}
	ext := strings.ToLower(filepath.Ext(name))
	if f, ok := extensions[ext]; ok {
		return f, nil
	}
	return "", fmt.Errorf("%w: %s: unsupported format %q (supported: .csv, .parquet, .arrow, .feather, .arrows, or Options.Format)", cove.ErrInvalid, name, ext)
}

// Snapshot identifies exactly what a Reader reads, for a release's lineage.
type Snapshot struct {
	// SHA256 is the hex sha256 of the input's bytes. For several objects
	// (an S3 prefix) it is the sha256 of the lines "<sha256>  <key>\n" of
	// each object in read order, as sha256sum prints them. Empty when
	// Options.SkipContentHash skipped hashing.
	SHA256 string
	// Bytes is the size of the input, all objects together.
	Bytes int64
	// Rows is the number of rows: known at open for a single Parquet input,
	// otherwise -1 until the stream has ended cleanly.
	Rows int64
	// Objects lists each file or object read, in read order.
	Objects []Object
}

// Object identifies one file or object of a Snapshot.
type Object struct {
	Location  string `json:"location"` // file path, or s3://bucket/key
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256,omitempty"`     // hex sha256 of the content; empty if not hashed
	ETag      string `json:"etag,omitempty"`       // S3 only
	VersionID string `json:"version_id,omitempty"` // S3 only, in a versioned bucket
}

// Reader streams record batches from one dataset: a file, an object, or the
// objects under an S3 prefix one after another. It implements
// array.RecordReader.
type Reader struct {
	ctx    context.Context
	name   string
	opt    Options
	snap   Snapshot
	parts  []*part
	idx    int
	src    batchSource
	schema *arrow.Schema
	read   int64 // rows returned so far
	refs   atomic.Int64
	err    error
	done   bool
}

// part is one input of a Reader.
type part struct {
	in     *input
	format Format
	// check, if not nil, tells after the input's last batch whether it
	// changed since it was hashed.
	check func() error
	// close, if not nil, releases what the input holds (an open file).
	close  func()
	closed bool
}

func (p *part) release() {
	if !p.closed && p.close != nil {
		p.close()
	}
	p.closed = true
}

// batchSource is what a format provides over one input.
type batchSource interface {
	Schema() *arrow.Schema
	Next() (bool, error)
	RecordBatch() arrow.RecordBatch
	Close() error
}

// newReader opens the first part and returns a Reader over all of them. On
// error it closes every part.
func newReader(ctx context.Context, name string, parts []*part, snap Snapshot, opt Options) (*Reader, error) {
	r := &Reader{ctx: ctx, name: name, opt: opt, snap: snap, parts: parts}
	src, rows, err := r.openPart(0)
	if err != nil {
		for _, p := range parts {
			p.release()
		}
		return nil, err
	}
	r.src, r.schema = src, src.Schema()
	r.snap.Rows = -1
	if len(parts) == 1 && rows >= 0 {
		r.snap.Rows = rows
		if rows > opt.MaxRows {
			r.Release()
			return nil, fmt.Errorf("%w: %s: %d rows, limit %d", cove.ErrLimit, name, rows, opt.MaxRows)
		}
	}
	r.refs.Add(1)
	return r, nil
}

// openPart opens the source of part i and checks its schema against the
// catalog's.
func (r *Reader) openPart(i int) (batchSource, int64, error) {
	p := r.parts[i]
	var (
		src  batchSource
		rows int64
		err  error
	)
	switch p.format {
	case FormatParquet:
		src, rows, err = openParquet(p.in, r.opt)
	case FormatCSV:
		src, err = openCSV(p.in, r.opt)
		rows = -1
	case FormatIPCFile:
		src, err = openIPCFile(p.in, r.opt)
		rows = -1
	case FormatIPCStream:
		src, err = openIPCStream(p.in, r.opt)
		rows = -1
	default:
		err = fmt.Errorf("%w: %s: unknown format %q", cove.ErrInvalid, p.in.name, p.format)
	}
	if err != nil {
		return nil, 0, p.in.cause(err)
	}
	if err := conforms(p.in.name, src.Schema(), r.opt); err != nil {
		src.Close()
		return nil, 0, err
	}
	if r.schema != nil {
		if err := sameColumns(p.in.name, src.Schema(), r.schema); err != nil {
			src.Close()
			return nil, 0, err
		}
	}
	return src, rows, nil
}

// conforms checks the columns of a non-CSV source against Options.Schema.
func conforms(name string, got *arrow.Schema, opt Options) error {
	if opt.Schema == nil {
		return nil
	}
	for _, f := range got.Fields() {
		i := opt.Schema.FieldIndices(f.Name)
		if len(i) != 1 {
			return fmt.Errorf("%w: %s: column %q is not in the schema", cove.ErrInvalid, name, f.Name)
		}
		want := opt.Schema.Field(i[0])
		if !arrow.TypeEqual(f.Type, want.Type) {
			return fmt.Errorf("%w: %s: column %q has type %s, the schema says %s", cove.ErrInvalid, name, f.Name, f.Type, want.Type)
		}
	}
	return nil
}

// sameColumns checks that a later object of a prefix has the columns of the
// first, by name and type.
func sameColumns(name string, got, want *arrow.Schema) error {
	if got.NumFields() != want.NumFields() {
		return fmt.Errorf("%w: %s: %d columns, the first object has %d", cove.ErrInvalid, name, got.NumFields(), want.NumFields())
	}
	for i, f := range got.Fields() {
		w := want.Field(i)
		if f.Name != w.Name || !arrow.TypeEqual(f.Type, w.Type) {
			return fmt.Errorf("%w: %s: column %d is %q %s, the first object has %q %s", cove.ErrInvalid, name, i, f.Name, f.Type, w.Name, w.Type)
		}
	}
	return nil
}

// Snapshot reports what the Reader reads. Everything but Rows is fixed when
// the Reader opens.
func (r *Reader) Snapshot() Snapshot {
	s := r.snap
	s.Objects = slices.Clone(s.Objects)
	return s
}

// Schema returns the schema of the batches: the requested columns in the
// requested order.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// Next advances to the next batch, releasing the current one. It returns
// false at the end of the input or on error; Err tells which. After an
// error, no further batch is returned.
func (r *Reader) Next() bool {
	if r.err != nil || r.done {
		return false
	}
	for {
		if err := r.ctx.Err(); err != nil {
			return r.fail(fmt.Errorf("%s: %w", r.parts[r.idx].in.name, err))
		}
		ok, err := r.src.Next()
		if err != nil {
			return r.fail(r.parts[r.idx].in.cause(err))
		}
		if ok {
			rec := r.src.RecordBatch()
			if err := r.checkNulls(rec); err != nil {
				return r.fail(err)
			}
			r.read += rec.NumRows()
			if r.read > r.opt.MaxRows {
				return r.fail(fmt.Errorf("%w: %s: more than %d rows", cove.ErrLimit, r.name, r.opt.MaxRows))
			}
			return true
		}
		p := r.parts[r.idx]
		if p.check != nil {
			if err := p.check(); err != nil {
				return r.fail(err)
			}
		}
		r.src.Close()
		p.release()
		r.src = nil
		if r.idx+1 == len(r.parts) {
			r.done = true
			r.snap.Rows = r.read
			return false
		}
		r.idx++
		if r.src, _, err = r.openPart(r.idx); err != nil {
			return r.fail(err)
		}
	}
}

func (r *Reader) fail(err error) bool {
	r.err = err
	return false
}

// checkNulls enforces the catalog's non-nullable columns.
func (r *Reader) checkNulls(rec arrow.RecordBatch) error {
	if r.opt.Schema == nil {
		return nil
	}
	for i, f := range rec.Schema().Fields() {
		col := rec.Column(i)
		if col.NullN() == 0 {
			continue
		}
		idx := r.opt.Schema.FieldIndices(f.Name)
		if len(idx) == 1 && !r.opt.Schema.Field(idx[0]).Nullable {
			row := 0
			for col.IsValid(row) {
				row++
			}
			return fmt.Errorf("%w: %s: row %d, column %q: null in a column the schema says is not nullable",
				cove.ErrInvalid, r.parts[r.idx].in.name, r.read+int64(row)+1, f.Name)
		}
	}
	return nil
}

// RecordBatch returns the current batch, valid until the next call to Next
// or Release; nil before the first Next and after the last.
func (r *Reader) RecordBatch() arrow.RecordBatch {
	if r.done || r.err != nil || r.src == nil {
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
// decoder and closes the files.
func (r *Reader) Release() {
	if r.refs.Add(-1) > 0 {
		return
	}
	r.done = true
	// Close errors are dropped: the data was read in full or abandoned, and
	// a read-only input loses nothing on close.
	if r.src != nil {
		r.src.Close()
		r.src = nil
	}
	for _, p := range r.parts {
		p.release()
	}
}
