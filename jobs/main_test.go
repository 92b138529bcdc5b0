package jobs

import (
	"os"
	"testing"

	"github.com/covedata/cove/runtime/isolate"
)

// TestMain lets this test binary serve as the guests' sandbox process.
func TestMain(m *testing.M) {
	isolate.ServeIfChild()
	os.Exit(m.Run())
}
