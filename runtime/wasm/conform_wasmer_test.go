//go:build wasmer

package wasm_test

import (
	"context"
	"testing"

	"github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/runtime/wasmer"
)

// wasmerEngine runs the conformance suite on wasmer, with the limits of the
// wazero runs.
var wasmerEngine = suite.Engine{Name: "wasmer", New: func(t testing.TB) wasm.Runtime {
	e, err := wasmer.NewEngine(context.Background(), testConfig().Limits())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}}
