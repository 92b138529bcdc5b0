package snapshot

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// newRuntime is a wazero runtime with the standard features and tail calls
// (interpreter: compiling is the slow part of these tests).
func newRuntime(t testing.TB) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall))
	t.Cleanup(func() { _ = rt.Close(ctx) })
	return rt
}

var instances atomic.Int64

// compile compiles bin in rt.
func compile(t testing.TB, rt wazero.Runtime, bin []byte) wazero.CompiledModule {
	t.Helper()
	c, err := rt.CompileModule(context.Background(), bin)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// instantiate instantiates c in rt (without start functions).
func instantiate(t testing.TB, rt wazero.Runtime, c wazero.CompiledModule) api.Module {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("m%d", instances.Add(1))
	m, err := rt.InstantiateModule(ctx, c, wazero.NewModuleConfig().WithName(name).WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return m
}

// instrument is Instrument that must succeed.
func instrument(t testing.TB, bin []byte, pages uint32) *Module {
	t.Helper()
	m, err := Instrument(bin, pages)
	if err != nil {
		t.Fatalf("instrument: %v", err)
	}
	return m
}

// memory is the whole linear memory of m.
func memory(t testing.TB, m api.Module) []byte {
	t.Helper()
	b, ok := m.Memory().Read(0, m.Memory().Size())
	if !ok {
		t.Fatal("memory read")
	}
	return b
}

// dirty lists the pages whose map byte is set.
func dirty(mem []byte, l Layout) []int {
	var pages []int
	for i, c := range mem[l.MapOffset : l.MapOffset+l.MapLen] {
		if c != 0 {
			pages = append(pages, i)
		}
	}
	return pages
}

// outcome is a call's results, or its trap.
type outcome struct {
	results []uint64
	trap    bool
}

func (o outcome) String() string {
	if o.trap {
		return "trap"
	}
	return fmt.Sprint(o.results)
}

func call(t testing.TB, m api.Module, name string, args ...uint64) outcome {
	t.Helper()
	f := m.ExportedFunction(name)
	if f == nil {
		t.Fatalf("no export %q", name)
	}
	res, err := f.Call(context.Background(), args...)
	if err != nil {
		var ee interface{ ExitCode() uint32 }
		if errors.As(err, &ee) {
			t.Fatalf("%s exited: %v", name, err)
		}
		return outcome{trap: true}
	}
	return outcome{results: res}
}

// globals reads the restorable globals of an instance.
func globals(t testing.TB, m api.Module, mod *Module) []uint64 {
	t.Helper()
	v := make([]uint64, len(mod.Globals))
	for i, g := range mod.Globals {
		eg := m.ExportedGlobal(g.Name)
		if eg == nil {
			t.Fatalf("global %s not exported", g.Name)
		}
		if eg.Type() != api.ValueType(g.Type) {
			t.Fatalf("global %s has type %v, listed as %v", g.Name, eg.Type(), g.Type)
		}
		v[i] = eg.Get()
	}
	return v
}

// setGlobals sets the restorable globals back.
func setGlobals(t testing.TB, m api.Module, mod *Module, v []uint64) {
	t.Helper()
	for i, g := range mod.Globals {
		eg, ok := m.ExportedGlobal(g.Name).(api.MutableGlobal)
		if !ok {
			t.Fatalf("global %s is not mutable", g.Name)
		}
		eg.Set(v[i])
	}
}
