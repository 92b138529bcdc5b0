//go:build wasip1

// Command kerngroup filters and groups on host kernels (benchmark).
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	g := b.All().NotNull("pm").WhereInt("year", guest.Ge, 2014).GroupBy("station", "year")
	guest.Output("out").AddColumn(g, "pm")
	return nil
}
