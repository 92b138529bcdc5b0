// Command adult is the Cove job for dataset adult: the count of people
// earning more than 50K per education (output high_income_count), and the
// mean weekly hours per occupation (output hours_mean), skipping null
// occupations and hours.
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
	high := b.All().WhereString("income", guest.Eq, ">50K").GroupBy("education")
	guest.Output("high_income_count").CountRows(high)
	hours := b.All().NotNull("hours-per-week").GroupBy("occupation")
	guest.Output("hours_mean").AddColumn(hours, "hours-per-week")
	return nil
}
