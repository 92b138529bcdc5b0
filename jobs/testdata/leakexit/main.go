//go:build wasip1

// A guest that exits with a data-dependent code after printing a row.
package main

import (
	"fmt"
	"os"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }
func main() {}

func process(b *guest.Batch) error {
	name, value := b.String("name"), b.Float64("value")
	fmt.Println(name.Value(0))
	os.Exit(int(value.Value(0)) % 256)
	return nil
}
