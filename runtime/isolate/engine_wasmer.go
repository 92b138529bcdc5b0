//go:build wasmer

package isolate

import (
	"context"
	"io"

	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/runtime/wasmer"
)

// haveWasmer: this binary was built with -tags wasmer.
const haveWasmer = true

// wasmerReserve is the address space wasmer reserves per linear memory
// (a 4 GiB static memory and its 2 GiB guard), added to RLIMIT_AS.
const wasmerReserve = wasmer.AddressSpacePerMemory

func newWasmer(ctx context.Context, l wasm.Limits, debug io.Writer) (wasm.Runtime, error) {
	return wasmer.NewEngineDebug(ctx, l, debug)
}
