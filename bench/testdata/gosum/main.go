//go:build wasip1

// Command gosum sums column pm per row in the guest (benchmark).
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }

func main() {}

func process(b *guest.Batch) error {
	pm, out := b.Float64("pm"), guest.Output("out")
	key := guest.Key("all")
	for i := 0; i < b.Len(); i++ {
		if !pm.IsNull(i) {
			out.Add(i, key, pm.Value(i))
		}
	}
	return nil
}
