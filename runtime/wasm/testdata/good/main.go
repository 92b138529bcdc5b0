//go:build wasip1

// Command good reads every ABI v1 type, nulls included, and emits what it
// saw so the test can check each value arrived intact.
package main

import (
	"strconv"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	i64, i32, f64 := b.Int64("i64"), b.Int32("i32"), b.Float64("f64")
	s, bo := b.String("s"), b.Bool("b")
	sum, count := guest.Output("sum"), guest.Output("count")
	for i := 0; i < b.Len(); i++ {
		if !i64.IsNull(i) {
			sum.Add(i, guest.Key("i64"), float64(i64.Value(i)))
		}
		if !i32.IsNull(i) {
			sum.Add(i, guest.Key("i32"), float64(i32.Value(i)))
		}
		if !f64.IsNull(i) {
			sum.Add(i, guest.Key("f64"), f64.Value(i))
		}
		if !s.IsNull(i) {
			count.Count(i, guest.Key("s", s.Value(i)))
		}
		if !bo.IsNull(i) {
			count.Count(i, guest.Key("b", strconv.FormatBool(bo.Value(i))))
		}
		for _, c := range []struct {
			name string
			null bool
		}{{"i64", i64.IsNull(i)}, {"i32", i32.IsNull(i)}, {"f64", f64.IsNull(i)}, {"s", s.IsNull(i)}, {"b", bo.IsNull(i)}} {
			if c.null {
				count.Count(i, guest.Key("null", c.name))
			}
		}
	}
	return nil
}
