package client

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

// Record returns the output's released rows as an Arrow record batch, for
// analysis tools that take Arrow: one utf8 column per group-by column (named
// after it; key_0, key_1… where the keys have another width, as for
// quantile ranks), then value, noise_stddev, ci95_low and ci95_high
// (float64). The schema's metadata names the output, its aggregate,
// mechanism, ε and δ. mem nil means memory.DefaultAllocator; the caller
// releases the record. An HE output not yet opened (OpenHE) has no rows to
// give and is refused.
func (o Output) Record(mem memory.Allocator) (arrow.RecordBatch, error) {
	if o.HE != nil && len(o.Rows) == 0 {
		return nil, fmt.Errorf("%w: output %s is encrypted: open it first (OpenHE)", cove.ErrInvalid, o.Name)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	width := len(o.GroupBy)
	if len(o.Rows) > 0 {
		width = len(o.Rows[0].Key)
	}
	names := o.GroupBy
	if width != len(o.GroupBy) {
		names = make([]string, width)
		for i := range names {
			names[i] = "key_" + strconv.Itoa(i)
		}
	}
	fields := make([]arrow.Field, 0, width+4)
	for _, n := range names {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.BinaryTypes.String})
	}
	for _, n := range []string{"value", "noise_stddev", "ci95_low", "ci95_high"} {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64})
	}
	meta := arrow.NewMetadata(
		[]string{"cove.output", "cove.aggregate", "cove.mechanism", "cove.epsilon", "cove.delta"},
		[]string{o.Name, o.Aggregate, o.Mechanism, strconv.FormatFloat(o.Epsilon, 'g', -1, 64), strconv.FormatFloat(o.Delta, 'g', -1, 64)})
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, &meta))
	defer b.Release()
	for i, r := range o.Rows {
		if len(r.Key) != width {
			return nil, fmt.Errorf("%w: output %s: row %d has a key of %d parts, row 0 of %d", cove.ErrInvalid, o.Name, i, len(r.Key), width)
		}
		for k, part := range r.Key {
			b.Field(k).(*array.StringBuilder).Append(part)
		}
		for k, v := range []float64{r.Value, r.NoiseStdDev, r.CILow, r.CIHigh} {
			b.Field(width + k).(*array.Float64Builder).Append(v)
		}
	}
	return b.NewRecordBatch(), nil
}
