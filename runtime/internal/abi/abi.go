package abi

import "fmt"

// Version is the ABI version this package implements.
const Version = 1

// Module is the import module of the host functions.
const Module = "cove"

// Host function names (imports of the guest, module "cove").
const (
	ImportOutput = "output" // (name_ptr, name_len i32) -> (output_id i32)
	ImportKey    = "key"    // (key_ptr, key_len i32) -> (key_id i32)
	ImportEmit   = "emit"   // (output_id, rows_ptr, keys_ptr, values_ptr, count i32) -> ()

	// Host kernels (optional imports; docs/abi.md, "Host kernels").
	ImportKFilter = "k_filter" // (sel, col, op, arg_ptr, arg_len i32) -> (handle i32)
	ImportKBucket = "k_bucket" // (sel, cols_ptr, ncols i32) -> (handle i32)
	ImportKEmit   = "k_emit"   // (output_id, handle, value_col i32) -> ()
	ImportKSelect = "k_select" // (rows_ptr, count i32) -> (handle i32)
	ImportKLen    = "k_len"    // (handle i32) -> (count i32)
	ImportKRead   = "k_read"   // (handle, what, from, dst_ptr, count i32) -> (copied i32)

	// ImportColumn copies one column of the current batch into guest memory
	// (optional import; docs/abi.md, "Lazy columns").
	ImportColumn = "column" // (col, dst_ptr, dst_len i32) -> ()

	// ImportPlan hands the job's plan during the planning call (optional
	// import; docs/abi.md, "The planning call").
	ImportPlan = "plan" // (ptr, len i32) -> ()
	// ImportResult hands a block's vector for a block output (optional
	// import; docs/abi.md, "Per-unit and block modes").
	ImportResult = "result" // (output_id, values_ptr, count i32) -> ()
)

// Guest export names.
const (
	ExportMemory     = "memory"
	ExportInitialize = "_initialize"      // () -> (), optional: the WASI reactor initializer
	ExportVersion    = "cove_abi_version" // () -> (i32)
	ExportAlloc      = "cove_alloc"       // (size i32) -> (ptr i32)
	ExportBatch      = "cove_batch"       // (ptr, size i32) -> (rc i32)
	// ExportFeatures is optional: the host offers the optional features it
	// supports, the guest answers those it uses (docs/abi.md, "Features").
	ExportFeatures = "cove_features" // (offered i32) -> (used i32)
	// ExportPlan is optional: the planning call (docs/abi.md, "The planning
	// call").
	ExportPlan = "cove_plan" // (ptr, size i32) -> (rc i32)
)

// Optional features of ABI v1, negotiated through cove_features.
const (
	// FeatureLazyColumns: batch regions carry lazy descriptors and no column
	// data; the guest copies the columns it reads with import "column".
	FeatureLazyColumns uint32 = 1
)

// HostFeatures are the optional features this package implements.
const HostFeatures = FeatureLazyColumns

// CheckFeatures checks a guest's answer to cove_features(offered).
func CheckFeatures(offered, used uint32) error {
	if used&^offered != 0 {
		// The answer is guest-chosen: a 32-bit channel, so only in Detail.
		e := abiErr("guest asked for optional features the host did not offer (offered %#x)", offered)
		e.Detail = fmt.Sprintf("asked for %#x", used)
		return e
	}
	return nil
}

// ValType is a WebAssembly value type, as far as ABI v1 needs.
type ValType byte

// I32 is the only value type ABI v1 uses.
const I32 ValType = 0x7f

// Signature is a function type.
type Signature struct{ Params, Results []ValType }

func sig(params, results int) Signature {
	s := Signature{Params: make([]ValType, params), Results: make([]ValType, results)}
	for i := range s.Params {
		s.Params[i] = I32
	}
	for i := range s.Results {
		s.Results[i] = I32
	}
	return s
}

// Imports are the host functions of module "cove" and their signatures.
var Imports = map[string]Signature{
	ImportOutput: sig(2, 1),
	ImportKey:    sig(2, 1),
	ImportEmit:   sig(5, 0),

	ImportKFilter: sig(5, 1),
	ImportKBucket: sig(3, 1),
	ImportKEmit:   sig(3, 0),
	ImportKSelect: sig(2, 1),
	ImportKLen:    sig(1, 1),
	ImportKRead:   sig(5, 1),

	ImportColumn: sig(3, 0),

	ImportPlan:   sig(2, 0),
	ImportResult: sig(3, 0),
}

// Exports are the functions a guest must export, with their signatures.
var Exports = map[string]Signature{
	ExportVersion: sig(0, 1),
	ExportAlloc:   sig(1, 1),
	ExportBatch:   sig(2, 1),
}

// OptionalExports are functions a guest may export, with their signatures
// (_initialize, () -> (), aside).
var OptionalExports = map[string]Signature{
	ExportFeatures: sig(1, 1),
	ExportPlan:     sig(2, 1),
}

// WASIModule is the WASI import module the host provides a sandboxed part of.
const WASIModule = "wasi_snapshot_preview1"

// WASIAllowed are the WASI functions a guest may import: those Go's wasip1
// runtime and its os package import at start-up. The host answers them with
// no files, no arguments or environment, a fake clock and deterministic
// random bytes (docs/abi.md, "WASI").
var WASIAllowed = map[string]bool{
	// Go runtime.
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_time_get": true, "random_get": true, "poll_oneoff": true, "sched_yield": true,
	"proc_exit": true, "fd_write": true,
	// Go os package init (stdio and preopen discovery; there are no preopens).
	"fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true,
}

// Problem kinds of an Error.
const (
	KindABI   = "abi"   // the guest broke the ABI
	KindLimit = "limit" // the guest exceeded a configured limit
)

// Error is a host call the host refused. Msg is safe for operators on real
// data: it carries numbers from the configuration and the ABI, never bytes
// of guest memory. Detail adds guest-supplied text for debug (mock) runs.
type Error struct {
	Kind   string
	Msg    string
	Detail string
}

func (e *Error) Error() string { return e.Msg }

func abiErr(format string, args ...any) *Error {
	return &Error{Kind: KindABI, Msg: fmt.Sprintf(format, args...)}
}

func limitErr(format string, args ...any) *Error {
	return &Error{Kind: KindLimit, Msg: fmt.Sprintf(format, args...)}
}
