//go:build wasip1

// A guest that reads past the end of its linear memory: a WebAssembly trap
// the SDK cannot recover.
package main

import (
	"unsafe"

	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(process) }
func main() {}

var sink byte

func process(b *guest.Batch) error {
	p := unsafe.Pointer(uintptr(0xfffffff0))
	sink = *(*byte)(p)
	return nil
}
