//go:build wasip1

// A guest that takes about a tenth of a second per batch and emits nothing:
// it keeps a job reading long enough to pull the data source from under it.
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(process) }
func main() {}

var sink uint64

func process(b *guest.Batch) error {
	for i := 0; i < 30_000_000; i++ {
		sink += uint64(i)
	}
	return nil
}
