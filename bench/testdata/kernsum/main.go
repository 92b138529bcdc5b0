//go:build wasip1

// Command kernsum sums column pm on host kernels (benchmark).
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	guest.Output("out").AddColumn(b.All().NotNull("pm").GroupBy(), "pm")
	return nil
}
