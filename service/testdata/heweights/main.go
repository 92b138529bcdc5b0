//go:build wasip1

// An HE guest: it reads public columns only (station, year) and emits, for
// every row and each output, the row's weight in its year's group. The
// encrypted PM2.5 column never reaches it; the host multiplies the weights
// into the ciphertexts.
package main

import (
	"strconv"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }
func main() {}

func process(b *guest.Batch) error {
	year := b.Int64("year")
	sum, n := guest.Output("pm25_sum"), guest.Output("pm25_n")
	for i := 0; i < b.Len(); i++ {
		if year.IsNull(i) {
			continue
		}
		k := guest.Key(strconv.FormatInt(year.Value(i), 10))
		sum.Add(i, k, 1)
		n.Add(i, k, 1)
	}
	return nil
}
