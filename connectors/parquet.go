package connectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
)

// parquetBufferSize is the read buffer of each column's page stream.
const parquetBufferSize = 1 << 20

// parquetSource streams a Parquet file through a pqarrow record reader.
type parquetSource struct {
	name string
	pf   *file.Reader
	rr   pqarrow.RecordReader
}

// readerProps enables buffered page streams, so a column chunk is read page
// by page instead of whole. Page buffers are pooled by arrow-go with
// finalizers, so they come from Go's heap rather than the caller's allocator.
func readerProps() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(memory.DefaultAllocator)
	p.BufferedStreamEnabled = true
	p.BufferSize = parquetBufferSize
	return p
}

func openParquet(in *input, opt Options) (src batchSource, rows int64, err error) {
	name := in.name
	defer recoverCorrupt(name, &err)
	pf, err := file.NewParquetReader(in.section(), file.WithReadProps(readerProps()))
	if err != nil {
		return nil, 0, corrupt(name, err)
	}
	defer func() {
		if err != nil {
			pf.Close()
		}
	}()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(opt.BatchRows)}, opt.Allocator)
	if err != nil {
		return nil, 0, corrupt(name, err)
	}
	leaves, err := projection(name, fr, opt.Columns)
	if err != nil {
		return nil, 0, err
	}
	rr, err := fr.GetRecordReader(context.Background(), leaves, nil)
	if err != nil {
		return nil, 0, corrupt(name, err)
	}
	if len(opt.Columns) > 0 {
		// GetRecordReader orders fields by first requested leaf; confirm.
		got := rr.Schema().Fields()
		for i, c := range opt.Columns {
			if i >= len(got) || got[i].Name != c {
				rr.Release()
				return nil, 0, fmt.Errorf("%w: %s: projection did not yield column %q at position %d", cove.ErrInvalid, name, c, i)
			}
		}
	}
	return &parquetSource{name: name, pf: pf, rr: rr}, pf.NumRows(), nil
}

// projection maps column names to the Parquet leaf columns under them, in
// the requested order; nil selects every column.
func projection(name string, fr *pqarrow.FileReader, cols []string) ([]int, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	byName := make(map[string]int, len(fr.Manifest.Fields))
	for i, f := range fr.Manifest.Fields {
		if _, dup := byName[f.Field.Name]; dup {
			byName[f.Field.Name] = -1
			continue
		}
		byName[f.Field.Name] = i
	}
	var leaves []int
	for _, c := range cols {
		i, ok := byName[c]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s: no column %q", cove.ErrInvalid, name, c)
		case i < 0:
			return nil, fmt.Errorf("%w: %s: column %q appears more than once", cove.ErrInvalid, name, c)
		}
		leaves = appendLeaves(leaves, &fr.Manifest.Fields[i])
	}
	return leaves, nil
}

func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

func (s *parquetSource) Schema() *arrow.Schema { return s.rr.Schema() }

func (s *parquetSource) Next() (ok bool, err error) {
	defer recoverCorrupt(s.name, &err)
	if s.rr.Next() {
		return true, nil
	}
	if err := s.rr.Err(); err != nil {
		return false, corrupt(s.name, err)
	}
	return false, nil
}

func (s *parquetSource) RecordBatch() arrow.RecordBatch { return s.rr.RecordBatch() }

func (s *parquetSource) Close() error {
	s.rr.Release()
	return s.pf.Close()
}

// corrupt wraps a decoder error. I/O errors keep their own category; the rest
// mean the bytes are not valid Parquet. arrow-go's messages describe
// structure (offsets, sizes, encodings), not values.
func corrupt(name string, err error) error {
	if passThrough(err) {
		return fmt.Errorf("%s: reading Parquet: %w", name, err)
	}
	return fmt.Errorf("%w: %s: corrupt or truncated Parquet: %w", cove.ErrInvalid, name, err)
}

// passThrough reports whether err is an I/O failure rather than bad bytes.
func passThrough(err error) bool {
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return true
	}
	for _, e := range []error{ErrChanged, ErrUnavailable, ErrAccessDenied, cove.ErrNotFound, cove.ErrLimit, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// recoverCorrupt turns a decoder panic, which malformed input can cause, into
// an error.
func recoverCorrupt(name string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s: corrupt Parquet (decoder panic: %v)", cove.ErrInvalid, name, p)
	}
}
