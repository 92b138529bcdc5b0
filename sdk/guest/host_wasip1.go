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

//go:wasmimport cove column
func coveColumn(col uint32, dst unsafe.Pointer, n uint32)

//go:wasmimport cove plan
func covePlan(ptr unsafe.Pointer, n uint32)

//go:wasmimport cove result
func coveResult(output uint32, values unsafe.Pointer, n uint32)

func (importHost) plan(js []byte) { covePlan(unsafe.Pointer(unsafe.SliceData(js)), uint32(len(js))) }

func (importHost) result(output uint32, v []float64) {
	coveResult(output, unsafe.Pointer(unsafe.SliceData(v)), uint32(len(v)))
}

func (importHost) column(col uint32, dst []byte) {
	coveColumn(col, unsafe.Pointer(unsafe.SliceData(dst)), uint32(len(dst)))
}

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

// featureLazy is abi.FeatureLazyColumns: batch regions carry only the
// columns' names, types and lengths; the SDK copies a column in when the
// handler first reads it, so a kernels-only job copies no column at all.
const featureLazy = 1

//go:wasmexport cove_features
func features(offered uint32) uint32 {
	cur.lazy = offered&featureLazy != 0
	return offered & featureLazy
}

// region backs the batch regions: grow-only, reused batch after batch (the
// views of a batch are valid until the next one). pending says cove_alloc
// handed it out and cove_batch has not taken it yet.
var (
	region  []uint64
	pending bool
)

//go:wasmexport cove_alloc
func alloc(size uint32) uint32 {
	if words := (uint64(size)+7)/8 + 1; uint64(len(region)) < words { // +1: never a zero-length, zero-address region
		region = nil // let the old one go before the new one is allocated
		region = make([]uint64, words+words/4)
	}
	pending = true
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(region))))
}

// taken is the region cove_alloc handed out, if ptr and size match it.
func taken(ptr, size uint32) ([]byte, bool) {
	ok := pending && uint32(uintptr(unsafe.Pointer(unsafe.SliceData(region)))) == ptr && uint64(size) <= 8*uint64(len(region))
	pending = false
	if !ok {
		return nil, false
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(region))), size), true
}

//go:wasmexport cove_batch
func batch(ptr, size uint32) uint32 {
	r, ok := taken(ptr, size)
	if !ok {
		report("guest: cove_batch called without a matching cove_alloc")
		return 1
	}
	if err := cur.run(r); err != nil {
		report("cove guest: batch failed: " + err.Error())
		return 1
	}
	return 0
}

// cove_plan is the planning call: the region is a schema region (a batch
// region with no rows); the handler runs in plan mode and the SDK hands the
// plan it built to the host (import "plan").
//
//go:wasmexport cove_plan
func planCall(ptr, size uint32) uint32 {
	r, ok := taken(ptr, size)
	if !ok {
		report("guest: cove_plan called without a matching cove_alloc")
		return 1
	}
	if _, err := cur.plan(r); err != nil {
		report("cove guest: planning failed: " + err.Error())
		return 1
	}
	return 0
}

// report writes to stderr, which the host shows only on mock-data runs.
func report(msg string) {
	_, _ = syscall.Write(2, []byte(msg+"\n"))
}
