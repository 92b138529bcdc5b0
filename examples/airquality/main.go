// Command airquality is the Cove job for dataset beijing-air-quality: the
// mean PM2.5 per station and year (output pm25_mean), skipping null
// readings.
//
// It is a plan job (manifest mode omitted: plan): in the planning call the
// handler sees the schema only, and its fluent calls build the plan, which
// the host checks and runs natively over the whole dataset. Its plan is in
// plan.golden.json. In batch mode (mock-data runs) the same calls run on
// host kernels.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	readings := b.All().NotNull("PM2.5").GroupBy("station", "year")
	guest.Output("pm25_mean").AddColumn(readings, "PM2.5")
	return nil
}
