package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/internal/abi"
	"github.com/covedata/cove/runtime/internal/snapshot"
)

// groupRuntime is the runtime of per-unit and block instances, made on
// first use: close-on-context-done (the CPU limit stops a group through
// it), memory up to the whole 32-bit space (Instrument fixes each module's
// memory at M plus its dirty map, and InstantiateGroups checks M against
// the engine's limit), the engine's compilation cache, module "cove" and
// the groups' own WASI (groupwasi.go).
func (e *Engine) groupRuntime(ctx context.Context) (wazero.Runtime, error) {
	e.grtMu.Lock()
	defer e.grtMu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("%w: engine is closed", cove.ErrInvalid)
	}
	if e.grt != nil {
		return e.grt, nil
	}
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithMemoryLimitPages(65536)
	if e.cache != nil {
		rc = rc.WithCompilationCache(e.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if err := defineGroupWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate group WASI: %w", err)
	}
	if err := defineHost(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate host module: %w", err)
	}
	e.grt = rt
	return rt, nil
}

// rewritten is a module instrumented for a guest memory of M pages
// (runtime/internal/snapshot), compiled in the group runtime: made once
// per (module, M).
type rewritten struct {
	ready    chan struct{} // closed when built
	mod      *snapshot.Module
	compiled wazero.CompiledModule
	rt       wazero.Runtime
	err      error
}

// rewrite returns m instrumented for pages, building it on first use.
func (m *module) rewrite(ctx context.Context, pages uint32) (*rewritten, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: module is closed", cove.ErrInvalid)
	}
	if m.rewritten == nil {
		m.rewritten = map[uint32]*rewritten{}
	}
	r, ok := m.rewritten[pages]
	if !ok {
		r = &rewritten{ready: make(chan struct{})}
		m.rewritten[pages] = r
	}
	m.mu.Unlock()
	if ok {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return nil, ctxError("initialize", ctx.Err())
		}
		if r.err != nil {
			return nil, r.err
		}
		return r, nil
	}
	r.err = m.build(ctx, r, pages)
	m.mu.Lock()
	switch {
	case r.err != nil && !errors.Is(r.err, cove.ErrInvalid):
		delete(m.rewritten, pages) // a canceled compile: the next caller tries again
	case r.err == nil && m.closed:
		_ = r.compiled.Close(ctx)
		r.err = fmt.Errorf("%w: module is closed", cove.ErrInvalid)
	}
	m.mu.Unlock()
	close(r.ready)
	if r.err != nil {
		return nil, r.err
	}
	return r, nil
}

func (m *module) build(ctx context.Context, r *rewritten, pages uint32) error {
	sm, err := snapshot.Instrument(m.bin, pages)
	if err != nil {
		if errors.Is(err, cove.ErrInvalid) {
			return fmt.Errorf("%w: module cannot run per unit or per block: %s", cove.ErrInvalid, strings.TrimPrefix(err.Error(), cove.ErrInvalid.Error()+": "))
		}
		return err
	}
	rt, err := m.e.groupRuntime(ctx)
	if err != nil {
		return err
	}
	compiled, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, m.e.cfg.workers()), sm.Wasm)
	if err != nil {
		if ctx.Err() != nil {
			return ctxError("initialize", ctx.Err())
		}
		return fmt.Errorf("%w: instrumented module does not compile: %v", cove.ErrInvalid, err)
	}
	r.mod, r.compiled, r.rt = sm, compiled, rt
	return nil
}

// ctxError is the guest error of a context that is done.
func ctxError(phase string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return newGuestError(KindDeadline, phase, "guest stopped at the deadline")
	}
	return newGuestError(KindCanceled, phase, "guest stopped: the run was canceled")
}

// groupInstance is an instance of per-unit and block modes on wazero.
type groupInstance struct {
	m       *module
	rw      *rewritten
	layout  snapshot.Layout
	cfg     GroupConfig
	outputs int
	st      *abi.State
	env     *groupEnv
	end     time.Time

	mod     api.Module
	mem     []byte // the whole linear memory (it never grows)
	alloc   api.Function
	batch   api.Function
	globals []api.MutableGlobal
	lazy    bool
	stack   [2]uint64 // the calls' parameters and results

	snap     []byte   // the guest's M pages at the snapshot
	saved    []uint64 // the globals at the snapshot
	snapKeys int      // keys interned at the snapshot

	// The host-side key table, stable for the instance's life: the
	// snapshot's keys, then those of successful groups' emissions.
	keys     []string
	keyIDs   map[string]uint32
	keyBytes int64

	// The current group's results, kept until it succeeded.
	base   uint32 // the group's first row in the caller's batch
	rows   []uint32
	gkeys  []uint32 // the guest's ids until delivery
	vals   []float64
	chunks []chunk
	vecs   [][]float64 // per block output
	local  []uint32    // delivery: stable id of guest id snapKeys+j (^0 unknown)

	mu     sync.Mutex
	failed error

	statsMu sync.Mutex
	stats   GroupStats
}

// chunk is a run of the buffered contributions to one output: up to end.
type chunk struct{ output, end int }

// InstantiateGroups starts a per-unit or block instance of m: the module
// instrumented for cfg's guest memory (compiled once per size), its
// _initialize run, its ABI checked, and its state snapshotted.
func (m *module) InstantiateGroups(ctx context.Context, outputs []string, cfg GroupConfig) (GroupInstance, error) {
	e := m.e
	var initial uint32
	if mem, ok := m.compiled.ExportedMemories()[abi.ExportMemory]; ok {
		initial = mem.Min()
	}
	if err := cfg.validate(len(outputs), e.cfg.memoryLimitPages, initial); err != nil {
		return nil, err
	}
	g := &groupInstance{m: m, cfg: cfg, outputs: len(outputs), end: time.Now().Add(e.cfg.deadline), keyIDs: map[string]uint32{}}
	ctx, cancel := context.WithDeadline(ctx, g.end)
	defer cancel()
	rw, err := m.rewrite(ctx, cfg.memoryPages)
	if err != nil {
		return nil, err
	}
	g.rw, g.layout = rw, rw.mod.Layout
	g.st = abi.NewState(abi.Limits{
		MaxEmits:         cfg.maxEmits,
		MaxKeyBytes:      e.cfg.maxKeyBytes,
		MaxKeys:          e.cfg.maxKeys,
		MaxKeyTotalBytes: DefaultMaxKeyTotalBytes,
	}, outputs)
	g.st.SetVectors(cfg.vectors)
	g.st.MemLimit = uint32(g.layout.GuestBytes)
	g.st.OnWrite = func(off, n uint32) {
		if g.mem != nil { // nil during _initialize: Take clears the map anyway
			snapshot.Mark(g.mem, g.layout, uint64(off), uint64(n))
		}
	}
	g.vecs = make([][]float64, len(outputs))
	for o, d := range cfg.vectors {
		if d > 0 {
			g.vecs[o] = make([]float64, d)
		}
	}
	var debug io.Writer
	if e.cfg.debug != nil {
		debug = &debugWriter{e: e, left: DefaultMaxDebugBytes}
	}
	g.env = newGroupEnv(g.st, debug)

	callCtx := g.callContext(ctx)
	mod, err := rw.rt.InstantiateModule(callCtx, rw.compiled, groupModuleConfig(true))
	if err != nil {
		if mod != nil {
			_ = mod.Close(ctx)
		}
		return nil, e.classify(ctx, "initialize", g.st, nil, err)
	}
	if err := g.attach(mod); err != nil {
		_ = mod.Close(ctx)
		return nil, err
	}
	if g.lazy, err = e.handshake(ctx, callCtx, mod, g.st); err != nil {
		_ = mod.Close(ctx)
		return nil, err
	}
	g.snap = snapshot.Take(g.mem, g.layout)
	g.saved = make([]uint64, len(g.globals))
	for k, gl := range g.globals {
		g.saved[k] = gl.Get()
	}
	g.snapKeys = g.st.NumKeys()
	for id := range g.snapKeys {
		k := g.st.KeyName(uint32(id))
		g.keys = append(g.keys, k)
		g.keyIDs[k] = uint32(id)
		g.keyBytes += int64(len(k))
	}
	return g, nil
}

// groupModuleConfig configures a group instance: anonymous, with
// _initialize as its start function the first time and none on a restart
// (the snapshot holds what it did). The sandbox is that of groupwasi.go,
// which ignores the module's system context.
func groupModuleConfig(initialize bool) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard)
	if initialize {
		return mc.WithStartFunctions(abi.ExportInitialize)
	}
	return mc.WithStartFunctions()
}

// callContext carries the state and the WASI environment to host calls.
func (g *groupInstance) callContext(ctx context.Context) context.Context {
	return context.WithValue(context.WithValue(ctx, stateKey{}, g.st), groupEnvKey{}, g.env)
}

// attach takes mod as the instance's module: its memory, exports, globals.
func (g *groupInstance) attach(mod api.Module) error {
	mem := mod.Memory()
	if mem == nil || uint64(mem.Size()) < g.layout.MemoryBytes() {
		return newGuestError(KindABI, "initialize", "guest broke the ABI: no memory of the instrumented size")
	}
	buf, _ := mem.Read(0, mem.Size())
	g.mod, g.mem = mod, buf
	g.alloc, g.batch = mod.ExportedFunction(abi.ExportAlloc), mod.ExportedFunction(abi.ExportBatch)
	g.globals = g.globals[:0]
	for _, gl := range g.rw.mod.Globals {
		mg, ok := mod.ExportedGlobal(gl.Name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("wasm: instrumented module lacks its global %s", gl.Name)
		}
		g.globals = append(g.globals, mg)
	}
	return nil
}

// restart replaces a module a group closed (proc_exit, the CPU limit) by
// a new instance holding the snapshot: its memory and globals copied in,
// _initialize not run again.
func (g *groupInstance) restart(ctx context.Context) error {
	if g.mod != nil {
		_ = g.mod.Close(ctx)
		g.mod = nil
	}
	// The new instance takes the closed one's linear memory: the snapshot
	// is copied over it below. A guest that fails every unit restarts once
	// per unit; with a fresh 16 MiB per restart the garbage outran the
	// collector on a loaded machine and the sandbox ran out of address
	// space.
	ictx := g.callContext(ctx)
	if old := g.mem; old != nil {
		ictx = experimental.WithMemoryAllocator(ictx, experimental.MemoryAllocatorFunc(func(capBytes, maxBytes uint64) experimental.LinearMemory {
			return &reusedMemory{buf: old}
		}))
	}
	mod, err := g.rw.rt.InstantiateModule(ictx, g.rw.compiled, groupModuleConfig(false))
	if err != nil {
		if mod != nil {
			_ = mod.Close(ctx)
		}
		if ctx.Err() != nil {
			return ctxError("group", ctx.Err())
		}
		return fmt.Errorf("wasm: restart a per-unit instance: %w", err)
	}
	if err := g.attach(mod); err != nil {
		_ = mod.Close(ctx)
		return err
	}
	copy(g.mem[:g.layout.GuestBytes], g.snap)
	clear(g.mem[g.layout.GuestBytes:]) // padding and the dirty map
	for k, gl := range g.globals {
		gl.Set(g.saved[k])
	}
	g.statsMu.Lock()
	g.stats.Restarts++
	g.statsMu.Unlock()
	return nil
}

// RunGroups calls the guest once per group of rec, from the snapshot.
func (g *groupInstance) RunGroups(ctx context.Context, rec arrow.RecordBatch, bounds []uint32, sink GroupSink) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil {
		return fmt.Errorf("%w: instance failed earlier and is closed", cove.ErrGuest)
	}
	if err := checkBounds(bounds, rec.NumRows()); err != nil {
		return err
	}
	if _, err := abi.LazyRegionSize(rec); err != nil {
		var u *abi.Unsupported
		if errors.As(err, &u) {
			return fmt.Errorf("%w: %v", cove.ErrInvalid, err)
		}
		return fmt.Errorf("%w: %v", cove.ErrLimit, err)
	}
	ctx, cancel := context.WithDeadline(ctx, g.end)
	defer cancel()
	err := g.run(ctx, rec, bounds, sink)
	if err != nil {
		g.failed = err
		if g.mod != nil {
			_ = g.mod.Close(ctx)
		}
	}
	return err
}

func (g *groupInstance) run(ctx context.Context, rec arrow.RecordBatch, bounds []uint32, sink GroupSink) error {
	// The guest runs on this goroutine's thread, whose CPU clock the
	// watchdog reads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := newWatchdog(ctx, g.cfg.cpuLimit, g)
	defer w.close()
	for gi := 0; gi+1 < len(bounds); gi++ {
		if err := ctx.Err(); err != nil {
			return ctxError("group", err)
		}
		lo, hi := bounds[gi], bounds[gi+1]
		t0 := time.Now()
		sub := rec.NewSlice(int64(lo), int64(hi))
		ok, err := g.group(ctx, w, sub, lo, t0)
		sub.Release()
		t1 := time.Now()
		if err != nil {
			return err
		}
		if ok {
			err = g.deliver(gi, sink)
		} else {
			err = sink.Failed(gi)
		}
		if err != nil {
			return err
		}
		t2 := time.Now()
		pages, err := g.restore(ctx)
		if err != nil {
			return err
		}
		t3 := time.Now()
		g.statsMu.Lock()
		g.stats.Groups++
		if !ok {
			g.stats.Failed++
		}
		g.stats.RestoredPages += int64(pages)
		g.stats.CallTime += t1.Sub(t0)
		g.stats.RestoreTime += t3.Sub(t2)
		g.statsMu.Unlock()
	}
	return nil
}

// group runs one group: ok reports whether it succeeded; err is for what
// is not the group's doing (ctx done).
func (g *groupInstance) group(ctx context.Context, w *watchdog, sub arrow.RecordBatch, base uint32, start time.Time) (ok bool, err error) {
	g.env.reset()
	g.base = base
	g.rows, g.gkeys, g.vals, g.chunks = g.rows[:0], g.gkeys[:0], g.vals[:0], g.chunks[:0]
	encode, size := abi.Encode, int64(0)
	if g.lazy {
		encode = abi.EncodeLazy
		size, err = abi.LazyRegionSize(sub)
	} else {
		size, err = abi.RegionSize(sub)
	}
	if err != nil || size > g.m.e.cfg.maxBatchBytes || uint64(size) > g.layout.GuestBytes {
		return false, nil // more rows than a group may have: the group's own doing
	}
	callCtx := w.arm(start)
	defer func() {
		if w.disarm() {
			ok = false // past the CPU limit, even if it just returned
		}
		if ok && err == nil {
			if cerr := ctx.Err(); cerr != nil {
				ok, err = false, ctxError("group", cerr)
			}
		}
	}()
	stack := g.stack[:]
	stack[0] = api.EncodeU32(uint32(size))
	if cerr := g.alloc.CallWithStack(callCtx, stack); cerr != nil {
		return false, g.stopped(ctx)
	}
	ptr := api.DecodeU32(stack[0])
	if ptr == 0 || ptr%abi.Align != 0 || uint64(ptr)+uint64(size) > g.layout.GuestBytes {
		return false, nil
	}
	region := g.mem[ptr : uint64(ptr)+uint64(size)]
	snapshot.Mark(g.mem, g.layout, uint64(ptr), uint64(size))
	if err := encode(region, sub); err != nil {
		return false, fmt.Errorf("wasm: encode group: %w", err)
	}
	g.st.BeginGroup(sub, g.onEmit, g.onResult)
	stack[0], stack[1] = api.EncodeU32(ptr), api.EncodeU32(uint32(size))
	cerr := g.batch.CallWithStack(callCtx, stack)
	failure := g.st.Failure
	g.st.EndBatch()
	if cerr != nil {
		return false, g.stopped(ctx)
	}
	if api.DecodeU32(stack[0]) != 0 || failure != nil {
		return false, nil
	}
	for o, d := range g.cfg.vectors {
		if d > 0 && !g.st.Gave(o) {
			return false, nil // a block output without its vector
		}
	}
	return true, nil
}

// stopped is the error of a guest call that failed: the context's when ctx
// is done (not the group's doing), else none (the group failed).
func (g *groupInstance) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError("group", err)
	}
	return nil
}

// onEmit keeps a group's contributions (ranged ones expanded), rows made
// rows of the caller's batch.
func (g *groupInstance) onEmit(e *abi.Emission) error {
	start := len(g.rows)
	if e.Runs == nil {
		for _, r := range e.Rows {
			g.rows = append(g.rows, g.base+r)
		}
		g.gkeys = append(g.gkeys, e.Keys...)
		g.vals = append(g.vals, e.Values...)
	} else {
		for _, run := range e.Runs {
			for w := run.Start >> 6; w<<6 < run.End; w++ {
				x := e.Select[w]
				if lo := run.Start; w == lo>>6 {
					x &= ^uint64(0) << (lo & 63)
				}
				if hi := run.End; (w+1)<<6 > hi {
					x &= 1<<(hi&63) - 1
				}
				for ; x != 0; x &= x - 1 {
					r := w<<6 + uint32(bits.TrailingZeros64(x))
					v := 1.0
					if e.ByRow != nil {
						v = e.ByRow[r]
					}
					g.rows, g.gkeys, g.vals = append(g.rows, g.base+r), append(g.gkeys, run.Key), append(g.vals, v)
				}
			}
		}
	}
	if len(g.rows) == start {
		return nil
	}
	if n := len(g.chunks); n > 0 && g.chunks[n-1].output == e.Output {
		g.chunks[n-1].end = len(g.rows)
	} else {
		g.chunks = append(g.chunks, chunk{output: e.Output, end: len(g.rows)})
	}
	return nil
}

// onResult keeps a group's vector for block output o.
func (g *groupInstance) onResult(o int, v []float64) error {
	copy(g.vecs[o], v)
	return nil
}

// deliver hands a successful group's results to sink, its keys moved to
// the instance's table; the error is the sink's, or the instance's key
// table full.
func (g *groupInstance) deliver(gi int, sink GroupSink) (err error) {
	if n := g.st.NumKeys() - g.snapKeys; n > 0 {
		g.local = g.local[:0]
		for range n {
			g.local = append(g.local, ^uint32(0))
		}
		for j, k := range g.gkeys {
			if int(k) < g.snapKeys {
				continue
			}
			id := g.local[int(k)-g.snapKeys]
			if id == ^uint32(0) {
				if id, err = g.intern(g.st.KeyName(k)); err != nil {
					return err
				}
				g.local[int(k)-g.snapKeys] = id
			}
			g.gkeys[j] = id
		}
	}
	start := 0
	for _, c := range g.chunks {
		e := Emission{Output: c.output, Rows: g.rows[start:c.end], Keys: g.gkeys[start:c.end], Values: g.vals[start:c.end]}
		if err := sink.Emit(gi, e); err != nil {
			return err
		}
		start = c.end
	}
	for o, d := range g.cfg.vectors {
		if d > 0 {
			if err := sink.Vector(gi, o, g.vecs[o]); err != nil {
				return err
			}
		}
	}
	return nil
}

// intern adds k to the instance's key table, within the engine's key
// limits (over the instance's life, as for a batch instance).
func (g *groupInstance) intern(k string) (uint32, error) {
	if id, ok := g.keyIDs[k]; ok {
		return id, nil
	}
	cfg := g.m.e.cfg
	if len(g.keys) >= cfg.maxKeys || g.keyBytes+int64(len(k)) > DefaultMaxKeyTotalBytes {
		return 0, fmt.Errorf("%w: the groups' keys exceed the instance's limits (%d keys, %d bytes)", cove.ErrLimit, cfg.maxKeys, int64(DefaultMaxKeyTotalBytes))
	}
	id := uint32(len(g.keys))
	g.keys = append(g.keys, k)
	g.keyIDs[k] = id
	g.keyBytes += int64(len(k))
	return id, nil
}

// restore makes the guest's state the snapshot's again: the dirty pages
// copied back, the globals set, the host state reset; a closed module is
// replaced.
func (g *groupInstance) restore(ctx context.Context) (int, error) {
	g.st.ResetGroup(g.snapKeys)
	if g.mod == nil || g.mod.IsClosed() {
		return 0, g.restart(context.WithoutCancel(ctx))
	}
	pages := snapshot.Restore(g.mem, g.snap, g.layout)
	for k, gl := range g.globals {
		gl.Set(g.saved[k])
	}
	return pages, nil
}

// KeyName returns the key of id in the instance's table.
func (g *groupInstance) KeyName(id uint32) string {
	if int64(id) >= int64(len(g.keys)) {
		return ""
	}
	return g.keys[id]
}

// Stats reports the instance's counts.
func (g *groupInstance) Stats() GroupStats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	return g.stats
}

// Close ends the instance.
func (g *groupInstance) Close(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed == nil {
		g.failed = fmt.Errorf("%w: instance is closed", cove.ErrGuest)
	}
	if g.mod == nil {
		return nil
	}
	return g.mod.Close(ctx)
}

// watchdog stops a group that runs past the CPU limit: wazero closes a
// module when the context of its call is done, so each group's calls run
// under a context that the watchdog cancels when the group's time is up.
// One timer and one goroutine serve a whole RunGroups.
//
// The limit is CPU time: each group reads the CPU clock of the thread
// running the guest (RunGroups locks itself to it) as it starts (a
// syscall, a fraction of a microsecond); when the group's wall time
// reaches the limit, the watchdog reads the clock again and stops the
// group only if it has used the limit in CPU time since it started, else
// it looks again when the CPU left could be used up. A starved process (a
// loaded machine, a CFS quota throttling a whole container) fails no group
// for it. A group is stopped in any case at ten times the limit. Where the
// OS gives no thread CPU clock the limit is wall time.
type watchdog struct {
	parent context.Context
	limit  time.Duration
	g      *groupInstance
	tid    int
	timer  *time.Timer // the group's limit, and the checks after it
	done   chan struct{}

	mu       sync.Mutex
	ctx      context.Context // the calls' context, with the state and WASI values
	cancel   context.CancelCauseFunc
	gen      uint64        // the running group
	start    time.Time     // its start
	cpuStart time.Duration // the thread's CPU time at its start
	cpuOK    bool          // cpuStart was read
	running  bool
	over     bool
}

var errOverrun = errors.New("group ran past its CPU limit")

func newWatchdog(parent context.Context, limit time.Duration, g *groupInstance) *watchdog {
	w := &watchdog{parent: parent, limit: limit, g: g, tid: threadID(), done: make(chan struct{}),
		timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	w.renew()
	go w.watch()
	return w
}

// renew makes a new context for the calls, after one was canceled.
func (w *watchdog) renew() {
	ctx, cancel := context.WithCancelCause(w.parent)
	w.ctx, w.cancel = w.g.callContext(ctx), cancel
}

func (w *watchdog) watch() {
	for {
		select {
		case now := <-w.timer.C:
			w.mu.Lock()
			// A tick of an earlier group's timer comes before this group's
			// end: not this group's.
			if w.running && !w.over && !now.Before(w.start.Add(w.limit)) {
				c, ok := threadCPU(w.tid)
				used := c - w.cpuStart
				switch {
				case !ok || !w.cpuOK || used >= w.limit || now.Sub(w.start) >= 10*w.limit:
					w.stop()
				default:
					// Not yet its limit in CPU: look again when it could be.
					next := w.limit - used
					if at := w.start.Add(10 * w.limit); now.Add(next).After(at) {
						next = at.Sub(now)
					}
					w.timer.Reset(max(next, time.Millisecond))
				}
			}
			w.mu.Unlock()
		case <-w.done:
			return
		}
	}
}

// stop cancels the running group's calls; the caller holds mu.
func (w *watchdog) stop() {
	w.over = true
	w.cancel(errOverrun)
}

// arm starts a group's time and returns the context of its calls. It runs
// on the guest's thread.
func (w *watchdog) arm(start time.Time) context.Context {
	cpu, ok := threadCPU(w.tid)
	w.mu.Lock()
	w.gen++
	w.start, w.running, w.over = start, true, false
	w.cpuStart, w.cpuOK = cpu, ok
	ctx := w.ctx
	w.mu.Unlock()
	w.timer.Reset(w.limit - time.Since(start))
	return ctx
}

// disarm ends a group's time and reports whether the group ran over; the
// next group then gets a new context.
func (w *watchdog) disarm() bool {
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = false
	if w.over {
		w.renew()
	}
	return w.over
}

func (w *watchdog) close() {
	w.timer.Stop()
	close(w.done)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel(nil)
}

// reusedMemory backs a restarted instance with its predecessor's buffer.
// Its size never changes: the rewritten module's memory has initial =
// maximum.
type reusedMemory struct{ buf []byte }

func (m *reusedMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

func (m *reusedMemory) Free() {}
