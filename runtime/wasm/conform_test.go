package wasm_test

import (
	"context"

	"github.com/covedata/cove/internal/guestbuild"
	"testing"

	"github.com/covedata/cove/runtime/testdata/conform/suite"
)

// TestConformanceGo runs the ABI conformance suite on the Go guest.
func TestConformanceGo(t *testing.T) {
	suite.Run(t, newEngine(t, testConfig()), guestAt(t, "../testdata/conform/goguest"))
}

// TestConformanceC runs the ABI conformance suite on the C guest.
func TestConformanceC(t *testing.T) {
	suite.Run(t, newEngine(t, testConfig()), cGuest(t))
}

func cGuest(t *testing.T) []byte {
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
