//go:build wasmer

package wasmer

import (
	"context"
	"errors"
	"testing"

	"github.com/covedata/cove"
	groupsuite "github.com/covedata/cove/runtime/testdata/groups/suite"
	"github.com/covedata/cove/runtime/wasm"
)

func newTestEngine(t testing.TB) wasm.Runtime {
	e, err := NewEngine(context.Background(), wasm.NewConfig().Limits())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// TestPlan runs the planning-call attacks of the groups suite on wasmer.
func TestPlan(t *testing.T) { groupsuite.Plan(t, newTestEngine) }

// TestGroupsRefused: wasmer cannot interrupt a guest, so it runs no
// per-unit or block instance.
func TestGroupsRefused(t *testing.T) {
	ctx := context.Background()
	m, err := newTestEngine(t).Compile(ctx, groupsuite.WATFile(t, "leaky"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if _, err := m.InstantiateGroups(ctx, []string{"out"}, wasm.NewGroupConfig()); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
}
