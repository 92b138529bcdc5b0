package isolate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/covedata/cove"
	groupsuite "github.com/covedata/cove/runtime/testdata/groups/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// TestGroups runs the attacks on per-unit and block modes and on the
// planning call (runtime/testdata/groups/suite) through sandboxes: the
// sandbox runs the loop over groups, the parent checks what comes back.
func TestGroups(t *testing.T) {
	groupsuite.RunAll(t, func(t testing.TB) wasm.Runtime { return newEngine(t, groupsConfig()) })
}

// groupsConfig is testConfig with, under -race, room for the race
// detector: a race-instrumented sandbox maps shadow memory beside what it
// allocates, so a guest's deep recursion (its stack grown to wazero's
// limit) or the compile of an instrumented Go guest outgrows the address
// space that fits a plain one.
func groupsConfig() Config {
	cfg := testConfig()
	if raceEnabled {
		cfg.asSlack = 64 << 30
	}
	return cfg
}

// TestGroupsWasmer: sandboxes on wasmer make the planning call and refuse
// per-unit and block instances (wasmer cannot stop a group).
func TestGroupsWasmer(t *testing.T) {
	if !haveWasmer {
		t.Skip("the wasmer engine needs -tags wasmer (and cgo)")
	}
	newRT := func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig().WithEngine(EngineWasmer)) }
	groupsuite.Plan(t, newRT)
	ctx := context.Background()
	m, err := newRT(t).Compile(ctx, groupsuite.WATFile(t, "leaky"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.InstantiateGroups(ctx, []string{"out"}, wasm.NewGroupConfig()); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
}

// TestGroupsCallTree: a loop-free call tree, which wazero can stop only at
// loop heads, is stopped at the per-group CPU limit like a loop (the
// rewrite puts an empty loop at every function's entry): only its group
// fails, the run goes on. (The watchdog's SIGKILL stays the backstop of
// every exchange: the hostile corpus.)
func TestGroupsCallTree(t *testing.T) {
	e := newEngine(t, testConfig().WithGrace(300*time.Millisecond))
	ctx := context.Background()
	m, err := e.Compile(ctx, groupsuite.WATFile(t, "leaky"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.InstantiateGroups(ctx, []string{"out"}, wasm.NewGroupConfig().WithMemoryPages(16).WithCPULimit(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)
	rec, bounds := groupsuite.Record([][]int64{{1}, {8 << 32}, {3}})
	defer rec.Release()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	sink := groupsuite.NewSink(t, g.KeyName, bounds)
	if err := g.RunGroups(rctx, rec, bounds, sink); err != nil {
		t.Fatalf("a call tree in one group ended the run: %v", err)
	}
	took := time.Since(start)
	if sink.Res[1] == nil || !sink.Res[1].Failed || sink.Res[0] == nil || sink.Res[0].Failed || sink.Res[2] == nil || sink.Res[2].Failed {
		t.Fatalf("results %v: want group 1 failed, groups 0 and 2 given", sink.Res)
	}
	t.Logf("the call tree's group failed; the run took %v (CPU limit 50 ms)", took)
}

// BenchmarkGroups is the cost of a unit in per-unit mode through a
// sandbox: the record goes through the pipe once per RunGroups, the
// sandbox runs the groups and streams back their contributions.
func BenchmarkGroups(b *testing.B) {
	groupsuite.Bench(b, func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) })
}

// TestGroupsConformance runs the ABI conformance program per group through
// sandboxes, on the Go and C guests.
func TestGroupsConformance(t *testing.T) {
	for _, g := range []struct {
		name string
		bin  func(testing.TB) []byte
	}{
		{"go", func(t testing.TB) []byte { return goGuest(t, "../testdata/conform/goguest") }},
		{"c", func(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform.c") }},
	} {
		t.Run(g.name, func(t *testing.T) { groupsuite.Conform(t, newEngine(t, groupsConfig()), g.bin(t)) })
	}
}
