//go:build wasip1

// Command gogroup filters (pm not null, year >= 2014) and groups by station
// and year per row in the guest (benchmark).
package main

import (
	"strconv"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	station, year, pm := b.String("station"), b.Int64("year"), b.Float64("pm")
	out := guest.Output("out")
	var key, lastStation string
	lastYear := int64(-1)
	for i := 0; i < b.Len(); i++ {
		if pm.IsNull(i) || year.Value(i) < 2014 {
			continue
		}
		if s, y := station.Value(i), year.Value(i); s != lastStation || y != lastYear {
			key, lastStation, lastYear = guest.Key(s, strconv.FormatInt(y, 10)), s, y
		}
		out.Add(i, key, pm.Value(i))
	}
	return nil
}
