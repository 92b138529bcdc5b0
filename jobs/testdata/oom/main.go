//go:build wasip1

// A guest that allocates until its memory cap stops it.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }
func main() {}

var keep [][]byte

func process(b *guest.Batch) error {
	for {
		buf := make([]byte, 1<<20)
		buf[0] = 1
		keep = append(keep, buf)
	}
}
