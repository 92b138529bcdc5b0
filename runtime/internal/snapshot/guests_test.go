package snapshot

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/internal/abi"
)

// guest is a real guest module of the repository.
type guest struct {
	name  string
	build func(t testing.TB) []byte
}

func readGuest(path string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func goGuest(dir string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		if testing.Short() {
			t.Skip("builds a Go guest")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b, err := guestbuild.Cached(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func cGuest(src string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		ctx := context.Background()
		if err := guestbuild.HaveC(ctx); err != nil {
			t.Skip(err)
		}
		b, err := guestbuild.BuildC(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

var guests = []guest{
	{"example go", readGuest("../../../examples/airquality/job.wasm")},
	{"example c", readGuest("../../../examples/c/airquality/job.wasm")},
	{"conform go", goGuest("../../testdata/conform/goguest")},
	{"conform c", cGuest("../../testdata/conform/c/conform.c")},
	{"conform c lazy", cGuest("../../testdata/conform/c/conform_lazy.c")},
}

// guestRuntime is a runtime with WASI and a module "cove" whose functions
// (those bin imports) return zeros.
func guestRuntime(t testing.TB, bin []byte) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := newRuntime(t)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	c := compile(t, rt, bin)
	defer c.Close(ctx)
	b := rt.NewHostModuleBuilder(abi.Module)
	for _, f := range c.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod == abi.Module {
			results := len(f.ResultTypes())
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				clear(stack[:results])
			}), f.ParamTypes(), f.ResultTypes()).Export(name)
		}
	}
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestGuests instruments the repository's real guests: they compile,
// initialize and answer cove_abi_version; after a snapshot, an allocation
// and a Restore with the globals set back, the guest allocates at the same
// address again.
func TestGuests(t *testing.T) {
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			bin := g.build(t)
			mod := instrument(t, bin, 256)
			rt := guestRuntime(t, bin)
			o, in := instantiate(t, rt, compile(t, rt, bin)), instantiate(t, rt, compile(t, rt, mod.Wasm))
			for _, m := range []api.Module{o, in} {
				if m.ExportedFunction(abi.ExportInitialize) != nil {
					if r := call(t, m, abi.ExportInitialize); r.trap {
						t.Fatal("_initialize trapped")
					}
				}
				if r := call(t, m, abi.ExportVersion); r.trap || r.results[0] != abi.Version {
					t.Fatalf("cove_abi_version = %v", r)
				}
				if m.ExportedFunction(abi.ExportFeatures) != nil {
					if r := call(t, m, abi.ExportFeatures, uint64(abi.HostFeatures)); r.trap {
						t.Fatal("cove_features trapped")
					}
				}
			}
			mem := memory(t, in)
			snap := Take(mem, mod.Layout)
			saved := globals(t, in, mod)
			var ptrs []string
			for range 3 {
				p := call(t, in, abi.ExportAlloc, 1000)
				if p.trap {
					t.Fatal("cove_alloc trapped")
				}
				ptrs = append(ptrs, p.String())
				if n := Restore(mem, snap, mod.Layout); n == 0 {
					t.Error("cove_alloc dirtied nothing")
				}
				setGlobals(t, in, mod, saved)
				if !slices.Equal(mem[:mod.Layout.GuestBytes], snap) {
					t.Fatal("memory differs from the snapshot after Restore")
				}
			}
			if ptrs[0] != ptrs[1] || ptrs[1] != ptrs[2] {
				t.Errorf("cove_alloc from the same snapshot returned %v", ptrs)
			}
			t.Logf("%d → %d bytes; %d restorable globals", len(bin), len(mod.Wasm), len(mod.Globals))
		})
	}
}
