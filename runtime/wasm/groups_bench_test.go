package wasm_test

import (
	"testing"

	groupsuite "github.com/covedata/cove/runtime/testdata/groups/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// BenchmarkGroups is the cost of a unit in per-unit mode, in process:
// µs per unit, restore and call (runtime/testdata/groups/suite.Bench).
func BenchmarkGroups(b *testing.B) {
	groupsuite.Bench(b, func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) })
}
