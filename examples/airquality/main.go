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
	for i := 0; i < b.Len(); i++ {
		if pm.IsNull(i) {
			continue
		}
		out.Add(i, guest.Key(station.Value(i), strconv.FormatInt(year.Value(i), 10)), pm.Value(i))
	}
	return nil
}
