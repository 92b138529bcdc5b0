//go:build wasip1

// A guest that never returns.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }
func main() {}

var n uint64

func process(b *guest.Batch) error {
	for {
		n++
	}
}
