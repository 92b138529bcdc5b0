//go:build wasmer

package wasmer

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/wasm"
)

// InstantiateGroups refuses: per-unit and block modes stop a group that
// runs past its CPU limit and go on with the next, and wasmer cannot
// interrupt a guest.
func (m *module) InstantiateGroups(context.Context, []string, wasm.GroupConfig) (wasm.GroupInstance, error) {
	return nil, fmt.Errorf("%w: per-unit and block modes need an engine that can interrupt a guest; use wazero", cove.ErrInvalid)
}

// Plan makes the planning call in a fresh instance of m: the guest's
// cove_plan gets a schema region of schema (no rows) and hands the plan
// through import plan; only output and plan answer during the call.
func (m *module) Plan(ctx context.Context, schema *arrow.Schema, outputs []string) ([]byte, error) {
	has := false
	for _, ex := range m.mod.Exports() {
		has = has || ex.Name() == abi.ExportPlan
	}
	if !has {
		return nil, wasm.ErrNoPlanExport
	}
	rec, err := wasm.EmptyRecord(schema)
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
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.plan(ctx, rec)
}

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
	f, err := i.inst.Exports.GetFunction(abi.ExportPlan)
	if err != nil {
		return nil, wasm.ErrNoPlanExport
	}
	i.state.BeginPlan()
	res, err := i.call(ctx, i.alloc, int32(uint32(size)))
	if err != nil {
		i.state.EndPlan()
		return nil, i.classify(ctx, "plan", err)
	}
	p, _ := res.(int32)
	ptr := uint32(p)
	mem := i.mem.Data()
	if ptr == 0 || ptr%abi.Align != 0 || uint64(ptr)+uint64(size) > uint64(len(mem)) {
		i.state.EndPlan()
		return nil, wasm.NewGuestError(wasm.KindABI, "plan", fmt.Sprintf("guest broke the ABI: %s returned no usable region of %d bytes", abi.ExportAlloc, size))
	}
	if err := encode(mem[ptr:uint64(ptr)+uint64(size)], rec); err != nil {
		i.state.EndPlan()
		return nil, fmt.Errorf("wasmer: encode schema: %w", err)
	}
	res, err = i.call(ctx, f, int32(ptr), int32(uint32(size)))
	plan, planned := i.state.EndPlan()
	if err != nil {
		return nil, i.classify(ctx, "plan", err)
	}
	if rc, _ := res.(int32); rc != 0 {
		if i.m.e.debug != nil {
			return nil, wasm.NewGuestError(wasm.KindFailed, "plan", fmt.Sprintf("guest reported an error (code %d)", rc))
		}
		return nil, wasm.NewGuestError(wasm.KindFailed, "plan", "guest reported an error")
	}
	if !planned {
		return nil, wasm.NewGuestError(wasm.KindABI, "plan", "guest broke the ABI: cove_plan returned without handing a plan (import plan)")
	}
	return plan, nil
}
