//go:build wasip1

// Command airquality is the Cove job for dataset beijing-air-quality: the
// mean PM2.5 per station and year (output pm25_mean), skipping null
// readings.
package main

import (
	"strconv"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	station, year, pm := b.String("station"), b.Int64("year"), b.Float64("PM2.5")
	out := guest.Output("pm25_mean")
	// Rows come ordered by station and time: build a key only when it changes.
	var key, lastStation string
	lastYear := int64(-1)
	for i := 0; i < b.Len(); i++ {
		if pm.IsNull(i) {
			continue
		}
		if s, y := station.Value(i), year.Value(i); s != lastStation || y != lastYear {
			key, lastStation, lastYear = guest.Key(s, strconv.FormatInt(y, 10)), s, y
		}
		out.Add(i, key, pm.Value(i))
	}
	return nil
}
