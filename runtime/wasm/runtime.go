package wasm

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
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
	// Close releases the compiled code.
	Close(ctx context.Context) error
}

// Instance is one running guest with its memory, interned keys and emit
// count. Its methods must not be called concurrently (they serialize).
// After any failure the instance is closed and refuses further batches.
type Instance interface {
	// ProcessBatch hands rec to the guest, which emits contributions through
	// emit. rec's columns are sent as they are: project first. An error from
	// emit stops the guest and is returned unchanged. Any failure closes the
	// instance: a caller must then drop every emission the instance made.
	ProcessBatch(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error
	// KeyName returns the key interned as id ("" if none). Keys are derived
	// from data: they belong to the enclave, like the values.
	KeyName(id uint32) string
	// Emits is the number of contributions the instance has emitted.
	Emits() int64
	// Close ends the instance.
	Close(ctx context.Context) error
}

// Emission is one batch of contributions: contribution j adds Values[j] to
// key Keys[j] of output Output (an index into Instantiate's outputs), on
// behalf of the privacy unit of row Rows[j] of the batch. The host made the
// rows and checked them against the batch, whether the guest listed them
// (import emit) or a host kernel did (import k_emit). The slices are views
// valid only during the callback; copy what you keep.
type Emission struct {
	Output int
	Rows   []uint32
	Keys   []uint32
	Values []float64
}

var _ Runtime = (*Engine)(nil)
