//go:build wasip1

// Command hostile misbehaves in the way row 0 of column "mode" asks, using
// the value of column "secret" where it can, to show that no data escapes.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"github.com/covedata/cove/sdk/guest"
)

// Direct imports, bypassing the SDK's checks.
//
//go:wasmimport cove emit
func emit(output uint32, rows, keys, values unsafe.Pointer, n uint32)

//go:wasmimport cove key
func key(ptr unsafe.Pointer, n uint32) uint32

func init() { guest.Handle(process) }

func main() {}

var sink [][]byte

var depth int

func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	depth++
	return recurse(n+1) + int(pad[0])
}

func process(b *guest.Batch) error {
	mode := b.Int64("mode").Value(0)
	secret := b.Int64("secret").Value(0)
	out := guest.Output("out")
	switch mode {
	case 0: // behaves
		out.Count(0, guest.Key("ok"))
	case 1: // infinite loop
		for {
			depth++
		}
	case 2: // nil dereference
		var p *int
		return errors.New(strconv.Itoa(*p))
	case 3: // panic with data
		panic(fmt.Sprint("secret ", secret))
	case 4: // memory exhaustion
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case 5: // row out of range
		id := key(unsafe.Pointer(unsafe.StringData("k")), 1)
		rows, keys, values := []uint32{uint32(b.Len())}, []uint32{id}, []float64{1}
		emit(0, unsafe.Pointer(&rows[0]), unsafe.Pointer(&keys[0]), unsafe.Pointer(&values[0]), 1)
	case 6: // more contributions than allowed
		for j := 0; j < 1_000_000; j++ {
			out.Count(0, guest.Key("flood"))
		}
	case 7: // print data, exit with a data-dependent code
		fmt.Println("stdout secret", secret)
		fmt.Fprintln(os.Stderr, "stderr secret", secret)
		os.Exit(int(secret))
	case 8: // undeclared output whose name carries data
		guest.Output(fmt.Sprint("leak", secret))
	case 9: // key pointer outside memory
		key(unsafe.Pointer(uintptr(0xfffffff0)), 64)
	case 10: // handler error carrying data
		return fmt.Errorf("secret %d", secret)
	case 11: // unbounded recursion
		return errors.New(strconv.Itoa(recurse(0)))
	case 12: // exit 0 in the middle of a batch
		os.Exit(0)
	case 13: // key id never interned
		rows, keys, values := []uint32{0}, []uint32{1 << 30}, []float64{1}
		emit(0, unsafe.Pointer(&rows[0]), unsafe.Pointer(&keys[0]), unsafe.Pointer(&values[0]), 1)
	case 14: // output id never declared
		rows, keys, values := []uint32{0}, []uint32{0}, []float64{1}
		emit(7, unsafe.Pointer(&rows[0]), unsafe.Pointer(&keys[0]), unsafe.Pointer(&values[0]), 1)
	case 15: // oversized key
		guest.Output("out").Count(0, string(make([]byte, 1<<20)))
	}
	return nil
}
