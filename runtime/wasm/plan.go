package wasm

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tetratelabs/wazero/api"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
)

// ErrNoPlanExport is wrapped by Plan's error for a module without
// cove_plan: the plan must then come from elsewhere (the manifest).
var ErrNoPlanExport = fmt.Errorf("%w: module has no %s export (no planning call)", cove.ErrInvalid, abi.ExportPlan)

// EmptyRecord is a record of schema with no rows: what a schema region
// encodes. The caller releases it.
func EmptyRecord(schema *arrow.Schema) (arrow.RecordBatch, error) {
	mem := memory.NewGoAllocator()
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, f := range schema.Fields() {
		if _, ok := abi.TypeCode(f.Type); !ok {
			return nil, fmt.Errorf("%w: %v", cove.ErrInvalid, &abi.Unsupported{Column: f.Name, Type: f.Type.String()})
		}
		b := array.NewBuilder(mem, f.Type)
		cols = append(cols, b.NewArray())
		b.Release()
	}
	return array.NewRecordBatch(schema, cols, 0), nil
}

// Plan makes the planning call in a fresh instance of m.
func (m *module) Plan(ctx context.Context, schema *arrow.Schema, outputs []string) ([]byte, error) {
	if _, ok := m.compiled.ExportedFunctions()[abi.ExportPlan]; !ok {
		return nil, ErrNoPlanExport
	}
	rec, err := EmptyRecord(schema)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	inst, err := m.Instantiate(ctx, outputs)
	if err != nil {
		return nil, err
	}
	i := inst.(*instance)
	defer i.Close(ctx)
	ctx, cancel := i.bound(ctx)
	defer cancel()
	return i.plan(ctx, rec)
}

// plan hands the guest the schema region of rec (no rows) and calls
// cove_plan, during which only output and plan answer.
func (i *instance) plan(ctx context.Context, rec arrow.RecordBatch) ([]byte, error) {
	encode, size, err := abi.Encode, int64(0), error(nil)
	if i.lazy {
		encode = abi.EncodeLazy
		size, err = abi.LazyRegionSize(rec)
	} else {
		size, err = abi.RegionSize(rec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: schema: %v", cove.ErrInvalid, err)
	}
	callCtx := context.WithValue(ctx, stateKey{}, i.state)
	i.state.BeginPlan()
	res, err := i.alloc.Call(callCtx, api.EncodeU32(uint32(size)))
	if err != nil {
		return nil, i.classify(ctx, "plan", err)
	}
	ptr := api.DecodeU32(res[0])
	region, ok := i.mod.Memory().Read(ptr, uint32(size))
	if ptr == 0 || ptr%abi.Align != 0 || !ok {
		return nil, newGuestError(KindABI, "plan", fmt.Sprintf("guest broke the ABI: %s returned no usable region of %d bytes", abi.ExportAlloc, size))
	}
	if err := encode(region, rec); err != nil {
		return nil, fmt.Errorf("wasm: encode schema: %w", err)
	}
	res, err = i.mod.ExportedFunction(abi.ExportPlan).Call(callCtx, api.EncodeU32(ptr), api.EncodeU32(uint32(size)))
	plan, planned := i.state.EndPlan()
	if err != nil {
		return nil, i.classify(ctx, "plan", err)
	}
	return planResult(api.DecodeU32(res[0]), plan, planned, i.m.e.cfg.debug != nil)
}

// planResult is the outcome of a planning call that returned rc.
func planResult(rc uint32, plan []byte, planned, debug bool) ([]byte, error) {
	if rc != 0 {
		if debug {
			return nil, newGuestError(KindFailed, "plan", fmt.Sprintf("guest reported an error (code %d)", rc))
		}
		return nil, newGuestError(KindFailed, "plan", "guest reported an error")
	}
	if !planned {
		return nil, newGuestError(KindABI, "plan", "guest broke the ABI: cove_plan returned without handing a plan (import plan)")
	}
	return plan, nil
}
