//go:build wasip1

// Command adult is the Cove job for dataset adult: the count of people
// earning more than 50K per education (output high_income_count), and the
// mean weekly hours per occupation (output hours_mean), skipping null
// occupations.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	education, occupation := b.String("education"), b.String("occupation")
	hours, income := b.Int64("hours-per-week"), b.String("income")
	high, mean := guest.Output("high_income_count"), guest.Output("hours_mean")
	for i := 0; i < b.Len(); i++ {
		if !income.IsNull(i) && income.Value(i) == ">50K" {
			high.Count(i, guest.Key(education.Value(i)))
		}
		if !occupation.IsNull(i) && !hours.IsNull(i) {
			mean.Add(i, guest.Key(occupation.Value(i)), float64(hours.Value(i)))
		}
	}
	return nil
}
