//go:build wasmer

package wasmer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	wasmer "github.com/wasmerio/wasmer-go/wasmer"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/wasm"
)

// Engine compiles and runs guest modules on wasmer. It satisfies
// wasm.Runtime and is safe for concurrent use.
type Engine struct {
	lim     wasm.Limits
	debug   io.Writer // nil unless lim.Debug
	debugMu sync.Mutex
	engine  *wasmer.Engine
	store   *wasmer.Store

	mu     sync.Mutex
	closed bool
	mods   map[*module]struct{}
}

var _ wasm.Runtime = (*Engine)(nil)

// NewEngine starts a wasmer engine (universal engine, Cranelift) with l's
// limits, the settings of a wasm.Config (wasm.Config.Limits). Guest stdout
// and stderr go to debug when l.Debug is set, as wasm.Config.WithLimits
// does. l.CacheDir, when set, keeps compiled modules (serialized by wasmer,
// keyed by the module's sha256) next to wazero's cache.
func NewEngine(ctx context.Context, l wasm.Limits) (*Engine, error) {
	return NewEngineDebug(ctx, l, nil)
}

// NewEngineDebug is NewEngine with guest output shown on debug (mock runs
// only; see wasm.Config.WithDebugOutput). debug is used only when l.Debug.
func NewEngineDebug(ctx context.Context, l wasm.Limits, debug io.Writer) (*Engine, error) {
	if err := validate(l); err != nil {
		return nil, err
	}
	if !l.Debug {
		debug = nil
	} else if debug == nil {
		debug = io.Discard
	}
	if l.CacheDir != "" {
		if err := os.MkdirAll(filepath.Join(l.CacheDir, cacheSubdir), 0o700); err != nil {
			return nil, fmt.Errorf("%w: compilation cache: %v", cove.ErrInvalid, err)
		}
	}
	eng := wasmer.NewEngineWithConfig(wasmer.NewConfig().UseCraneliftCompiler())
	return &Engine{lim: l, debug: debug, engine: eng, store: wasmer.NewStore(eng), mods: map[*module]struct{}{}}, nil
}

func validate(l wasm.Limits) error {
	var bad []string
	if l.MemoryLimitPages < 1 || l.MemoryLimitPages > 65536 {
		bad = append(bad, fmt.Sprintf("memory limit of %d pages is outside [1,65536]", l.MemoryLimitPages))
	}
	if l.MaxModuleBytes < 8 {
		bad = append(bad, fmt.Sprintf("module limit of %d bytes is too small", l.MaxModuleBytes))
	}
	if l.MaxEmits < 0 || l.MaxKeyBytes < 0 || l.MaxKeys < 0 {
		bad = append(bad, "negative emit or key limit")
	}
	if l.MaxBatchBytes < 64 || l.MaxBatchBytes > 1<<32-1 {
		bad = append(bad, fmt.Sprintf("batch limit of %d bytes is outside [64,4GiB)", l.MaxBatchBytes))
	}
	if l.Deadline <= 0 {
		bad = append(bad, "deadline must be positive")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: wasmer config: %v", cove.ErrInvalid, bad)
	}
	return nil
}

// Close closes the engine and every module and instance it made.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	mods := slices.Collect(maps.Keys(e.mods))
	e.mu.Unlock()
	for _, m := range mods {
		_ = m.Close(ctx)
	}
	e.store.Close()
	return nil
}

// AddressSpacePerMemory is the virtual address space wasmer 2.0 reserves
// for each linear memory on 64-bit hosts, whatever its limit: a 4 GiB
// static memory and a 2 GiB guard region. A process limit on address space
// (RLIMIT_AS) must leave room for it.
const AddressSpacePerMemory = 6 << 30

// cacheSubdir holds wasmer's serialized modules inside the cache directory;
// the name carries the wasmer version, whose format it is.
const cacheSubdir = "wasmer-2.0-go-1.0.4"

// module is a compiled guest module.
type module struct {
	e   *Engine
	mod *wasmer.Module

	mu     sync.Mutex
	closed bool
	insts  map[*instance]struct{}
}

// Compile checks and compiles a guest module. It refuses, with
// cove.ErrLimit, a module over the size limit and, with cove.ErrInvalid, a
// module that does not decode, imports anything outside ABI v1 (all
// offending imports are listed) or lacks an ABI v1 export. The memory
// limit is written into the module's memory section before compiling.
func (e *Engine) Compile(ctx context.Context, bin []byte) (wasm.Module, error) {
	if len(bin) > e.lim.MaxModuleBytes {
		return nil, fmt.Errorf("%w: module of %d bytes exceeds %d bytes", cove.ErrLimit, len(bin), e.lim.MaxModuleBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", cove.ErrDeadline, err)
	}
	capped, err := capMemory(bin, e.lim.MemoryLimitPages)
	if err != nil {
		return nil, fmt.Errorf("%w: module does not compile: %v", cove.ErrInvalid, err)
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: wasmer engine is closed", cove.ErrInvalid)
	}
	wm, err := e.compile(capped)
	if err != nil {
		return nil, fmt.Errorf("%w: module does not compile: %v", cove.ErrInvalid, err)
	}
	if problems := check(wm); len(problems) > 0 {
		wm.Close()
		return nil, fmt.Errorf("%w: module breaks ABI v%d: %s", cove.ErrInvalid, abi.Version, strings.Join(problems, "; "))
	}
	m := &module{e: e, mod: wm, insts: map[*instance]struct{}{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		wm.Close()
		return nil, fmt.Errorf("%w: wasmer engine is closed", cove.ErrInvalid)
	}
	e.mods[m] = struct{}{}
	return m, nil
}

// compile compiles bin, through the on-disk cache when there is one. A
// cache entry that does not deserialize is recompiled and replaced.
func (e *Engine) compile(bin []byte) (*wasmer.Module, error) {
	if e.lim.CacheDir == "" {
		return wasmer.NewModule(e.store, bin)
	}
	sum := sha256.Sum256(bin)
	path := filepath.Join(e.lim.CacheDir, cacheSubdir, hex.EncodeToString(sum[:]))
	if b, err := os.ReadFile(path); err == nil {
		if m, err := wasmer.DeserializeModule(e.store, b); err == nil {
			return m, nil
		}
	}
	m, err := wasmer.NewModule(e.store, bin)
	if err != nil {
		return nil, err
	}
	if b, err := m.Serialize(); err == nil {
		// Write then rename, so that a concurrent reader never sees half a file.
		tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
		if err == nil {
			_, werr := tmp.Write(b)
			cerr := tmp.Close()
			if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
				_ = os.Remove(tmp.Name())
			}
		}
	}
	return m, nil
}

// check lists everything in m's imports and exports that ABI v1 refuses.
func check(m *wasmer.Module) []string {
	var problems, forbidden []string
	for _, imp := range m.Imports() {
		mod, name, ty := imp.Module(), imp.Name(), imp.Type()
		if ty.Kind() != wasmer.FUNCTION {
			forbidden = append(forbidden, mod+"."+name+" ("+strings.ToLower(ty.Kind().String())+")")
			continue
		}
		switch {
		case mod == abi.Module:
			want, ok := abi.Imports[name]
			if !ok {
				forbidden = append(forbidden, mod+"."+name)
			} else if !implemented[name] {
				problems = append(problems, fmt.Sprintf("import %s.%s is not implemented by the wasmer engine", mod, name))
			} else if !sameSig(want, ty.IntoFunctionType()) {
				problems = append(problems, fmt.Sprintf("import %s.%s has the wrong signature", mod, name))
			}
		case mod == abi.WASIModule && abi.WASIAllowed[name]:
			if !sameWASISig(name, ty.IntoFunctionType()) {
				problems = append(problems, fmt.Sprintf("import %s.%s has the wrong signature", mod, name))
			}
		default:
			forbidden = append(forbidden, mod+"."+name)
		}
	}
	if len(forbidden) > 0 {
		problems = append([]string{"forbidden imports: " + strings.Join(forbidden, ", ")}, problems...)
	}
	exports := map[string]*wasmer.ExternType{}
	for _, ex := range m.Exports() {
		exports[ex.Name()] = ex.Type()
	}
	if t, ok := exports[abi.ExportMemory]; !ok || t.Kind() != wasmer.MEMORY {
		problems = append(problems, "no exported memory \"memory\"")
	}
	for _, name := range slices.Sorted(maps.Keys(abi.Exports)) {
		t, ok := exports[name]
		switch {
		case !ok || t.Kind() != wasmer.FUNCTION:
			problems = append(problems, "no export "+name)
		case !sameSig(abi.Exports[name], t.IntoFunctionType()):
			problems = append(problems, "export "+name+" has the wrong signature")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(abi.OptionalExports)) {
		if t, ok := exports[name]; ok && (t.Kind() != wasmer.FUNCTION || !sameSig(abi.OptionalExports[name], t.IntoFunctionType())) {
			problems = append(problems, "export "+name+" has the wrong signature")
		}
	}
	if t, ok := exports[abi.ExportInitialize]; ok {
		if t.Kind() != wasmer.FUNCTION || len(t.IntoFunctionType().Params()) != 0 || len(t.IntoFunctionType().Results()) != 0 {
			problems = append(problems, "export _initialize has the wrong signature")
		}
	}
	return problems
}

func kinds(ts []*wasmer.ValueType) []wasmer.ValueKind {
	out := make([]wasmer.ValueKind, len(ts))
	for i, t := range ts {
		out[i] = t.Kind()
	}
	return out
}

func sameSig(want abi.Signature, f *wasmer.FunctionType) bool {
	conv := func(v []abi.ValType) []wasmer.ValueKind {
		out := make([]wasmer.ValueKind, len(v))
		for i := range v {
			out[i] = wasmer.I32 // ABI v1 uses i32 only
		}
		return out
	}
	return slices.Equal(conv(want.Params), kinds(f.Params())) && slices.Equal(conv(want.Results), kinds(f.Results()))
}

func sameWASISig(name string, f *wasmer.FunctionType) bool {
	s := wasiSigs[name]
	return slices.Equal(s.params, kinds(f.Params())) && slices.Equal(s.results, kinds(f.Results()))
}

// Close releases the compiled code and the instances made from it.
func (m *module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	insts := slices.Collect(maps.Keys(m.insts))
	m.mu.Unlock()
	for _, i := range insts {
		_ = i.Close(ctx)
	}
	m.e.mu.Lock()
	delete(m.e.mods, m)
	m.e.mu.Unlock()
	m.mod.Close()
	return nil
}

// instance is one running guest with its memory, interned keys and emit
// count.
type instance struct {
	m     *module
	state *abi.State
	end   time.Time // the instance's deadline (Limits.Deadline)

	mu     sync.Mutex
	inst   *wasmer.Instance
	mem    *wasmer.Memory
	alloc  wasmer.NativeFunction
	batch  wasmer.NativeFunction
	failed error
	closed bool
	lazy   bool // the guest took abi.FeatureLazyColumns

	// Set by host functions during a call, read after it returns.
	ctx  context.Context // the running call's context, checked at every host call
	exit *int32          // proc_exit's code
	stop error           // the context's error seen at a host call
	wasi wasiState
}

// Instantiate starts an instance of m that may emit to outputs. It runs
// the guest's _initialize and checks the guest's ABI version. wasmer
// cannot interrupt a guest: ctx is checked before and after each guest
// call and at every host call, and only the sandbox's watchdog
// (runtime/isolate) stops a guest that loops without calling the host.
func (m *module) Instantiate(ctx context.Context, outputs []string) (wasm.Instance, error) {
	e := m.e
	st := abi.NewState(abi.Limits{
		MaxEmits:         e.lim.MaxEmits,
		MaxKeyBytes:      e.lim.MaxKeyBytes,
		MaxKeys:          e.lim.MaxKeys,
		MaxKeyTotalBytes: wasm.DefaultMaxKeyTotalBytes,
	}, outputs)
	i := &instance{m: m, state: st, end: time.Now().Add(e.lim.Deadline)}
	i.wasi = newWASIState(e, wasm.DefaultMaxDebugBytes)
	ctx, cancel := i.bound(ctx)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, ctxError("initialize", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: module is closed", cove.ErrInvalid)
	}
	m.insts[i] = struct{}{}
	m.mu.Unlock()

	i.ctx = ctx
	inst, err := wasmer.NewInstance(m.mod, i.imports())
	if err != nil {
		err = i.classify(ctx, "initialize", err)
		i.drop()
		return nil, err
	}
	i.inst = inst
	if i.mem, err = inst.Exports.GetMemory(abi.ExportMemory); err != nil {
		i.drop()
		return nil, wasm.NewGuestError(wasm.KindABI, "initialize", "guest broke the ABI: no exported memory")
	}
	get := func(name string) wasmer.NativeFunction {
		f, err := inst.Exports.GetFunction(name)
		if err != nil {
			return nil
		}
		return f
	}
	i.alloc, i.batch = get(abi.ExportAlloc), get(abi.ExportBatch)
	if init := get(abi.ExportInitialize); init != nil {
		if _, err := i.call(ctx, init); err != nil {
			err = i.classify(ctx, "initialize", err)
			i.drop()
			return nil, err
		}
	}
	res, err := i.call(ctx, get(abi.ExportVersion))
	if err != nil {
		err = i.classify(ctx, "initialize", err)
		i.drop()
		return nil, err
	}
	if v, _ := res.(int32); uint32(v) != abi.Version {
		i.drop()
		msg := "guest implements another ABI version"
		if e.debug != nil {
			msg = fmt.Sprintf("guest implements ABI version %d, the host %d", uint32(v), abi.Version)
		}
		return nil, wasm.NewGuestError(wasm.KindABI, "initialize", msg)
	}
	if f := get(abi.ExportFeatures); f != nil {
		res, err := i.call(ctx, f, int32(abi.HostFeatures))
		if err != nil {
			err = i.classify(ctx, "initialize", err)
			i.drop()
			return nil, err
		}
		used, _ := res.(int32)
		if err := abi.CheckFeatures(abi.HostFeatures, uint32(used)); err != nil {
			i.drop()
			return nil, wasm.NewGuestError(wasm.KindABI, "initialize", "guest broke the ABI: "+err.Error())
		}
		i.lazy = uint32(used)&abi.FeatureLazyColumns != 0
	}
	return i, nil
}

// bound applies the instance's own deadline to ctx.
func (i *instance) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, i.end)
}

// call calls f under ctx: the context host calls check. A guest call that
// returns after ctx is done failed: its results came too late.
func (i *instance) call(ctx context.Context, f wasmer.NativeFunction, args ...any) (any, error) {
	i.ctx, i.exit, i.stop = ctx, nil, nil
	defer func() { i.ctx = nil }()
	res, err := f(args...)
	if err == nil && ctx.Err() != nil {
		err = errStopped
	}
	if err == nil && i.mem != nil && uint64(i.mem.Size()) > uint64(i.m.e.lim.MemoryLimitPages) {
		// Cannot happen with the capped memory section; checked anyway.
		return nil, wasm.NewGuestError(wasm.KindMemory, "batch", i.m.e.memoryMsg())
	}
	return res, err
}

// ProcessBatch is ProcessBatchRuns with ranged emissions expanded into the
// listed form.
func (i *instance) ProcessBatch(ctx context.Context, rec arrow.RecordBatch, emit func(wasm.Emission) error) error {
	return i.ProcessBatchRuns(ctx, rec, wasm.ExpandRuns(emit))
}

// ProcessBatchRuns hands rec to the guest: the host asks the guest for one
// region (cove_alloc), writes rec into it (the one copy) and calls
// cove_batch, during which every emit and k_emit call reaches emit. Any
// failure closes the instance.
func (i *instance) ProcessBatchRuns(ctx context.Context, rec arrow.RecordBatch, emit func(wasm.Emission) error) error {
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
		i.release()
	}
	return err
}

func (i *instance) processBatch(ctx context.Context, rec arrow.RecordBatch, emit func(wasm.Emission) error) error {
	if err := ctx.Err(); err != nil {
		return ctxError("batch", err)
	}
	size, err := abi.RegionSize(rec)
	if err != nil {
		var u *abi.Unsupported
		if errors.As(err, &u) {
			return fmt.Errorf("%w: %v", cove.ErrInvalid, err)
		}
		return fmt.Errorf("%w: %v", cove.ErrLimit, err)
	}
	e := i.m.e
	if size > e.lim.MaxBatchBytes {
		return fmt.Errorf("%w: batch needs %d bytes, the limit is %d", cove.ErrLimit, size, e.lim.MaxBatchBytes)
	}
	encode := abi.Encode
	if i.lazy {
		if size, err = abi.LazyRegionSize(rec); err != nil {
			return fmt.Errorf("%w: %v", cove.ErrLimit, err)
		}
		encode = abi.EncodeLazy
	}
	res, err := i.call(ctx, i.alloc, int32(uint32(size)))
	if err != nil {
		return i.classify(ctx, "batch", err)
	}
	p, _ := res.(int32)
	ptr := uint32(p)
	mem := i.mem.Data()
	if ptr == 0 || ptr%abi.Align != 0 || uint64(ptr)+uint64(size) > uint64(len(mem)) {
		if e.memoryFull(i.mem) {
			return wasm.NewGuestError(wasm.KindMemory, "batch", e.memoryMsg())
		}
		return wasm.NewGuestError(wasm.KindABI, "batch", fmt.Sprintf("guest broke the ABI: %s returned no usable region of %d bytes", abi.ExportAlloc, size))
	}
	if err := encode(mem[ptr:uint64(ptr)+uint64(size)], rec); err != nil {
		return fmt.Errorf("wasmer: encode batch: %w", err)
	}
	i.state.BeginBatch(rec, func(e *abi.Emission) error {
		return emit(wasm.Emission{Output: e.Output, Rows: e.Rows, Keys: e.Keys, Values: e.Values, Runs: e.Runs, Select: e.Select, ByRow: e.ByRow})
	})
	defer i.state.EndBatch()
	res, err = i.call(ctx, i.batch, int32(ptr), int32(uint32(size)))
	if err != nil {
		return i.classify(ctx, "batch", err)
	}
	if rc, _ := res.(int32); rc != 0 {
		if e.debug != nil {
			return wasm.NewGuestError(wasm.KindFailed, "batch", fmt.Sprintf("guest reported an error (code %d)", rc))
		}
		return wasm.NewGuestError(wasm.KindFailed, "batch", "guest reported an error")
	}
	return nil
}

// KeyName returns the key the guest interned as id ("" if none).
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
	i.release()
	return nil
}

// release frees the wasmer instance once (wasmer-go frees twice if asked
// twice). The caller holds i.mu.
func (i *instance) release() {
	if i.closed {
		return
	}
	i.closed = true
	if i.inst != nil {
		i.inst.Close()
		i.inst, i.mem, i.alloc, i.batch = nil, nil, nil, nil
	}
	i.m.mu.Lock()
	delete(i.m.insts, i)
	i.m.mu.Unlock()
}

// drop releases an instance that failed to start.
func (i *instance) drop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failed = fmt.Errorf("%w: instance failed to start", cove.ErrGuest)
	i.release()
}
