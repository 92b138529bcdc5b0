package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
)

// Engine compiles and runs guest modules. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	rt      wazero.Runtime
	cache   wazero.CompilationCache
	debugMu sync.Mutex // serializes writes to cfg.debug

	// The runtime of per-unit and block instances (groups.go), made on
	// first use: its own WASI, which keeps no state and marks its writes.
	grtMu  sync.Mutex
	grt    wazero.Runtime
	closed bool
}

// NewEngine starts an engine: a wazero runtime with the memory limit,
// close-on-context-done, the optional compilation cache, the sandboxed WASI
// subset and the host module "cove".
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(cfg.memoryLimitPages)
	e := &Engine{cfg: cfg}
	if cfg.cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("%w: compilation cache: %v", cove.ErrInvalid, err)
		}
		e.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		_ = e.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate WASI: %w", err)
	}
	if err := e.instantiateHost(ctx); err != nil {
		_ = e.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate host module: %w", err)
	}
	return e, nil
}

// Close closes the engine and every module and instance it made.
func (e *Engine) Close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	e.grtMu.Lock()
	if e.grt != nil {
		err = errors.Join(err, e.grt.Close(ctx))
	}
	e.closed = true
	e.grtMu.Unlock()
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	return err
}

// stateKey carries the calling instance's abi.State to the host functions.
type stateKey struct{}

// instantiateHost defines module "cove" in e.rt.
func (e *Engine) instantiateHost(ctx context.Context) error { return defineHost(ctx, e.rt) }

// defineHost defines module "cove" in rt. Each function finds the calling
// instance's state in the context and, when the state refuses the call,
// panics to stop the guest; classify then reports the state's Failure.
func defineHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.Module)
	i32 := api.ValueTypeI32
	types := func(n int) []api.ValueType { return slices.Repeat([]api.ValueType{i32}, n) }
	def := func(name string, fn api.GoModuleFunc) {
		s := abi.Imports[name]
		b.NewFunctionBuilder().WithGoModuleFunction(fn, types(len(s.Params)), types(len(s.Results))).Export(name)
	}
	u := api.DecodeU32
	def(abi.ImportOutput, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		id, err := st.Output(memFor(m, st), u(stack[0]), u(stack[1]))
		stop(err)
		stack[0] = api.EncodeU32(id)
	})
	def(abi.ImportKey, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		id, err := st.Key(memFor(m, st), u(stack[0]), u(stack[1]))
		stop(err)
		stack[0] = api.EncodeU32(id)
	})
	def(abi.ImportEmit, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		stop(st.Emit(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2]), u(stack[3]), u(stack[4])))
	})
	def(abi.ImportKFilter, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		h, err := st.KFilter(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2]), u(stack[3]), u(stack[4]))
		stop(err)
		stack[0] = api.EncodeU32(h)
	})
	def(abi.ImportKBucket, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		h, err := st.KBucket(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2]))
		stop(err)
		stack[0] = api.EncodeU32(h)
	})
	def(abi.ImportKEmit, func(ctx context.Context, m api.Module, stack []uint64) {
		stop(stateOf(ctx).KEmit(u(stack[0]), u(stack[1]), u(stack[2])))
	})
	def(abi.ImportKSelect, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		h, err := st.KSelect(memFor(m, st), u(stack[0]), u(stack[1]))
		stop(err)
		stack[0] = api.EncodeU32(h)
	})
	def(abi.ImportKLen, func(ctx context.Context, m api.Module, stack []uint64) {
		n, err := stateOf(ctx).KLen(u(stack[0]))
		stop(err)
		stack[0] = api.EncodeU32(n)
	})
	def(abi.ImportKRead, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		n, err := st.KRead(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2]), u(stack[3]), u(stack[4]))
		stop(err)
		stack[0] = api.EncodeU32(n)
	})
	def(abi.ImportColumn, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		stop(st.Column(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2])))
	})
	def(abi.ImportPlan, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		stop(st.Plan(memFor(m, st), u(stack[0]), u(stack[1])))
	})
	def(abi.ImportResult, func(ctx context.Context, m api.Module, stack []uint64) {
		st := stateOf(ctx)
		stop(st.Result(memFor(m, st), u(stack[0]), u(stack[1]), u(stack[2])))
	})
	_, err := b.Instantiate(ctx)
	return err
}

func stateOf(ctx context.Context) *abi.State {
	st, _ := ctx.Value(stateKey{}).(*abi.State)
	if st == nil {
		panic(errHostCall) // called outside Instantiate/ProcessBatch: cannot happen for our instances
	}
	return st
}

var errHostCall = errors.New("cove host call refused")

// stop ends the guest call when the host refused it. The reason is already
// in the state's Failure.
func stop(err error) {
	if err != nil {
		panic(errHostCall)
	}
}

// memOf is the linear memory of m that host calls may see, read fresh on
// every call since a guest may grow (and so move) it: all of it, or the
// guest's first MemLimit bytes (per-unit and block modes, whose dirty map
// lies past them).
func memOf(m api.Module) []byte {
	mem := m.Memory()
	if mem == nil {
		return nil
	}
	b, _ := mem.Read(0, mem.Size())
	return b
}

// memFor is memOf limited by st.MemLimit.
func memFor(m api.Module, st *abi.State) []byte {
	b := memOf(m)
	if st.MemLimit != 0 && uint64(len(b)) > uint64(st.MemLimit) {
		b = b[:st.MemLimit:st.MemLimit]
	}
	return b
}

// module is a compiled guest module.
type module struct {
	e        *Engine
	compiled wazero.CompiledModule
	bin      []byte // the module as uploaded, for the rewrites of per-unit and block modes

	mu        sync.Mutex
	rewritten map[uint32]*rewritten // by guest pages (groups.go)
	closed    bool
}

// Compile checks and compiles a guest module. It refuses, with
// cove.ErrLimit, a module over the size limit and, with cove.ErrInvalid, a
// module that does not decode, imports anything outside ABI v1 (all
// offending imports are listed) or lacks an ABI v1 export.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (Module, error) {
	if len(wasm) > e.cfg.maxModuleBytes {
		return nil, fmt.Errorf("%w: module of %d bytes exceeds %d bytes", cove.ErrLimit, len(wasm), e.cfg.maxModuleBytes)
	}
	// Functions compile in parallel (a cache hit compiles nothing).
	compiled, err := e.rt.CompileModule(experimental.WithCompilationWorkers(ctx, e.cfg.workers()), wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: module does not compile: %v", cove.ErrInvalid, err)
	}
	if problems := check(compiled); len(problems) > 0 {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("%w: module breaks ABI v%d: %s", cove.ErrInvalid, abi.Version, strings.Join(problems, "; "))
	}
	return &module{e: e, compiled: compiled, bin: bytes.Clone(wasm)}, nil
}

// check lists everything in m's imports and exports that ABI v1 refuses.
func check(m wazero.CompiledModule) []string {
	var problems, forbidden []string
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch {
		case mod == abi.Module:
			want, ok := abi.Imports[name]
			if !ok {
				forbidden = append(forbidden, mod+"."+name)
			} else if !sameSig(want, f) {
				problems = append(problems, fmt.Sprintf("import %s.%s has the wrong signature", mod, name))
			}
		case mod == abi.WASIModule && abi.WASIAllowed[name]:
		default:
			forbidden = append(forbidden, mod+"."+name)
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		forbidden = append(forbidden, mod+"."+name+" (memory)")
	}
	if len(forbidden) > 0 {
		problems = append([]string{"forbidden imports: " + strings.Join(forbidden, ", ")}, problems...)
	}
	if _, ok := m.ExportedMemories()[abi.ExportMemory]; !ok {
		problems = append(problems, "no exported memory \"memory\"")
	}
	exports := m.ExportedFunctions()
	for _, name := range slices.Sorted(maps.Keys(abi.Exports)) {
		f, ok := exports[name]
		switch {
		case !ok:
			problems = append(problems, "no export "+name)
		case !sameSig(abi.Exports[name], f):
			problems = append(problems, "export "+name+" has the wrong signature")
		}
	}
	if f, ok := exports[abi.ExportInitialize]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		problems = append(problems, "export _initialize has the wrong signature")
	}
	for _, name := range slices.Sorted(maps.Keys(abi.OptionalExports)) {
		if f, ok := exports[name]; ok && !sameSig(abi.OptionalExports[name], f) {
			problems = append(problems, "export "+name+" has the wrong signature")
		}
	}
	return problems
}

func sameSig(want abi.Signature, f api.FunctionDefinition) bool {
	eq := func(a []abi.ValType, b []api.ValueType) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if api.ValueType(a[i]) != b[i] {
				return false
			}
		}
		return true
	}
	return eq(want.Params, f.ParamTypes()) && eq(want.Results, f.ResultTypes())
}

// Close releases the compiled code, the rewrites of per-unit and block
// modes included. Instances already made keep working.
func (m *module) Close(ctx context.Context) error {
	m.mu.Lock()
	rw := m.rewritten
	m.rewritten, m.closed = nil, true
	m.mu.Unlock()
	err := m.compiled.Close(ctx)
	for _, r := range rw {
		if r.compiled != nil {
			err = errors.Join(err, r.compiled.Close(ctx))
		}
	}
	return err
}

// instance is one running guest with its memory, interned keys and emit
// count.
type instance struct {
	m      *module
	mod    api.Module
	state  *abi.State
	alloc  api.Function
	batch  api.Function
	lazy   bool // the guest took abi.FeatureLazyColumns
	mu     sync.Mutex
	failed error
	end    time.Time // the instance's deadline (Config.WithDeadline)
}

// bound applies the instance's own deadline to ctx.
func (i *instance) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, i.end)
}

// Instantiate starts an instance of m that may emit to outputs (the
// manifest's outputs, in order: Emission.Output indexes them). It runs the
// guest's _initialize (its Go init functions) under ctx and checks the
// guest's ABI version.
func (m *module) Instantiate(ctx context.Context, outputs []string) (Instance, error) {
	e := m.e
	st := abi.NewState(abi.Limits{
		MaxEmits:         e.cfg.maxEmits,
		MaxKeyBytes:      e.cfg.maxKeyBytes,
		MaxKeys:          e.cfg.maxKeys,
		MaxKeyTotalBytes: DefaultMaxKeyTotalBytes,
	}, outputs)
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions(abi.ExportInitialize)
	// Not set, on purpose: no args, env, file system, preopens, stdin; the
	// clock stays wazero's fake one and random_get its deterministic source.
	if e.cfg.debug != nil {
		w := &debugWriter{e: e, left: DefaultMaxDebugBytes}
		mc = mc.WithStdout(w).WithStderr(w)
	} else {
		mc = mc.WithStdout(io.Discard).WithStderr(io.Discard)
	}
	i := &instance{m: m, state: st, end: time.Now().Add(e.cfg.deadline)}
	ctx, cancel := i.bound(ctx)
	defer cancel()
	callCtx := context.WithValue(ctx, stateKey{}, st)
	mod, err := e.rt.InstantiateModule(callCtx, m.compiled, mc)
	if err != nil {
		if mod != nil {
			_ = mod.Close(ctx)
		}
		// The engine closed the module: classify without its memory.
		return nil, e.classify(ctx, "initialize", st, nil, err)
	}
	i.mod = mod
	if mod.IsClosed() {
		return nil, newGuestError(KindExit, "initialize", "guest exited")
	}
	i.alloc = mod.ExportedFunction(abi.ExportAlloc)
	i.batch = mod.ExportedFunction(abi.ExportBatch)
	lazy, err := e.handshake(ctx, callCtx, mod, st)
	if err != nil {
		_ = mod.Close(ctx)
		return nil, err
	}
	i.lazy = lazy
	return i, nil
}

// handshake checks the guest's ABI version and negotiates its optional
// features (cove_abi_version, cove_features) after _initialize; it reports
// whether the guest took lazy columns. The caller closes mod on an error.
func (e *Engine) handshake(ctx, callCtx context.Context, mod api.Module, st *abi.State) (lazy bool, err error) {
	res, err := mod.ExportedFunction(abi.ExportVersion).Call(callCtx)
	if err != nil {
		return false, e.classify(ctx, "initialize", st, mod.Memory(), err)
	}
	if v := api.DecodeU32(res[0]); v != abi.Version {
		msg := "guest implements another ABI version"
		if e.cfg.debug != nil {
			msg = fmt.Sprintf("guest implements ABI version %d, the host %d", v, abi.Version)
		}
		return false, newGuestError(KindABI, "initialize", msg)
	}
	f := mod.ExportedFunction(abi.ExportFeatures)
	if f == nil {
		return false, nil
	}
	res, err = f.Call(callCtx, api.EncodeU32(abi.HostFeatures))
	if err != nil {
		return false, e.classify(ctx, "initialize", st, mod.Memory(), err)
	}
	used := api.DecodeU32(res[0])
	if err := abi.CheckFeatures(abi.HostFeatures, used); err != nil {
		msg := "guest broke the ABI: " + err.Error()
		if ae := (*abi.Error)(nil); e.cfg.debug != nil && errors.As(err, &ae) && ae.Detail != "" {
			msg += " (" + ae.Detail + ")"
		}
		return false, newGuestError(KindABI, "initialize", msg)
	}
	return used&abi.FeatureLazyColumns != 0, nil
}

func (i *instance) classify(ctx context.Context, phase string, err error) error {
	return i.m.e.classify(ctx, phase, i.state, i.mod.Memory(), err)
}

// ProcessBatch is ProcessBatchRuns with ranged emissions expanded into the
// listed form.
func (i *instance) ProcessBatch(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error {
	return i.ProcessBatchRuns(ctx, rec, ExpandRuns(emit))
}

// ProcessBatchRuns hands rec to the guest: the host asks the guest for one
// region (cove_alloc), writes rec into it (the one copy) and calls
// cove_batch, during which every emit and k_emit call reaches emit. rec's
// columns are sent as they are: project first. An error from emit stops the
// guest and is returned unchanged. Any failure closes the instance: a
// caller must then drop every emission the instance made.
func (i *instance) ProcessBatchRuns(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failed != nil {
		return fmt.Errorf("%w: instance failed earlier and is closed", cove.ErrGuest)
	}
	ctx, cancel := i.bound(ctx)
	defer cancel()
	err := i.processBatch(ctx, rec, emit)
	if err != nil {
		i.failed = err
		_ = i.mod.Close(ctx)
	}
	return err
}

func (i *instance) processBatch(ctx context.Context, rec arrow.RecordBatch, emit func(Emission) error) error {
	// The batch limit applies to the whole batch, whether the guest copies
	// every column (eager region) or only those it asks for (lazy).
	size, err := abi.RegionSize(rec)
	if err != nil {
		var u *abi.Unsupported
		if errors.As(err, &u) {
			return fmt.Errorf("%w: %v", cove.ErrInvalid, err)
		}
		return fmt.Errorf("%w: %v", cove.ErrLimit, err)
	}
	if size > i.m.e.cfg.maxBatchBytes {
		return fmt.Errorf("%w: batch needs %d bytes, the limit is %d", cove.ErrLimit, size, i.m.e.cfg.maxBatchBytes)
	}
	encode := abi.Encode
	if i.lazy {
		if size, err = abi.LazyRegionSize(rec); err != nil {
			return fmt.Errorf("%w: %v", cove.ErrLimit, err)
		}
		encode = abi.EncodeLazy
	}
	callCtx := context.WithValue(ctx, stateKey{}, i.state)
	res, err := i.alloc.Call(callCtx, api.EncodeU32(uint32(size)))
	if err != nil {
		return i.classify(ctx, "batch", err)
	}
	ptr := api.DecodeU32(res[0])
	mem := i.mod.Memory()
	region, ok := mem.Read(ptr, uint32(size))
	if ptr == 0 || ptr%abi.Align != 0 || !ok {
		if i.m.e.memoryFull(mem) {
			return newGuestError(KindMemory, "batch", i.m.e.memoryMsg())
		}
		return newGuestError(KindABI, "batch", fmt.Sprintf("guest broke the ABI: %s returned no usable region of %d bytes", abi.ExportAlloc, size))
	}
	if err := encode(region, rec); err != nil {
		return fmt.Errorf("wasm: encode batch: %w", err)
	}
	i.state.BeginBatch(rec, func(e *abi.Emission) error { return emit(emissionOf(e)) })
	defer i.state.EndBatch()
	res, err = i.batch.Call(callCtx, api.EncodeU32(ptr), api.EncodeU32(uint32(size)))
	if err != nil {
		return i.classify(ctx, "batch", err)
	}
	if rc := api.DecodeU32(res[0]); rc != 0 {
		if i.m.e.cfg.debug != nil {
			return newGuestError(KindFailed, "batch", fmt.Sprintf("guest reported an error (code %d)", rc))
		}
		return newGuestError(KindFailed, "batch", "guest reported an error")
	}
	return nil
}

// KeyName returns the key the guest interned as id ("" if none). Keys are
// derived from data: they belong to the enclave, like the values.
func (i *instance) KeyName(id uint32) string { return i.state.KeyName(id) }

// Emits is the number of contributions the instance has emitted.
func (i *instance) Emits() int64 { return i.state.Emits() }

// Close ends the instance.
func (i *instance) Close(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failed == nil {
		i.failed = fmt.Errorf("%w: instance is closed", cove.ErrGuest)
	}
	return i.mod.Close(ctx)
}

// debugWriter forwards guest output to the debug writer, up to a budget.
type debugWriter struct {
	e    *Engine
	left int
}

func (w *debugWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.left <= 0 {
		return n, nil
	}
	if len(p) > w.left {
		p = append(p[:w.left:w.left], "\n[guest output truncated]\n"...)
	}
	w.left -= n
	w.e.debugMu.Lock()
	defer w.e.debugMu.Unlock()
	_, _ = w.e.cfg.debug.Write(p)
	return n, nil
}
