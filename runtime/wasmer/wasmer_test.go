//go:build wasmer

package wasmer

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/wasm"
)

// TestImplementsEveryImport fails when ABI v1 gains a host call this engine
// does not define yet (Compile would refuse guests that import it).
func TestImplementsEveryImport(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(abi.Imports)) {
		if !implemented[name] {
			t.Errorf("abi import %q is not implemented by the wasmer engine", name)
		}
	}
	for name := range wasiSigs {
		if !abi.WASIAllowed[name] {
			t.Errorf("WASI function %q is defined but not allowed by the ABI", name)
		}
	}
	for name := range abi.WASIAllowed {
		if _, ok := wasiSigs[name]; !ok {
			t.Errorf("allowed WASI function %q is not defined", name)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, wasm.NewConfig().WithMaxModuleBytes(1<<10).Limits())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, tc := range []struct {
		name string
		bin  []byte
		want error
	}{
		{"too large", make([]byte, 2<<10), cove.ErrLimit},
		{"not wasm", []byte("#!/bin/sh\n"), cove.ErrInvalid},
		{"empty module: no exports", []byte("\x00asm\x01\x00\x00\x00"), cove.ErrInvalid},
	} {
		if _, err := e.Compile(ctx, tc.bin); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
