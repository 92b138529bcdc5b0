package mock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
)

// MaxRows bounds the rows Generate makes.
const MaxRows = 1_000_000

// Options configures Generate.
type Options struct {
	Rows int    // default 1000
	Seed uint64 // same seed, same data
	// Domains adds public values per column (a manifest's group-by values)
	// to those of the catalog.
	Domains map[string][]string
	// Allocator for the record (default: memory.DefaultAllocator).
	Allocator memory.Allocator
}

// Generate returns a record of synthetic rows with d's schema: each column
// of d's type, its values drawn from its public domain when it has one.
func Generate(d policy.Dataset, opt Options) (arrow.RecordBatch, error) {
	if opt.Rows == 0 {
		opt.Rows = 1000
	}
	if opt.Rows < 0 || opt.Rows > MaxRows {
		return nil, fmt.Errorf("%w: %d mock rows (1 to %d)", cove.ErrLimit, opt.Rows, MaxRows)
	}
	if opt.Allocator == nil {
		opt.Allocator = memory.DefaultAllocator
	}
	if len(d.Columns) == 0 {
		return nil, fmt.Errorf("%w: dataset %s has no columns in the catalog", cove.ErrInvalid, d.Name)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x636f7665))
	fields := make([]arrow.Field, len(d.Columns))
	cols := make([]arrow.Array, len(d.Columns))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range d.Columns {
		typ, err := parseType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("%w: dataset %s column %q: %v", cove.ErrInvalid, d.Name, c.Name, err)
		}
		dom := slices.Concat(c.Domain, opt.Domains[c.Name])
		slices.Sort(dom)
		dom = slices.Compact(dom)
		fields[i] = arrow.Field{Name: c.Name, Type: typ, Nullable: false}
		if cols[i], err = column(opt.Allocator, typ, c.Name, dom, opt.Rows, rng); err != nil {
			return nil, fmt.Errorf("%w: dataset %s column %q: %v", cove.ErrInvalid, d.Name, c.Name, err)
		}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(opt.Rows)), nil
}

// parseType reads the type names arrow's DataType.String writes (the
// catalog's column types). A dictionary becomes its value type.
func parseType(s string) (arrow.DataType, error) {
	switch s {
	case "int8":
		return arrow.PrimitiveTypes.Int8, nil
	case "int16":
		return arrow.PrimitiveTypes.Int16, nil
	case "int32":
		return arrow.PrimitiveTypes.Int32, nil
	case "int64":
		return arrow.PrimitiveTypes.Int64, nil
	case "uint8":
		return arrow.PrimitiveTypes.Uint8, nil
	case "uint16":
		return arrow.PrimitiveTypes.Uint16, nil
	case "uint32":
		return arrow.PrimitiveTypes.Uint32, nil
	case "uint64":
		return arrow.PrimitiveTypes.Uint64, nil
	case "float32":
		return arrow.PrimitiveTypes.Float32, nil
	case "float64":
		return arrow.PrimitiveTypes.Float64, nil
	case "utf8", "large_utf8":
		return arrow.BinaryTypes.String, nil
	case "bool":
		return arrow.FixedWidthTypes.Boolean, nil
	case "date32":
		return arrow.FixedWidthTypes.Date32, nil
	}
	if unit, ok := strings.CutPrefix(s, "timestamp["); ok {
		unit, tz, _ := strings.Cut(strings.TrimSuffix(unit, "]"), ", tz=")
		u := map[string]arrow.TimeUnit{"s": arrow.Second, "ms": arrow.Millisecond, "us": arrow.Microsecond, "ns": arrow.Nanosecond}
		if tu, ok := u[unit]; ok {
			return &arrow.TimestampType{Unit: tu, TimeZone: tz}, nil
		}
	}
	if strings.HasPrefix(s, "dictionary<values=utf8") {
		return arrow.BinaryTypes.String, nil
	}
	return nil, fmt.Errorf("type %q has no mock generator", s)
}

// Synthetic ranges: fixed, never derived from data.
const (
	intLow, intHigh = 0, 100
	floatHigh       = 1000.0
)

var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func column(mem memory.Allocator, typ arrow.DataType, name string, dom []string, n int, rng *rand.Rand) (arrow.Array, error) {
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	b.Reserve(n)
	pick := func() string { return dom[rng.IntN(len(dom))] }
	for range n {
		switch bb := b.(type) {
		case *array.StringBuilder:
			if len(dom) > 0 {
				bb.Append(pick())
			} else {
				bb.Append(name + "-" + strconv.Itoa(rng.IntN(10)))
			}
		case *array.BooleanBuilder:
			bb.Append(rng.IntN(2) == 1)
		case *array.Float32Builder:
			v, err := number(dom, pick, func() float64 { return rng.Float64() * floatHigh })
			if err != nil {
				return nil, err
			}
			bb.Append(float32(v))
		case *array.Float64Builder:
			v, err := number(dom, pick, func() float64 { return rng.Float64() * floatHigh })
			if err != nil {
				return nil, err
			}
			bb.Append(v)
		case *array.Date32Builder:
			bb.Append(arrow.Date32FromTime(epoch.AddDate(0, 0, rng.IntN(365*3))))
		case *array.TimestampBuilder:
			unit := typ.(*arrow.TimestampType).Unit
			t := epoch.Add(time.Duration(rng.IntN(3*365*24)) * time.Hour)
			ts, _ := arrow.TimestampFromTime(t, unit)
			bb.Append(ts)
		default:
			v, err := number(dom, pick, func() float64 { return float64(intLow + rng.IntN(intHigh-intLow)) })
			if err != nil {
				return nil, err
			}
			if err := appendInt(b, int64(v)); err != nil {
				return nil, err
			}
		}
	}
	return b.NewArray(), nil
}

// number draws from the domain (parsed) or else from def.
func number(dom []string, pick func() string, def func() float64) (float64, error) {
	if len(dom) == 0 {
		return def(), nil
	}
	s := pick()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("domain value %q is not a number", s)
	}
	return v, nil
}

func appendInt(b array.Builder, v int64) error {
	switch bb := b.(type) {
	case *array.Int8Builder:
		bb.Append(int8(v))
	case *array.Int16Builder:
		bb.Append(int16(v))
	case *array.Int32Builder:
		bb.Append(int32(v))
	case *array.Int64Builder:
		bb.Append(v)
	case *array.Uint8Builder:
		bb.Append(uint8(v))
	case *array.Uint16Builder:
		bb.Append(uint16(v))
	case *array.Uint32Builder:
		bb.Append(uint32(v))
	case *array.Uint64Builder:
		bb.Append(uint64(v))
	default:
		return fmt.Errorf("no mock generator for %T", b)
	}
	return nil
}

// Parquet encodes a record as a Parquet file.
func Parquet(rec arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(rec.Schema(), &buf, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
