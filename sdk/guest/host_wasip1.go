//go:build wasip1

package guest

import (
	"syscall"
	"unsafe"
)

// The imports of module "cove" (docs/abi.md, "Imports"). A refused call traps
// the guest, so they return only success values.

//go:wasmimport cove output
func coveOutput(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport cove key
func coveKey(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport cove emit
func coveEmit(output uint32, rows, keys, values unsafe.Pointer, n uint32)

//go:wasmimport cove k_filter
func coveKFilter(sel, col, op uint32, arg unsafe.Pointer, n uint32) uint32

//go:wasmimport cove k_bucket
func coveKBucket(sel uint32, cols unsafe.Pointer, n uint32) uint32

//go:wasmimport cove k_emit
func coveKEmit(output, h, col uint32)

//go:wasmimport cove k_select
func coveKSelect(rows unsafe.Pointer, n uint32) uint32

//go:wasmimport cove k_len
func coveKLen(h uint32) uint32

//go:wasmimport cove k_read
func coveKRead(h, what, from uint32, dst unsafe.Pointer, n uint32) uint32

type importHost struct{}

func (importHost) kfilter(sel, col, op uint32, arg []byte) uint32 {
	return coveKFilter(sel, col, op, unsafe.Pointer(unsafe.SliceData(arg)), uint32(len(arg)))
}

func (importHost) kbucket(sel uint32, cols []uint32) uint32 {
	return coveKBucket(sel, unsafe.Pointer(unsafe.SliceData(cols)), uint32(len(cols)))
}

func (importHost) kemit(output, h, col uint32) { coveKEmit(output, h, col) }

func (importHost) kselect(rows []uint32) uint32 {
	return coveKSelect(unsafe.Pointer(unsafe.SliceData(rows)), uint32(len(rows)))
}

func (importHost) klen(h uint32) uint32 { return coveKLen(h) }

func (importHost) kread(h, what, from uint32, dst []uint32) uint32 {
	return coveKRead(h, what, from, unsafe.Pointer(unsafe.SliceData(dst)), uint32(len(dst)))
}

func wasmHost() host { return importHost{} }

func (importHost) output(name string) uint32 {
	return coveOutput(unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)))
}

func (importHost) key(k string) uint32 {
	return coveKey(unsafe.Pointer(unsafe.StringData(k)), uint32(len(k)))
}

func (importHost) emit(output uint32, rows, keys []uint32, values []float64) {
	coveEmit(output, unsafe.Pointer(unsafe.SliceData(rows)), unsafe.Pointer(unsafe.SliceData(keys)),
		unsafe.Pointer(unsafe.SliceData(values)), uint32(len(rows)))
}

// The exports (docs/abi.md, "Exports").

//go:wasmexport cove_abi_version
func abiVersion() uint32 { return ABIVersion }

// pending is the region cove_alloc handed out last; the next cove_batch takes
// it. Each batch gets a fresh region, so views into an old one stay valid.
var pending []uint64

//go:wasmexport cove_alloc
func alloc(size uint32) uint32 {
	pending = make([]uint64, (uint64(size)+7)/8+1) // +1: never a zero-length, zero-address region
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(pending))))
}

//go:wasmexport cove_batch
func batch(ptr, size uint32) uint32 {
	p := pending
	pending = nil
	if p == nil || uint32(uintptr(unsafe.Pointer(unsafe.SliceData(p)))) != ptr || uint64(size) > 8*uint64(len(p)) {
		report("guest: cove_batch called without a matching cove_alloc")
		return 1
	}
	region := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(p))), size)
	if err := cur.run(region); err != nil {
		report("cove guest: batch failed: " + err.Error())
		return 1
	}
	return 0
}

// report writes to stderr, which the host shows only on mock-data runs.
func report(msg string) {
	_, _ = syscall.Write(2, []byte(msg+"\n"))
}
