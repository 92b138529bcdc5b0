//go:build !wasmer

package isolate

import (
	"context"
	"fmt"
	"io"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// haveWasmer: this binary was built without -tags wasmer.
const haveWasmer = false

const wasmerReserve = 0

func newWasmer(context.Context, wasm.Limits, io.Writer) (wasm.Runtime, error) {
	return nil, fmt.Errorf("%w: this binary was built without -tags wasmer", cove.ErrInvalid)
}
