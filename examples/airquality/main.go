//go:build wasip1

// Command airquality is the Cove job for dataset beijing-air-quality: the
// mean PM2.5 per station and year (output pm25_mean), skipping null
// readings.
//
// It runs on host kernels: the host groups the rows by station and year and
// makes the contributions natively over the batch's Arrow buffers, so the
// job does no per-row work in WebAssembly.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	readings := b.All().NotNull("PM2.5").GroupBy("station", "year")
	guest.Output("pm25_mean").AddColumn(readings, "PM2.5")
	return nil
}
