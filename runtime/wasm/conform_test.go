package wasm_test

import (
	"context"
	"testing"

	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// TestConformance runs the ABI conformance suite on every in-process engine
// (wazero always, wasmer with -tags wasmer) with the Go and the C guest.
func TestConformance(t *testing.T) {
	engines := []suite.Engine{{Name: "wazero", New: func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) }}, wasmerEngine}
	suite.RunMatrix(t, engines, conformGuests)
}

// conformGuests are the builds of the conformance program.
var conformGuests = []suite.Guest{
	{Name: "go", Build: func(t testing.TB) []byte { return guestAt(t, "../testdata/conform/goguest") }},
	{Name: "c", Build: cGuest},
}

func cGuest(t testing.TB) []byte {
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	bin, err := guestbuild.BuildC(ctx, "../testdata/conform/c/conform.c")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
