package wasm_test

import (
	"testing"

	"github.com/covedata/cove/runtime/testdata/conform/suite"
)

// TestConformanceGo runs the ABI conformance suite on the Go guest.
func TestConformanceGo(t *testing.T) {
	suite.Run(t, newEngine(t, testConfig()), guestAt(t, "../testdata/conform/goguest"))
}
