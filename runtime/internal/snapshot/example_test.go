package snapshot_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/covedata/cove/runtime/internal/snapshot"
)

// A guest restored before every unit: whatever a unit writes, the next
// starts from the snapshot, and restoring costs what the unit dirtied.
func Example() {
	ctx := context.Background()
	wasm, err := os.ReadFile("testdata/loop.wasm")
	if err != nil {
		panic(err)
	}
	m, err := snapshot.Instrument(wasm, 16) // a 1 MiB guest
	if err != nil {
		panic(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	inst, err := rt.Instantiate(ctx, m.Wasm)
	if err != nil {
		panic(err)
	}
	mem, _ := inst.Memory().Read(0, inst.Memory().Size()) // never moves: memory never grows

	// After initialization: the snapshot, and the globals' values.
	snap := snapshot.Take(mem, m.Layout)
	saved := make([]uint64, len(m.Globals))
	for i, g := range m.Globals {
		saved[i] = inst.ExportedGlobal(g.Name).Get()
	}

	for unit, n := range []uint64{100, 5000, 0} {
		if _, err := inst.ExportedFunction("fill").Call(ctx, 8192, n); err != nil {
			panic(err)
		}
		pages := snapshot.Restore(mem, snap, m.Layout)
		for i, g := range m.Globals {
			inst.ExportedGlobal(g.Name).(api.MutableGlobal).Set(saved[i])
		}
		fmt.Printf("unit %d wrote %d bytes: restored %d pages\n", unit, n, pages)
	}

	// A store past the guest's memory traps before it writes.
	_, err = inst.ExportedFunction("fill").Call(ctx, uint64(m.Layout.MapOffset), 1)
	fmt.Println("write into the map:", err != nil)
	// Output:
	// unit 0 wrote 100 bytes: restored 1 pages
	// unit 1 wrote 5000 bytes: restored 2 pages
	// unit 2 wrote 0 bytes: restored 0 pages
	// write into the map: true
}
