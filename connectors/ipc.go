package connectors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/covedata/cove"
)

// ipcBodyLimit caps one IPC message body whatever MaxBytes says; it is
// arrow-go's default.
const ipcBodyLimit = 256 << 20

// ipcSource reads Arrow IPC, file or stream. IPC has no column projection:
// each stored batch is read whole, checked (array.ValidateFull on every
// requested column, since offsets in untrusted bytes could otherwise point
// anywhere) and projected; the other columns are released with the stored
// batch. A stored batch larger than BatchRows is returned in slices.
type ipcSource struct {
	name    string
	opt     Options
	schema  *arrow.Schema // of the batches
	idx     []int         // of the requested columns in the stored schema
	next    func() (arrow.RecordBatch, error)
	close   func() error
	full    arrow.RecordBatch // projected stored batch
	off     int64
	cur     arrow.RecordBatch
	batches int   // stored batches read
	rows    int64 // rows before full
}

func ipcOptions(opt Options) []ipc.Option {
	return []ipc.Option{
		ipc.WithAllocator(opt.Allocator),
		ipc.WithBodySizeLimit(min(opt.MaxBytes, ipcBodyLimit)),
		ipc.WithMetadataSizeLimit(min(opt.MaxBytes, ipcMetaLimit)),
	}
}

func openIPCFile(in *input, opt Options) (src batchSource, err error) {
	defer recoverIPC(in.name, &err)
	if err := checkIPCFile(in.name, in.ra, in.size); err != nil {
		return nil, err
	}
	fr, err := ipc.NewFileReader(in.section(), ipcOptions(opt)...)
	if err != nil {
		return nil, corruptIPC(in.name, err)
	}
	i, n := 0, fr.NumRecords()
	s := &ipcSource{
		name: in.name,
		opt:  opt,
		next: func() (arrow.RecordBatch, error) {
			if i == n {
				return nil, nil
			}
			i++
			return fr.RecordBatchAt(i - 1)
		},
		close: fr.Close,
	}
	if err := s.project(fr.Schema()); err != nil {
		fr.Close()
		return nil, err
	}
	return s, nil
}

func openIPCStream(in *input, opt Options) (src batchSource, err error) {
	body, err := in.stream()
	if err != nil {
		return nil, err
	}
	defer recoverIPC(in.name, &err)
	head, err := peekSchema(body)
	if err == nil {
		err = checkIPCStream(in.name, head)
	}
	if err != nil {
		body.Close()
		return nil, err
	}
	// ipc.NewReader drops the size limits (arrow-go v18.8); a message
	// reader of our own keeps them.
	mr := ipc.NewMessageReader(io.MultiReader(bytes.NewReader(head), body), ipcOptions(opt)...)
	rr, err := ipc.NewReaderFromMessageReader(mr, ipcOptions(opt)...)
	if err != nil {
		body.Close()
		return nil, corruptIPC(in.name, err)
	}
	s := &ipcSource{
		name: in.name,
		opt:  opt,
		next: func() (arrow.RecordBatch, error) {
			if !rr.Next() {
				if err := rr.Err(); err != nil && err != io.EOF {
					return nil, err
				}
				return nil, nil
			}
			rec := rr.RecordBatch()
			rec.Retain() // the stream reader releases it on its next Next
			return rec, nil
		},
		close: func() error {
			rr.Release()
			return body.Close()
		},
	}
	if err := s.project(rr.Schema()); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// peekSchema reads the stream's first message (its framing and metadata),
// or as much of it as there is.
func peekSchema(r io.Reader) ([]byte, error) {
	head := make([]byte, 8)
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return head[:n], nil
	}
	if err != nil {
		return nil, err
	}
	size, off := binary.LittleEndian.Uint32(head), 4
	if size == 0xFFFFFFFF {
		size, off = binary.LittleEndian.Uint32(head[4:]), 8
	}
	if size > ipcMetaLimit {
		return head, nil // arrow-go refuses it
	}
	rest := int(size) - (8 - off)
	if rest <= 0 {
		return head, nil
	}
	head = append(head, make([]byte, rest)...)
	n, err = io.ReadFull(r, head[8:])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return head[:8+n], nil
	}
	return head, err
}

// project resolves the requested columns in the stored schema.
func (s *ipcSource) project(stored *arrow.Schema) error {
	cols := s.opt.Columns
	if len(cols) == 0 {
		for _, f := range stored.Fields() {
			cols = append(cols, f.Name)
		}
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		idx := stored.FieldIndices(c)
		switch {
		case len(idx) == 0:
			return fmt.Errorf("%w: %s: no column %q", cove.ErrInvalid, s.name, c)
		case len(idx) > 1:
			return fmt.Errorf("%w: %s: column %q appears more than once", cove.ErrInvalid, s.name, c)
		}
		s.idx = append(s.idx, idx[0])
		fields[i] = stored.Field(idx[0])
	}
	s.schema = arrow.NewSchema(fields, nil)
	return nil
}

func (s *ipcSource) Schema() *arrow.Schema { return s.schema }

func (s *ipcSource) Next() (ok bool, err error) {
	defer recoverIPC(s.name, &err)
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	for s.full == nil || s.off >= s.full.NumRows() {
		if s.full != nil {
			s.rows += s.full.NumRows()
			s.full.Release()
			s.full = nil
		}
		stored, err := s.next()
		if err != nil {
			return false, corruptIPC(s.name, err)
		}
		if stored == nil {
			return false, nil
		}
		s.batches++
		full, err := s.checked(stored)
		stored.Release()
		if err != nil {
			return false, err
		}
		s.full, s.off = full, 0
	}
	end := min(s.off+int64(s.opt.BatchRows), s.full.NumRows())
	s.cur = s.full.NewSlice(s.off, end)
	s.off = end
	return true, nil
}

// checked projects and validates a stored batch.
func (s *ipcSource) checked(stored arrow.RecordBatch) (arrow.RecordBatch, error) {
	if int(stored.NumCols()) <= maxIndex(s.idx) {
		return nil, fmt.Errorf("%w: %s: corrupt IPC: batch %d has %d columns", cove.ErrInvalid, s.name, s.batches, stored.NumCols())
	}
	cols := make([]arrow.Array, len(s.idx))
	for i, j := range s.idx {
		col := stored.Column(j)
		if int64(col.Len()) != stored.NumRows() {
			return nil, fmt.Errorf("%w: %s: corrupt IPC: batch %d, column %q has %d rows, the batch %d", cove.ErrInvalid, s.name, s.batches, s.schema.Field(i).Name, col.Len(), stored.NumRows())
		}
		if err := array.ValidateFull(col); err != nil {
			msg := err.Error()
			if strings.Contains(msg, "utf8") {
				msg = "a string is not valid UTF-8" // arrow-go's message quotes the string
			}
			return nil, fmt.Errorf("%w: %s: corrupt IPC: batch %d (rows from %d), column %q: %s", cove.ErrInvalid, s.name, s.batches, s.rows+1, s.schema.Field(i).Name, msg)
		}
		cols[i] = col
	}
	return array.NewRecordBatch(s.schema, cols, stored.NumRows()), nil
}

func maxIndex(v []int) int {
	m := -1
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func (s *ipcSource) RecordBatch() arrow.RecordBatch { return s.cur }

func (s *ipcSource) Close() error {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.full != nil {
		s.full.Release()
		s.full = nil
	}
	return s.close()
}

func corruptIPC(name string, err error) error {
	if passThrough(err) {
		return fmt.Errorf("%s: reading Arrow IPC: %w", name, err)
	}
	return fmt.Errorf("%w: %s: corrupt or truncated Arrow IPC: %w", cove.ErrInvalid, name, err)
}

func recoverIPC(name string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s: corrupt Arrow IPC (decoder panic: %v)", cove.ErrInvalid, name, p)
	}
}
