//go:build wasip1

// A guest that fails with an error carrying a row.
package main

import (
	"fmt"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }
func main() {}

func process(b *guest.Batch) error {
	name, value := b.String("name"), b.Float64("value")
	return fmt.Errorf("leaking %s=%v", name.Value(0), value.Value(0))
}
