package main

import (
	"os"
	"testing"

	"github.com/covedata/cove/runtime/isolate"
)

// TestMain lets this test binary serve as the guests' sandbox process: the
// ledger command test runs the demo.
func TestMain(m *testing.M) {
	isolate.ServeIfChild()
	os.Exit(m.Run())
}
