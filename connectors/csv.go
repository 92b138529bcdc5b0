package connectors

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
)

// csvSource decodes CSV with encoding/csv (RFC 4180: quoted fields, doubled
// quotes, CRLF or LF line ends) into Arrow builders. It parses only the
// requested columns. Its messages name the row and the column, never a
// cell's content.
type csvSource struct {
	name    string
	opt     Options
	body    io.ReadCloser
	lim     *recordLimiter
	cr      *csv.Reader
	schema  *arrow.Schema // of the batches
	cols    []*csvColumn
	nfields int
	row     int64    // data rows read so far
	pending []csvRow // rows read to infer the schema, not yet decoded
	rec     arrow.RecordBatch
	eof     bool
}

type csvRow struct {
	fields []string
	line   int
}

// csvColumn decodes one column of the file into a builder.
type csvColumn struct {
	index    int // of the field in a record
	field    arrow.Field
	b        array.Builder
	parse    func(string) bool // appends the value; false if it does not parse
	typeName string
}

// errRecordTooLong is returned by recordLimiter to encoding/csv, which hands
// it back from Read.
var errRecordTooLong = errors.New("record too long")

// recordLimiter bounds the bytes encoding/csv buffers for one record, which
// it otherwise grows without limit.
type recordLimiter struct {
	r     io.Reader
	n     int64 // bytes handed out
	mark  int64 // end of the last complete record
	limit int64
}

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.n-l.mark > l.limit {
		return 0, errRecordTooLong
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

func openCSV(in *input, opt Options) (src batchSource, err error) {
	body, err := in.stream()
	if err != nil {
		return nil, err
	}
	s := &csvSource{name: in.name, opt: opt, body: body}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.lim = &recordLimiter{r: body, limit: 64 * int64(opt.MaxFieldBytes)}
	s.cr = csv.NewReader(s.lim)
	s.cr.Comma = opt.CSV.Comma
	s.cr.Comment = opt.CSV.Comment
	s.cr.LazyQuotes = opt.CSV.LazyQuotes
	s.cr.TrimLeadingSpace = opt.CSV.TrimLeadingSpace
	s.cr.FieldsPerRecord = -1 // counted here, for a clearer message
	s.cr.ReuseRecord = true

	fileSchema := opt.Schema
	if !opt.CSV.NoHeader {
		header, err := s.cr.Read()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: %s: empty, no header line", cove.ErrInvalid, s.name)
		}
		if err != nil {
			return nil, s.readErr(err, 0)
		}
		s.lim.mark = s.cr.InputOffset()
		header = slices.Clone(header)
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
		if err := s.checkHeader(header); err != nil {
			return nil, err
		}
		if fileSchema == nil {
			if fileSchema, err = s.infer(header); err != nil {
				return nil, err
			}
		}
	} else if fileSchema == nil {
		return nil, fmt.Errorf("%w: %s: a CSV file without a header needs Options.Schema", cove.ErrInvalid, s.name)
	}
	s.nfields = fileSchema.NumFields()
	s.lim.limit = int64(s.nfields)*int64(opt.MaxFieldBytes) + 64<<10

	want := opt.Columns
	if len(want) == 0 {
		for _, f := range fileSchema.Fields() {
			want = append(want, f.Name)
		}
	}
	fields := make([]arrow.Field, 0, len(want))
	for _, c := range want {
		idx := fileSchema.FieldIndices(c)
		if len(idx) != 1 {
			return nil, fmt.Errorf("%w: %s: no column %q", cove.ErrInvalid, s.name, c)
		}
		f := fileSchema.Field(idx[0])
		col, err := newCSVColumn(idx[0], f, opt)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: column %q: %w", cove.ErrInvalid, s.name, c, err)
		}
		s.cols = append(s.cols, col)
		fields = append(fields, f)
	}
	s.schema = arrow.NewSchema(fields, nil)
	return s, nil
}

// checkHeader compares the header with the catalog's schema, if any.
func (s *csvSource) checkHeader(header []string) error {
	seen := map[string]bool{}
	for i, h := range header {
		if len(h) > s.opt.MaxFieldBytes {
			return fmt.Errorf("%w: %s: header column %d longer than %d bytes", cove.ErrLimit, s.name, i+1, s.opt.MaxFieldBytes)
		}
		if seen[h] {
			return fmt.Errorf("%w: %s: header names column %q twice", cove.ErrInvalid, s.name, h)
		}
		seen[h] = true
	}
	sc := s.opt.Schema
	if sc == nil {
		return nil
	}
	if len(header) != sc.NumFields() {
		return fmt.Errorf("%w: %s: header has %d columns, the schema %d", cove.ErrInvalid, s.name, len(header), sc.NumFields())
	}
	for i, h := range header {
		if h != sc.Field(i).Name {
			return fmt.Errorf("%w: %s: header column %d is %q, the schema says %q", cove.ErrInvalid, s.name, i+1, h, sc.Field(i).Name)
		}
	}
	return nil
}

// infer reads up to InferRows rows and gives each column the narrowest of
// int64, float64, bool and utf8 that holds every non-null cell. The rows
// are kept and decoded with the inferred schema, which then holds for the
// rest of the file: a later cell that does not fit is an error.
func (s *csvSource) infer(header []string) (*arrow.Schema, error) {
	const (
		isInt = 1 << iota
		isFloat
		isBool
	)
	kinds := make([]int, len(header))
	for i := range kinds {
		kinds[i] = isInt | isFloat | isBool
	}
	seen := make([]bool, len(header))
	for len(s.pending) < s.opt.CSV.InferRows {
		rec, line, err := s.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rowNo := s.row + int64(len(s.pending)) + 1
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%w: %s: row %d (line %d): %d fields, want %d", cove.ErrInvalid, s.name, rowNo, line, len(rec), len(header))
		}
		for i, v := range rec {
			if len(v) > s.opt.MaxFieldBytes {
				return nil, fmt.Errorf("%w: %s: row %d (line %d), column %q: field longer than %d bytes", cove.ErrLimit, s.name, rowNo, line, header[i], s.opt.MaxFieldBytes)
			}
			if s.isNull(v) {
				continue
			}
			seen[i] = true
			k := kinds[i]
			if k&isInt != 0 {
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					k &^= isInt
				}
			}
			if k&isFloat != 0 {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					k &^= isFloat
				}
			}
			if k&isBool != 0 {
				if _, err := strconv.ParseBool(v); err != nil {
					k &^= isBool
				}
			}
			kinds[i] = k
		}
		s.pending = append(s.pending, csvRow{slices.Clone(rec), line})
	}
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		var t arrow.DataType = arrow.BinaryTypes.String
		switch k := kinds[i]; {
		case !seen[i]:
		case k&isInt != 0:
			t = arrow.PrimitiveTypes.Int64
		case k&isFloat != 0:
			t = arrow.PrimitiveTypes.Float64
		case k&isBool != 0:
			t = arrow.FixedWidthTypes.Boolean
		}
		fields[i] = arrow.Field{Name: h, Type: t, Nullable: true}
	}
	return arrow.NewSchema(fields, nil), nil
}

func (s *csvSource) isNull(v string) bool {
	for _, n := range s.opt.CSV.NullValues {
		if v == n {
			return true
		}
	}
	return false
}

// read returns the next record from the file and its line number.
func (s *csvSource) read() ([]string, int, error) {
	rec, err := s.cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, 0, err
		}
		return nil, 0, s.readErr(err, s.row+int64(len(s.pending))+1)
	}
	s.lim.mark = s.cr.InputOffset()
	line, _ := s.cr.FieldPos(0)
	return rec, line, nil
}

// readErr describes an error of encoding/csv or of the input below it.
func (s *csvSource) readErr(err error, row int64) error {
	if errors.Is(err, errRecordTooLong) {
		return fmt.Errorf("%w: %s: row %d: record longer than %d bytes", cove.ErrLimit, s.name, row, s.lim.limit)
	}
	// A ParseError names the line and column and describes the quoting;
	// it carries no field content.
	if pe, ok := errors.AsType[*csv.ParseError](err); ok && pe.Err != nil && !errors.Is(pe.Err, io.ErrUnexpectedEOF) && isCSVSyntax(pe.Err) {
		return fmt.Errorf("%w: %s: row %d (line %d, column %d): %v", cove.ErrInvalid, s.name, row, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: reading CSV at row %d: %w", s.name, row, err)
}

func isCSVSyntax(err error) bool {
	return errors.Is(err, csv.ErrBareQuote) || errors.Is(err, csv.ErrQuote) || errors.Is(err, csv.ErrFieldCount) ||
		strings.Contains(err.Error(), "delimiter")
}

func (s *csvSource) Schema() *arrow.Schema { return s.schema }

func (s *csvSource) Next() (bool, error) {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
	if s.eof {
		return false, nil
	}
	n := 0
	for _, c := range s.cols {
		c.b.Reserve(min(s.opt.BatchRows, 1<<16))
	}
	for n < s.opt.BatchRows {
		var (
			rec  []string
			line int
			err  error
		)
		if len(s.pending) > 0 {
			rec, line = s.pending[0].fields, s.pending[0].line
			s.pending = s.pending[1:]
		} else if rec, line, err = s.read(); err == io.EOF {
			s.eof = true
			break
		} else if err != nil {
			return false, err
		}
		s.row++
		if len(rec) != s.nfields {
			return false, fmt.Errorf("%w: %s: row %d (line %d): %d fields, want %d", cove.ErrInvalid, s.name, s.row, line, len(rec), s.nfields)
		}
		for _, c := range s.cols {
			v := rec[c.index]
			switch {
			case len(v) > s.opt.MaxFieldBytes:
				return false, fmt.Errorf("%w: %s: row %d (line %d), column %q: field longer than %d bytes", cove.ErrLimit, s.name, s.row, line, c.field.Name, s.opt.MaxFieldBytes)
			case s.isNull(v):
				if !c.field.Nullable {
					return false, fmt.Errorf("%w: %s: row %d (line %d), column %q: null in a column the schema says is not nullable", cove.ErrInvalid, s.name, s.row, line, c.field.Name)
				}
				c.b.AppendNull()
			case !c.parse(v):
				return false, fmt.Errorf("%w: %s: row %d (line %d), column %q: not a valid %s", cove.ErrInvalid, s.name, s.row, line, c.field.Name, c.typeName)
			}
		}
		n++
	}
	if n == 0 {
		return false, nil
	}
	cols := make([]arrow.Array, len(s.cols))
	for i, c := range s.cols {
		cols[i] = c.b.NewArray()
	}
	s.rec = array.NewRecordBatch(s.schema, cols, int64(n))
	for _, a := range cols {
		a.Release()
	}
	return true, nil
}

func (s *csvSource) RecordBatch() arrow.RecordBatch { return s.rec }

func (s *csvSource) Close() error {
	if s.rec != nil {
		s.rec.Release()
		s.rec = nil
	}
	for _, c := range s.cols {
		c.b.Release()
	}
	s.cols = nil
	return s.body.Close()
}

// newCSVColumn returns the decoder of a column of type f.Type.
func newCSVColumn(index int, f arrow.Field, opt Options) (*csvColumn, error) {
	c := &csvColumn{index: index, field: f, typeName: f.Type.String()}
	mem := opt.Allocator
	switch t := f.Type.(type) {
	case *arrow.Int64Type:
		b := array.NewInt64Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 64)
			b.Append(x)
			return err == nil
		}
	case *arrow.Int32Type:
		b := array.NewInt32Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 32)
			b.Append(int32(x))
			return err == nil
		}
	case *arrow.Int16Type:
		b := array.NewInt16Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 16)
			b.Append(int16(x))
			return err == nil
		}
	case *arrow.Int8Type:
		b := array.NewInt8Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseInt(v, 10, 8)
			b.Append(int8(x))
			return err == nil
		}
	case *arrow.Uint64Type:
		b := array.NewUint64Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseUint(v, 10, 64)
			b.Append(x)
			return err == nil
		}
	case *arrow.Uint32Type:
		b := array.NewUint32Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseUint(v, 10, 32)
			b.Append(uint32(x))
			return err == nil
		}
	case *arrow.Float64Type:
		b := array.NewFloat64Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseFloat(v, 64)
			b.Append(x)
			return err == nil
		}
	case *arrow.Float32Type:
		b := array.NewFloat32Builder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseFloat(v, 32)
			b.Append(float32(x))
			return err == nil
		}
	case *arrow.BooleanType:
		b := array.NewBooleanBuilder(mem)
		c.b, c.parse = b, func(v string) bool {
			x, err := strconv.ParseBool(v)
			b.Append(x)
			return err == nil
		}
	case *arrow.StringType:
		b := array.NewStringBuilder(mem)
		c.typeName = "UTF-8 string"
		c.b, c.parse = b, func(v string) bool {
			b.Append(v)
			return utf8.ValidString(v)
		}
	case *arrow.LargeStringType:
		b := array.NewLargeStringBuilder(mem)
		c.typeName = "UTF-8 string"
		c.b, c.parse = b, func(v string) bool {
			b.Append(v)
			return utf8.ValidString(v)
		}
	case *arrow.Date32Type:
		b := array.NewDate32Builder(mem)
		c.typeName = "date (YYYY-MM-DD)"
		c.b, c.parse = b, func(v string) bool {
			d, err := time.Parse(time.DateOnly, v)
			b.Append(arrow.Date32FromTime(d))
			return err == nil
		}
	case *arrow.TimestampType:
		b := array.NewTimestampBuilder(mem, t)
		c.typeName = "timestamp"
		c.b, c.parse = b, func(v string) bool {
			ts, err := arrow.TimestampFromString(v, t.Unit)
			b.Append(ts)
			return err == nil
		}
	default:
		return nil, fmt.Errorf("CSV cannot decode type %s (supported: int8-64, uint32/64, float32/64, bool, utf8, large_utf8, date32, timestamp)", f.Type)
	}
	return c, nil
}
