//go:build wasmer

package wasmer

import (
	"errors"
	"slices"

	wasmer "github.com/wasmerio/wasmer-go/wasmer"

	"github.com/covedata/cove/runtime/internal/abi"
)

var (
	// errHostCall stops the guest when abi.State refused a host call; the
	// reason is in the state's Failure.
	errHostCall = errors.New("cove host call refused")
	// errStopped stops the guest at a host call once its context is done.
	errStopped = errors.New("cove guest stopped")
	// errExit stops the guest at proc_exit.
	errExit = errors.New("cove guest exited")
)

// implemented are the imports of module "cove" this engine defines (its
// tests check that they are all of abi.Imports).
var implemented = map[string]bool{
	abi.ImportOutput: true, abi.ImportKey: true, abi.ImportEmit: true, abi.ImportKFilter: true, abi.ImportKBucket: true,
	abi.ImportKEmit: true, abi.ImportKSelect: true, abi.ImportKLen: true, abi.ImportKRead: true,
	abi.ImportColumn: true, abi.ImportPlan: true, abi.ImportResult: true,
}

// hostFunc is a host function: it gets the arguments as u64 (i32 and i64
// alike) and returns the results, or an error that stops the guest.
type hostFunc func(args []uint64) ([]uint64, error)

// define wraps f as a wasmer function of the given type. Every host call
// first checks the running call's context: wasmer cannot interrupt a guest,
// so this is where a guest that calls the host notices its deadline.
func (i *instance) define(params, results []wasmer.ValueKind, f hostFunc) *wasmer.Function {
	ty := wasmer.NewFunctionType(wasmer.NewValueTypes(params...), wasmer.NewValueTypes(results...))
	store := i.m.e.store
	return wasmer.NewFunction(store, ty, func(in []wasmer.Value) ([]wasmer.Value, error) {
		if ctx := i.ctx; ctx != nil {
			if err := ctx.Err(); err != nil {
				i.stop = err
				return nil, errStopped
			}
		}
		args := make([]uint64, len(in))
		for k := range in {
			switch in[k].Kind() {
			case wasmer.I64:
				args[k] = uint64(in[k].I64())
			default:
				args[k] = uint64(uint32(in[k].I32()))
			}
		}
		res, err := f(args)
		if err != nil {
			return nil, err
		}
		out := make([]wasmer.Value, len(results))
		for k, kind := range results {
			if kind == wasmer.I64 {
				out[k] = wasmer.NewI64(int64(res[k]))
			} else {
				out[k] = wasmer.NewI32(int32(uint32(res[k])))
			}
		}
		return out, nil
	})
}

// memory is the guest's whole linear memory, read fresh on every call since
// a guest may grow (and so move) it; nil before the instance exists.
func (i *instance) memory() []byte {
	if i.mem == nil {
		return nil
	}
	return i.mem.Data()
}

// imports builds the instance's import object: module "cove" on abi.State
// (the same checks as the wazero engine) and the sandboxed WASI subset.
func (i *instance) imports() *wasmer.ImportObject {
	st := i.state
	u := func(v uint64) uint32 { return uint32(v) }
	stop := func(err error) error {
		if err != nil {
			return errHostCall
		}
		return nil
	}
	one := func(v uint32, err error) ([]uint64, error) {
		if err != nil {
			return nil, errHostCall
		}
		return []uint64{uint64(v)}, nil
	}
	cove := map[string]hostFunc{
		abi.ImportOutput: func(a []uint64) ([]uint64, error) { return one(st.Output(i.memory(), u(a[0]), u(a[1]))) },
		abi.ImportKey:    func(a []uint64) ([]uint64, error) { return one(st.Key(i.memory(), u(a[0]), u(a[1]))) },
		abi.ImportEmit: func(a []uint64) ([]uint64, error) {
			return nil, stop(st.Emit(i.memory(), u(a[0]), u(a[1]), u(a[2]), u(a[3]), u(a[4])))
		},
		abi.ImportKFilter: func(a []uint64) ([]uint64, error) {
			return one(st.KFilter(i.memory(), u(a[0]), u(a[1]), u(a[2]), u(a[3]), u(a[4])))
		},
		abi.ImportKBucket: func(a []uint64) ([]uint64, error) {
			return one(st.KBucket(i.memory(), u(a[0]), u(a[1]), u(a[2])))
		},
		abi.ImportKEmit: func(a []uint64) ([]uint64, error) { return nil, stop(st.KEmit(u(a[0]), u(a[1]), u(a[2]))) },
		abi.ImportKSelect: func(a []uint64) ([]uint64, error) {
			return one(st.KSelect(i.memory(), u(a[0]), u(a[1])))
		},
		abi.ImportKLen: func(a []uint64) ([]uint64, error) { return one(st.KLen(u(a[0]))) },
		abi.ImportKRead: func(a []uint64) ([]uint64, error) {
			return one(st.KRead(i.memory(), u(a[0]), u(a[1]), u(a[2]), u(a[3]), u(a[4])))
		},
		// Lazy columns (docs/abi.md), offered through cove_features as on wazero.
		abi.ImportColumn: func(a []uint64) ([]uint64, error) {
			return nil, stop(st.Column(i.memory(), u(a[0]), u(a[1]), u(a[2])))
		},
		// The planning call (Module.Plan); result answers in block mode
		// only, which this engine does not run, so it is always refused.
		abi.ImportPlan: func(a []uint64) ([]uint64, error) { return nil, stop(st.Plan(i.memory(), u(a[0]), u(a[1]))) },
		abi.ImportResult: func(a []uint64) ([]uint64, error) {
			return nil, stop(st.Result(i.memory(), u(a[0]), u(a[1]), u(a[2])))
		},
	}
	// Only what the module imports is defined: wasmer-go keeps every host
	// function it is given for the life of the process.
	want := map[string]map[string]bool{}
	for _, imp := range i.m.mod.Imports() {
		if want[imp.Module()] == nil {
			want[imp.Module()] = map[string]bool{}
		}
		want[imp.Module()][imp.Name()] = true
	}
	obj := wasmer.NewImportObject()
	ns := map[string]wasmer.IntoExtern{}
	for name, f := range cove {
		if want[abi.Module][name] {
			s := abi.Imports[name]
			ns[name] = i.define(i32s(len(s.Params)), i32s(len(s.Results)), f)
		}
	}
	obj.Register(abi.Module, ns)
	ws := map[string]wasmer.IntoExtern{}
	for name, f := range i.wasiFuncs() {
		if want[abi.WASIModule][name] {
			s := wasiSigs[name]
			ws[name] = i.define(s.params, s.results, f)
		}
	}
	obj.Register(abi.WASIModule, ws)
	return obj
}

func i32s(n int) []wasmer.ValueKind { return slices.Repeat([]wasmer.ValueKind{wasmer.I32}, n) }
