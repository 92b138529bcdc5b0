package wasm_test

import (
	"testing"

	groupsuite "github.com/covedata/cove/runtime/testdata/groups/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// TestGroups runs the attacks on per-unit and block modes and on the
// planning call (runtime/testdata/groups/suite) in process.
func TestGroups(t *testing.T) {
	groupsuite.RunAll(t, func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) })
}

// TestGroupsConformance runs the ABI conformance program per group on the
// Go and C guests: each group gives the program's reference on its rows.
func TestGroupsConformance(t *testing.T) {
	for _, g := range conformGuests {
		t.Run(g.Name, func(t *testing.T) { groupsuite.Conform(t, newEngine(t, testConfig()), g.Build(t)) })
	}
}
