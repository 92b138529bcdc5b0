package wasm

import (
	"context"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove/runtime/internal/abi"
)

// Runtime compiles guest modules and runs them. *Engine runs guests in this
// process; isolate.Engine (runtime/isolate) runs each instance in a sandbox
// process of its own. A caller written against Runtime switches between
// them by the value it is given. Implementations are safe for concurrent
// use.
type Runtime interface {
	// Compile checks and compiles a guest module. It refuses, with
	// cove.ErrLimit, a module over the size limit and, with cove.ErrInvalid,
	// a module that does not decode, imports anything outside ABI v1 (all
	// offending imports are listed) or lacks an ABI v1 export.
	Compile(ctx context.Context, module []byte) (Module, error)
	// Close closes the runtime and every module and instance it made.
	Close(ctx context.Context) error
}

// Module is a compiled guest module. It is safe for concurrent use.
type Module interface {
	// Instantiate starts an instance that may emit to outputs (the
	// manifest's outputs, in order: Emission.Output indexes them). It runs
	// the guest's _initialize under ctx and checks its ABI version.
	Instantiate(ctx context.Context, outputs []string) (Instance, error)
	// Plan makes the planning call (docs/abi.md, "The planning call"): in a
	// fresh instance it hands the guest's cove_plan a schema region of
	// schema (no rows) and returns the bytes the guest handed import plan,
	// at most 64 KiB, unchecked (the caller decodes them as a plan).
	// During the call only imports output and plan answer: the call cannot
	// reach data, there is none. A module without cove_plan is refused with
	// cove.ErrInvalid; a guest that fails, or returns without a plan, with
	// a *GuestError of phase "plan".
	Plan(ctx context.Context, schema *arrow.Schema, outputs []string) ([]byte, error)
	// InstantiateGroups starts an instance of per-unit or block mode
	// (GroupInstance) that may emit to outputs, configured by cfg. It runs
	// the guest's _initialize and checks its ABI version, then snapshots
	// the guest's state. Modules that mutate tables, use memory.init or
	// atomics are refused with cove.ErrInvalid naming the instruction.
	InstantiateGroups(ctx context.Context, outputs []string, cfg GroupConfig) (GroupInstance, error)
	// Close releases the compiled code.
	Close(ctx context.Context) error
}

// Instance is one running guest with its memory, interned keys and emit
// count. Its methods must not be called concurrently (they serialize).
// After any failure the instance is closed and refuses further batches.
type Instance interface {
	// ProcessBatch hands rec to the guest, which emits contributions through
	// emit, in the listed form only (Emission.Rows, Keys, Values: ranged
	// emissions of host kernels are expanded first). rec's columns are sent
	// as they are: project first. An error from emit stops the guest and is
	// returned unchanged. Any failure closes the instance: a caller must then
	// drop every emission the instance made.
	ProcessBatch(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error
	// ProcessBatchRuns is ProcessBatch whose emit also receives ranged
	// emissions (Emission.Runs non-nil): host kernels hand their
	// contributions as key runs over row ranges, a selection bitmap and the
	// value column, with no contribution per row in memory. A consumer that
	// reads the ranged form (Emission.Each, or the fields) saves a pass over
	// every contribution.
	ProcessBatchRuns(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error
	// KeyName returns the key interned as id ("" if none). Keys are derived
	// from data: they belong to the enclave, like the values.
	KeyName(id uint32) string
	// Emits is the number of contributions the instance has emitted.
	Emits() int64
	// Close ends the instance.
	Close(ctx context.Context) error
}

// Emission is one batch of contributions to output Output (an index into
// Instantiate's outputs), each on behalf of the privacy unit of its row of
// the batch. The host made the rows and checked them against the batch,
// whether the guest listed them (import emit) or a host kernel did (import
// k_emit). It comes in one of two forms:
//
//   - listed (Runs nil): contribution j adds Values[j] to key Keys[j] on
//     behalf of row Rows[j];
//   - ranged (Runs non-nil, from ProcessBatchRuns only): for each run, every
//     row r in [Start, End) whose bit is set in Select (bit r%64 of word
//     r/64) adds ByRow[r] (1 when ByRow is nil: a count) to key Run.Key on
//     behalf of row r. Runs are ascending and disjoint; rows outside every
//     run contribute nothing, whatever their bits.
//
// The slices are views valid only during the callback, read-only (ByRow is
// usually the value column's own Arrow buffer); copy what you keep.
type Emission struct {
	Output int
	Rows   []uint32
	Keys   []uint32
	Values []float64

	Runs   []Run
	Select []uint64
	ByRow  []float64
}

// Run is a range of rows [Start, End) of a batch whose contributions, in a
// ranged Emission, go to key Key.
type Run = abi.Run

// Len is the number of contributions in e.
func (e Emission) Len() int64 {
	a := abi.Emission{Rows: e.Rows, Runs: e.Runs, Select: e.Select}
	return a.Len()
}

// Each calls f for every contribution of e, in order (listed: as listed;
// ranged: run by run, rows ascending), until f returns an error.
func (e Emission) Each(f func(row, key uint32, value float64) error) error {
	if e.Runs == nil {
		for j, r := range e.Rows {
			if err := f(r, e.Keys[j], e.Values[j]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, run := range e.Runs {
		for w := run.Start >> 6; w<<6 < run.End; w++ {
			x := e.Select[w]
			if lo := run.Start; w == lo>>6 {
				x &= ^uint64(0) << (lo & 63)
			}
			if hi := run.End; (w+1)<<6 > hi {
				x &= 1<<(hi&63) - 1
			}
			for ; x != 0; x &= x - 1 {
				r := w<<6 + uint32(bits.TrailingZeros64(x))
				v := 1.0
				if e.ByRow != nil {
					v = e.ByRow[r]
				}
				if err := f(r, run.Key, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ExpandRuns wraps emit, a consumer of listed emissions, for
// ProcessBatchRuns: a ranged emission reaches it expanded into the listed
// form (in buffers reused from call to call).
func ExpandRuns(emit func(Emission) error) func(Emission) error {
	var rows, keys []uint32
	var values []float64
	return func(e Emission) error {
		if e.Runs == nil {
			return emit(e)
		}
		rows, keys, values = rows[:0], keys[:0], values[:0]
		_ = e.Each(func(r, k uint32, v float64) error {
			rows, keys, values = append(rows, r), append(keys, k), append(values, v)
			return nil
		})
		return emit(Emission{Output: e.Output, Rows: rows, Keys: keys, Values: values})
	}
}

// emissionOf is the Emission of the host state's.
func emissionOf(e *abi.Emission) Emission {
	return Emission{Output: e.Output, Rows: e.Rows, Keys: e.Keys, Values: e.Values, Runs: e.Runs, Select: e.Select, ByRow: e.ByRow}
}

var _ Runtime = (*Engine)(nil)
