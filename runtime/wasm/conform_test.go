package wasm_test

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/runtime/testdata/conform/suite"
	"github.com/covedata/cove/runtime/wasm"
)

// TestConformance runs the ABI conformance suite on every in-process engine
// (wazero always, wasmer with -tags wasmer) with the Go and the C guest.
func TestConformance(t *testing.T) {
	engines := []suite.Engine{{Name: "wazero", New: func(t testing.TB) wasm.Runtime { return newEngine(t, testConfig()) }}, wasmerEngine}
	suite.RunMatrix(t, engines, conformGuests)
}

// conformGuests are the builds of the conformance program.
var conformGuests = []suite.Guest{
	{Name: "go", Build: func(t testing.TB) []byte { return guestAt(t, "../testdata/conform/goguest") }},
	{Name: "c", Build: cGuest},
	{Name: "c-lazy", Build: cLazyGuest},
}

func cGuest(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform.c") }

// cLazyGuest is the C program built with COVE_LAZY_COLUMNS.
func cLazyGuest(t testing.TB) []byte { return cGuestAt(t, "../testdata/conform/c/conform_lazy.c") }

func cGuestAt(t testing.TB, src string) []byte {
	ctx := context.Background()
	if err := guestbuild.HaveC(ctx); err != nil {
		t.Skip(err)
	}
	bin, err := guestbuild.BuildC(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestCLazyColumns: with COVE_LAZY_COLUMNS, cove.h asks for lazy regions
// (export cove_features) and copies columns in (import cove.column);
// without it, neither.
func TestCLazyColumns(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, c := range []struct {
		name string
		bin  []byte
		lazy bool
	}{{"eager", cGuest(t), false}, {"lazy", cLazyGuest(t), true}} {
		m, err := rt.CompileModule(ctx, c.bin)
		if err != nil {
			t.Fatal(err)
		}
		imports := false
		for _, f := range m.ImportedFunctions() {
			if mod, name, _ := f.Import(); mod == "cove" && name == "column" {
				imports = true
			}
		}
		_, exports := m.ExportedFunctions()["cove_features"]
		if imports != c.lazy || exports != c.lazy {
			t.Errorf("%s: imports column %v, exports cove_features %v", c.name, imports, exports)
		}
	}
}
