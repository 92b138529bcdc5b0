package examples_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// testHost is a minimal Cove host for the committed example modules: the
// imports they use, the planning call and single batch calls, each on a
// fresh instance (which is what the host's snapshot restore gives a guest
// in unit and block modes). It checks less than runtime/ does; it exists so
// that the examples' tests need nothing of the runtime under construction.
type testHost struct {
	rt      wazero.Runtime
	mod     wazero.CompiledModule
	outputs []string

	mu   sync.Mutex
	call *hostCall // the call in progress
}

// hostCall is what one guest call handed the host.
type hostCall struct {
	planning bool
	plan     []byte
	keys     []string
	emits    []emission
	results  map[string][]float64
	rows     uint32
	failure  string
}

type emission struct {
	output string
	row    uint32
	key    string
	value  float64
}

// guestPages is the guest-visible memory of unit and block modes (16 MiB,
// the manifests' guest.memory_mib).
const guestPages = 256

func newTestHost(t *testing.T, module []byte, outputs []string) *testHost {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(guestPages))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	h := &testHost{rt: rt, outputs: outputs}
	mem := func(m api.Module, ptr, n uint32) []byte {
		b, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic("guest memory out of range")
		}
		return b
	}
	refuse := func(msg string) { panic("cove test host: " + msg) }
	c := func(planningOK bool, name string) *hostCall {
		if h.call == nil {
			refuse(name + " outside a call")
		}
		if h.call.planning && !planningOK {
			refuse(name + " during cove_plan")
		}
		return h.call
	}
	b := rt.NewHostModuleBuilder("cove")
	b.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, ptr, n uint32) uint32 {
		c(true, "output")
		name := string(mem(m, ptr, n))
		for i, o := range h.outputs {
			if o == name {
				return uint32(i)
			}
		}
		refuse("output " + name + " not declared")
		return 0
	}).Export("output")
	b.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, ptr, n uint32) uint32 {
		call := c(false, "key")
		k := string(mem(m, ptr, n))
		for i, have := range call.keys {
			if have == k {
				return uint32(i)
			}
		}
		call.keys = append(call.keys, k)
		return uint32(len(call.keys) - 1)
	}).Export("key")
	b.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, out, rows, keys, values, n uint32) {
		call := c(false, "emit")
		if int(out) >= len(h.outputs) {
			refuse("emit to an unknown output")
		}
		r, k, v := mem(m, rows, 4*n), mem(m, keys, 4*n), mem(m, values, 8*n)
		for j := range n {
			e := emission{output: h.outputs[out], row: binary.LittleEndian.Uint32(r[4*j:]),
				value: math.Float64frombits(binary.LittleEndian.Uint64(v[8*j:]))}
			id := binary.LittleEndian.Uint32(k[4*j:])
			if e.row >= call.rows || int(id) >= len(call.keys) {
				refuse("emit of a row or key that does not exist")
			}
			e.key = call.keys[id]
			call.emits = append(call.emits, e)
		}
	}).Export("emit")
	b.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, ptr, n uint32) {
		call := c(true, "plan")
		if !call.planning || call.plan != nil {
			refuse("plan outside cove_plan or twice")
		}
		call.plan = bytes.Clone(mem(m, ptr, n))
	}).Export("plan")
	b.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, out, ptr, n uint32) {
		call := c(false, "result")
		if int(out) >= len(h.outputs) || ptr%8 != 0 {
			refuse("result for an unknown output, or misaligned")
		}
		name := h.outputs[out]
		if _, dup := call.results[name]; dup {
			refuse("result twice for " + name)
		}
		raw := mem(m, ptr, 8*n)
		v := make([]float64, n)
		for j := range v {
			v[j] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*j:]))
		}
		call.results[name] = v
	}).Export("result")
	// The kernels and lazy columns: the Go examples import some, and none
	// of these tests needs them.
	for _, name := range []string{"k_filter", "k_bucket", "k_emit", "k_select", "k_len", "k_read", "column"} {
		params, results := kernelSignature(name)
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			refuse(name + " is not implemented by the examples' test host")
		}), params, results).Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.CompileModule(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	h.mod = mod
	return h
}

// kernelSignature is the parameters and results of an import of
// docs/abi.md.
func kernelSignature(name string) (params, results []api.ValueType) {
	n := map[string]int{"k_filter": 5, "k_bucket": 3, "k_emit": 3, "k_select": 2, "k_len": 1, "k_read": 5, "column": 3}[name]
	for range n {
		params = append(params, api.ValueTypeI32)
	}
	if name != "k_emit" && name != "column" {
		results = []api.ValueType{api.ValueTypeI32}
	}
	return params, results
}

// run instantiates the module afresh and calls export (cove_batch or
// cove_plan) on region. A trap or nonzero return is call.failure.
func (h *testHost) run(t *testing.T, export string, region []byte, rows uint32) *hostCall {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx := context.Background()
	call := &hostCall{planning: export == "cove_plan", rows: rows, results: map[string][]float64{}}
	h.call = call
	defer func() { h.call = nil }()
	m, err := h.rt.InstantiateModule(ctx, h.mod, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if v, err := m.ExportedFunction("cove_abi_version").Call(ctx); err != nil || v[0] != 1 {
		t.Fatalf("cove_abi_version = %v, %v", v, err)
	}
	ptr, err := m.ExportedFunction("cove_alloc").Call(ctx, uint64(len(region)))
	if err != nil || ptr[0] == 0 || ptr[0]%8 != 0 {
		t.Fatalf("cove_alloc = %v, %v", ptr, err)
	}
	if !m.Memory().Write(uint32(ptr[0]), region) {
		t.Fatal("region outside memory")
	}
	fn := m.ExportedFunction(export)
	if fn == nil {
		t.Fatalf("the module does not export %s", export)
	}
	rc, err := fn.Call(ctx, ptr[0], uint64(len(region)))
	switch {
	case err != nil:
		call.failure = err.Error()
	case rc[0] != 0:
		call.failure = export + " returned nonzero"
	}
	return call
}

// column is one column of a region the test host writes.
type column struct {
	name   string
	typ    uint32 // ABI type code: 1 int64, 3 float64, 4 utf8
	ints   []int64
	floats []float64
	strs   []string
	valid  []bool // nil: no nulls
}

func (c column) len() int { return max(len(c.ints), len(c.floats), len(c.strs)) }

// slice is rows [from, to) of c.
func (c column) slice(from, to int) column {
	s := column{name: c.name, typ: c.typ}
	switch c.typ {
	case 1:
		s.ints = c.ints[from:to]
	case 3:
		s.floats = c.floats[from:to]
	case 4:
		s.strs = c.strs[from:to]
	}
	if c.valid != nil {
		s.valid = c.valid[from:to]
	}
	return s
}

// region lays columns out as an eager batch region (docs/abi.md, "Batch
// region"); schema is true for the planning call's schema region: no rows,
// every buffer empty.
func region(cols []column, schema bool) ([]byte, uint32) {
	rows := 0
	if len(cols) > 0 && !schema {
		rows = cols[0].len()
	}
	pad := func(b *bytes.Buffer) {
		for b.Len()%8 != 0 {
			b.WriteByte(0)
		}
	}
	var body bytes.Buffer
	body.Write(make([]byte, 16+32*len(cols)))
	desc := make([][8]uint32, len(cols))
	for i, c := range cols {
		d := &desc[i]
		d[0], d[1], d[2] = uint32(body.Len()), uint32(len(c.name)), c.typ
		body.WriteString(c.name)
		pad(&body)
		if schema {
			continue
		}
		if c.valid != nil {
			d[3] = uint32(body.Len())
			bits := make([]byte, (rows+7)/8)
			for r, ok := range c.valid {
				if ok {
					bits[r/8] |= 1 << (r % 8)
				}
			}
			body.Write(bits)
			pad(&body)
		}
		d[4] = uint32(body.Len())
		switch c.typ {
		case 1:
			for _, v := range c.ints {
				body.Write(binary.LittleEndian.AppendUint64(nil, uint64(v)))
			}
		case 3:
			for _, v := range c.floats {
				body.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)))
			}
		case 4:
			off := uint32(0)
			for _, s := range c.strs {
				body.Write(binary.LittleEndian.AppendUint32(nil, off))
				off += uint32(len(s))
			}
			body.Write(binary.LittleEndian.AppendUint32(nil, off))
		}
		d[5] = uint32(body.Len()) - d[4]
		pad(&body)
		if c.typ == 4 {
			d[6] = uint32(body.Len())
			body.WriteString(strings.Join(c.strs, ""))
			d[7] = uint32(body.Len()) - d[6]
			pad(&body)
		}
	}
	out := body.Bytes()
	binary.LittleEndian.PutUint32(out[0:], 1)
	binary.LittleEndian.PutUint32(out[4:], uint32(rows))
	binary.LittleEndian.PutUint32(out[8:], uint32(len(cols)))
	binary.LittleEndian.PutUint32(out[12:], uint32(len(out)))
	for i, d := range desc {
		for k, v := range d {
			binary.LittleEndian.PutUint32(out[16+32*i+4*k:], v)
		}
	}
	return out, uint32(rows)
}
