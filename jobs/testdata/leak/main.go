//go:build wasip1

// A guest that tries every way it has to get rows out while completing
// normally: it prints them, and emits contributions keyed by them.
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
	out := guest.Output("total")
	for i := 0; i < b.Len(); i++ {
		fmt.Println("row", name.Value(i), value.Value(i))
		fmt.Fprintln(os.Stderr, "row", name.Value(i), value.Value(i))
		out.Add(i, guest.Key(name.Value(i)), value.Value(i)) // a key outside the public partitions
		out.Add(i, guest.Key("all"), value.Value(i))
	}
	return nil
}
