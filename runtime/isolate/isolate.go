package isolate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/covedata/cove"
	"github.com/covedata/cove/runtime/wasm"
)

// EnvChild is set in a sandbox process's environment; a binary that can be
// a sandbox checks it (ServeIfChild) before doing anything else.
const EnvChild = "COVE_SANDBOX_CHILD"

// Defaults of NewConfig.
const (
	// DefaultGrace keeps the worst overrun (a loop-free call tree that
	// wazero cannot interrupt) within the deadline + 1 s the runtime promises.
	DefaultGrace = 750 * time.Millisecond
	// DefaultAddressSpaceSlack is added to the guest memory limit for the
	// sandbox's RLIMIT_AS: the Go runtime, wazero, compiled code, batches.
	DefaultAddressSpaceSlack = 2 << 30
	// DefaultPool is the number of idle sandboxes an Engine keeps started
	// ahead (Config.WithPool): none. The pool saves a few ms per sandbox,
	// and a load run of 100 concurrent service jobs on pooled sandboxes
	// once saw jobs canceled during initialize that it could not reproduce
	// after a fix of a stray-SIGTERM race (proc.do): opt in until that is
	// understood.
	DefaultPool = 0
	// DefaultReuseIdle, DefaultReuseIdleFor and DefaultReuseUses are the
	// defaults of Config.WithReuse: up to 8 sandboxes kept between
	// instances of their scope for up to 10 s, each serving at most 64.
	DefaultReuseIdle    = 8
	DefaultReuseIdleFor = 10 * time.Second
	DefaultReuseUses    = 64
)

// Config configures an Engine. It is an immutable value: each WithX returns
// a copy.
type Config struct {
	wasm        wasm.Config
	command     []string
	grace       time.Duration
	asSlack     uint64
	netns       bool
	logf        func(format string, args ...any)
	debug       io.Writer
	startupWait time.Duration
	engine      string
	pool        int
	reuse       reuse
}

// reuse is Config.WithReuse's setting.
type reuse struct {
	idle    int           // scoped sandboxes kept between instances, engine-wide
	idleFor time.Duration // how long one waits for its next instance
	uses    int           // instances one sandbox serves at most
}

// Engines a sandbox can run guests on (Config.WithEngine).
const (
	EngineWazero = "wazero" // runtime/wasm, the default
	EngineWasmer = "wasmer" // runtime/wasmer: only in binaries built with -tags wasmer
)

// WithEngine picks the WebAssembly engine inside the sandboxes:
// EngineWazero (the default) or EngineWasmer, which needs a binary built
// with the build tag wasmer (NewEngine refuses it otherwise). wasmer cannot
// interrupt a guest: for it the watchdog's SIGKILL at deadline + grace is
// the deadline, and RLIMIT_AS grows by the 6 GiB wasmer reserves per
// memory (runtime/wasmer).
func (c Config) WithEngine(name string) Config { c.engine = name; return c }

// NewConfig returns the defaults around the sandbox's engine configuration
// w: the command is this executable with argument "sandbox" (the cove
// binary's hidden subcommand; test binaries serve through ServeIfChild),
// a grace of 750 ms past the deadline before SIGKILL, RLIMIT_AS of the guest
// memory limit plus 2 GiB, a new network namespace where the OS allows, and
// notices to the standard logger. Debug output (mock runs) is taken from w.
func NewConfig(w wasm.Config) Config {
	return Config{wasm: w, grace: DefaultGrace, asSlack: DefaultAddressSpaceSlack, netns: true,
		logf: log.Printf, startupWait: 30 * time.Second, pool: DefaultPool,
		reuse: reuse{idle: DefaultReuseIdle, idleFor: DefaultReuseIdleFor, uses: DefaultReuseUses}}
}

// WithPool sets how many idle sandboxes the Engine keeps started ahead
// (DefaultPool, none; 0 starts each sandbox when it is needed). A pooled sandbox
// has started, set its resource limits and made its engine, and has read
// nothing else: it serves exactly one Compile or Instantiate and ends with
// it, like any sandbox; one that died while idle is discarded. Engine.Close
// kills the idle ones.
func (c Config) WithPool(n int) Config { c.pool = max(n, 0); return c }

// WithReuse lets a sandbox serve several instances of one module, one after
// the other, when they are started under the same scope (wasm.WithScope):
// after an instance closes cleanly its sandbox waits up to idleFor for the
// next instance of that module and scope, up to uses instances in all, and
// the engine keeps at most idle such sandboxes. Instances without a scope,
// of another scope or of another module never share a sandbox; a sandbox
// whose instance failed, was canceled or ran past its deadline is killed,
// never reused; mock runs (debug output) never reuse. The CPU limit is per
// instance. idle 0 or uses ≤ 1 turns reuse off.
func (c Config) WithReuse(idle int, idleFor time.Duration, uses int) Config {
	c.reuse = reuse{idle: max(idle, 0), idleFor: idleFor, uses: max(uses, 1)}
	return c
}

// WithCommand sets the sandbox command: argv[0] is the executable, the rest
// its arguments. The process is started with EnvChild=1.
func (c Config) WithCommand(argv ...string) Config { c.command = argv; return c }

// WithGrace sets how long past its deadline (or cancellation) a sandbox may
// take to stop by itself before it is killed.
func (c Config) WithGrace(d time.Duration) Config { c.grace = d; return c }

// WithNetworkNamespace turns the new network namespace on or off.
func (c Config) WithNetworkNamespace(on bool) Config { c.netns = on; return c }

// WithLogf sets where notices (a sandbox without its own network
// namespace) go.
func (c Config) WithLogf(f func(format string, args ...any)) Config { c.logf = f; return c }

// WithDebugOutput shows the sandboxes' guest stdout and stderr on w, and
// puts guest-chosen details in errors: mock runs only (see
// wasm.Config.WithDebugOutput).
func (c Config) WithDebugOutput(w io.Writer) Config {
	c.debug = w
	c.wasm = c.wasm.WithDebugOutput(w)
	return c
}

// Engine runs each guest instance in a sandbox process of its own. It
// satisfies wasm.Runtime and is safe for concurrent use.
type Engine struct {
	cfg      Config
	limits   wasm.Limits
	tmpCache string // a compilation cache made for this engine, removed at Close

	netMu   sync.Mutex
	netMode int // 0 unknown, 1 CLONE_NEWNET, 2 CLONE_NEWUSER|CLONE_NEWNET, 3 none
	netNote string
	debugMu sync.Mutex

	poolMu   sync.Mutex
	idle     []*proc // started and configured, never given a module
	starting int     // sandboxes being started for idle
	closed   bool
	fills    sync.WaitGroup

	reuseMu sync.Mutex
	waiting map[string][]*proc // by module hash and scope: sandboxes between instances
	nwait   int
}

var _ wasm.Runtime = (*Engine)(nil)

// NewEngine makes an engine. Without a compilation cache directory in the
// wasm configuration it makes a temporary one, so that a sandbox compiles a
// module once for its check and its instances.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if len(cfg.command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("isolate: %w", err)
		}
		cfg.command = []string{exe, "sandbox"}
	}
	if os.Getenv(EnvChild) != "" {
		return nil, fmt.Errorf("%w: isolate: a sandbox may not start sandboxes (does this binary call isolate.ServeIfChild first?)", cove.ErrInvalid)
	}
	switch cfg.engine {
	case "":
		cfg.engine = EngineWazero
	case EngineWazero:
	case EngineWasmer:
		if !haveWasmer {
			return nil, fmt.Errorf("%w: isolate: engine %q needs a binary built with -tags wasmer", cove.ErrInvalid, cfg.engine)
		}
	default:
		return nil, fmt.Errorf("%w: isolate: unknown engine %q", cove.ErrInvalid, cfg.engine)
	}
	e := &Engine{cfg: cfg, limits: cfg.wasm.Limits()}
	if e.limits.CacheDir == "" {
		dir, err := os.MkdirTemp("", "cove-isolate-cache-")
		if err != nil {
			return nil, err
		}
		e.tmpCache, e.limits.CacheDir = dir, dir
	}
	if _, err := wasm.NewEngine(ctx, cfg.wasm.WithMaxModuleBytes(max(e.limits.MaxModuleBytes, 8))); err != nil {
		e.Close(ctx)
		return nil, err // validates the configuration
	}
	e.refill()
	return e, nil
}

// Close kills the idle sandboxes and removes the engine's temporary
// compilation cache. Sandboxes of instances still open keep running until
// closed.
func (e *Engine) Close(ctx context.Context) error {
	e.poolMu.Lock()
	e.closed = true
	idle := e.idle
	e.idle = nil
	e.poolMu.Unlock()
	e.reuseMu.Lock()
	for _, ps := range e.waiting {
		idle = append(idle, ps...)
	}
	e.waiting, e.nwait = nil, 0
	e.reuseMu.Unlock()
	for _, p := range idle {
		p.kill()
		<-p.done
		p.closeFiles()
	}
	e.fills.Wait() // sandboxes being started see closed and end themselves
	if e.tmpCache != "" {
		return os.RemoveAll(e.tmpCache)
	}
	return nil
}

// Isolation describes the network isolation sandboxes get here ("" before
// the first sandbox started).
func (e *Engine) Isolation() string {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	return e.netNote
}

// module is a module a sandbox compiled and checked.
type module struct {
	e    *Engine
	bin  []byte
	hash string
}

// Compile checks the module in a sandbox: the sandbox compiles it (into the
// compilation cache, keyed by the module's sha256) and checks its imports
// and exports against ABI v1.
func (e *Engine) Compile(ctx context.Context, bin []byte) (wasm.Module, error) {
	if len(bin) > e.limits.MaxModuleBytes {
		return nil, fmt.Errorf("%w: module of %d bytes exceeds %d bytes", cove.ErrLimit, len(bin), e.limits.MaxModuleBytes)
	}
	p, err := e.start(ctx, bin)
	if err != nil {
		return nil, err
	}
	p.close()
	h := ModuleHash(bin)
	return &module{e: e, bin: bin, hash: string(h[:])}, nil
}

// Close forgets the module.
func (m *module) Close(ctx context.Context) error { return nil }

// ModuleHash is the sha256 of the module: the compilation cache's key.
func ModuleHash(bin []byte) [32]byte { return sha256.Sum256(bin) }

// Instantiate starts a sandbox for a new instance, or takes one that
// served an earlier instance of this module and ctx's scope
// (Config.WithReuse).
func (m *module) Instantiate(ctx context.Context, outputs []string) (wasm.Instance, error) {
	key := m.e.reuseKey(ctx, m.hash)
	p := m.e.takeWaiting(key)
	if p == nil {
		var err error
		if p, err = m.e.start(ctx, m.bin); err != nil {
			return nil, err
		}
	}
	p.uses++
	out, err := json.Marshal(outputs)
	if err != nil {
		p.close()
		return nil, err
	}
	i := &instance{p: p, outputs: len(outputs), key: key}
	if err := i.call(ctx, msgInstantiate, deadlineBytes(ctx), out); err != nil {
		p.close()
		return nil, err
	}
	return i, nil
}

// reuseKey is the key under which sandboxes of module hash and ctx's scope
// wait between instances: "" when they may not be reused.
func (e *Engine) reuseKey(ctx context.Context, hash string) string {
	scope := wasm.Scope(ctx)
	if scope == "" || e.limits.Debug || e.cfg.reuse.idle == 0 || e.cfg.reuse.uses <= 1 {
		return ""
	}
	return hash + "\x00" + scope
}

// takeWaiting returns a live sandbox waiting under key, or nil.
func (e *Engine) takeWaiting(key string) *proc {
	if key == "" {
		return nil
	}
	e.reuseMu.Lock()
	defer e.reuseMu.Unlock()
	for ps := e.waiting[key]; len(ps) > 0; ps = e.waiting[key] {
		p := ps[len(ps)-1]
		e.unwait(key, p)
		select {
		case <-p.done:
			p.closeFiles()
		default:
			return p
		}
	}
	return nil
}

// unwait removes p from the sandboxes waiting under key; the caller holds
// reuseMu. It reports whether p was there.
func (e *Engine) unwait(key string, p *proc) bool {
	ps := e.waiting[key]
	for j, q := range ps {
		if q == p {
			ps = append(ps[:j], ps[j+1:]...)
			if len(ps) == 0 {
				delete(e.waiting, key)
			} else {
				e.waiting[key] = ps
			}
			e.nwait--
			return true
		}
	}
	return false
}

// wait keeps p, whose instance closed cleanly, for the next instance under
// key for up to idleFor. When the engine keeps its limit of waiting
// sandboxes already, p ends instead: the ones waiting stay (evicting the
// oldest would make operators taking turns, more of them than the limit,
// evict each other's sandboxes and reuse none).
func (e *Engine) wait(key string, p *proc) {
	e.reuseMu.Lock()
	e.poolMu.Lock()
	closed := e.closed // Close sets it before it empties waiting
	e.poolMu.Unlock()
	if closed || e.nwait >= e.cfg.reuse.idle {
		e.reuseMu.Unlock()
		p.close()
		return
	}
	if e.waiting == nil {
		e.waiting = map[string][]*proc{}
	}
	e.waiting[key] = append(e.waiting[key], p)
	e.nwait++
	e.reuseMu.Unlock()
	time.AfterFunc(e.cfg.reuse.idleFor, func() {
		e.reuseMu.Lock()
		gone := e.unwait(key, p)
		e.reuseMu.Unlock()
		if gone {
			p.close()
		}
	})
}

func deadlineBytes(ctx context.Context) []byte {
	var b [8]byte
	if d, ok := ctx.Deadline(); ok {
		binary.LittleEndian.PutUint64(b[:], uint64(d.UnixNano()))
	}
	return b[:]
}

// instance is a guest instance in its sandbox.
type instance struct {
	mu      sync.Mutex
	p       *proc
	outputs int
	keys    []string
	emits   int64
	failed  error
	buf     []byte
	rows    int    // rows of the batch being processed
	key     string // the reuse key ("" none): its sandbox may serve another instance
}

func (i *instance) KeyName(id uint32) string {
	if int64(id) >= int64(len(i.keys)) {
		return ""
	}
	return i.keys[id]
}

func (i *instance) Emits() int64 { return i.emits }

// Close ends the instance. A sandbox that may be reused (Config.WithReuse)
// and whose instance never failed closes the instance itself and waits for
// the next; any other sandbox ends.
func (i *instance) Close(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failed != nil {
		return nil // closed with the failure
	}
	i.failed = fmt.Errorf("%w: instance is closed", cove.ErrGuest)
	e := i.p.e
	if i.key != "" && i.p.uses < e.cfg.reuse.uses && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resetWait)
		err := i.p.do(rctx, func() error {
			if err := writeFrame(i.p.in, msgReset); err != nil {
				return i.p.died(rctx, err)
			}
			return i.p.reply(rctx)
		})
		cancel()
		if err == nil {
			e.wait(i.key, i.p)
			return nil
		}
	}
	i.p.close()
	return nil
}

// resetWait bounds how long a sandbox may take to close an instance before
// it waits for the next: a guest has no code that runs at close.
const resetWait = time.Second

// ProcessBatch is ProcessBatchRuns with ranged emissions expanded into the
// listed form.
func (i *instance) ProcessBatch(ctx context.Context, rec arrow.RecordBatch, emit func(wasm.Emission) error) error {
	return i.ProcessBatchRuns(ctx, rec, wasm.ExpandRuns(emit))
}

// ProcessBatchRuns sends rec to the sandbox as Arrow IPC and relays its
// emissions to emit, ranged ones as ranged.
func (i *instance) ProcessBatchRuns(ctx context.Context, rec arrow.RecordBatch, emit func(wasm.Emission) error) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failed != nil {
		return fmt.Errorf("%w: instance failed earlier and is closed", cove.ErrGuest)
	}
	var body bytes.Buffer
	w := ipc.NewWriter(&body, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("%w: batch: %v", cove.ErrInvalid, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	i.rows = int(rec.NumRows())
	return i.callEmit(ctx, emit, msgBatch, deadlineBytes(ctx), body.Bytes())
}

func (i *instance) call(ctx context.Context, typ byte, parts ...[]byte) error {
	return i.callEmit(ctx, nil, typ, parts...)
}

// callEmit sends one request and reads frames until its answer; any failure
// ends the sandbox.
func (i *instance) callEmit(ctx context.Context, emit func(wasm.Emission) error, typ byte, parts ...[]byte) error {
	err := i.p.do(ctx, func() error {
		if err := writeFrame(i.p.in, typ, parts...); err != nil {
			return i.p.died(ctx, err)
		}
		for {
			t, b, err := readFrame(i.p.out, i.buf, maxFrame)
			i.buf = b
			if err != nil {
				return i.p.died(ctx, err)
			}
			switch t {
			case msgOK:
				return nil
			case msgError:
				return decodeError(b)
			case msgKeys:
				if err := i.addKeys(b); err != nil {
					return err
				}
			case msgEmission, msgRuns:
				var em wasm.Emission
				if t == msgEmission {
					em, err = decodeEmission(b)
				} else {
					em, err = i.decodeRuns(b)
				}
				if err != nil {
					return err
				}
				if em.Output >= i.outputs {
					return fmt.Errorf("%w: isolate: emission to output %d of %d", cove.ErrGuest, em.Output, i.outputs)
				}
				for _, k := range em.Keys {
					if int64(k) >= int64(len(i.keys)) {
						return fmt.Errorf("%w: isolate: emission names key %d before the sandbox sent it", cove.ErrGuest, k)
					}
				}
				i.emits += em.Len()
				if emit == nil {
					return fmt.Errorf("%w: isolate: emission outside a batch", cove.ErrGuest)
				}
				if err := emit(em); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: isolate: unexpected frame %q", cove.ErrGuest, t)
			}
		}
	})
	if err != nil {
		i.failed = err
		i.p.close()
	}
	return err
}

func (i *instance) addKeys(b []byte) error { return addKeys(&i.keys, b) }

// addKeys appends the keys of a msgKeys frame to keys; the frame's first
// id must be len(*keys).
func addKeys(keys *[]string, b []byte) error {
	if len(b) < 4 || int(binary.LittleEndian.Uint32(b)) != len(*keys) {
		return fmt.Errorf("%w: isolate: keys out of order", cove.ErrGuest)
	}
	b = b[4:]
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: isolate: bad key frame", cove.ErrGuest)
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n > len(b)-4 {
			return fmt.Errorf("%w: isolate: bad key frame", cove.ErrGuest)
		}
		*keys = append(*keys, string(b[4:4+n]))
		b = b[4+n:]
	}
	return nil
}

func decodeEmission(b []byte) (wasm.Emission, error) {
	if len(b) < 8 {
		return wasm.Emission{}, fmt.Errorf("%w: isolate: short emission", cove.ErrGuest)
	}
	out, n := binary.LittleEndian.Uint32(b), int(binary.LittleEndian.Uint32(b[4:]))
	if n > (len(b)-8)/16 || len(b) != 8+16*n || out > math.MaxInt32 {
		return wasm.Emission{}, fmt.Errorf("%w: isolate: bad emission", cove.ErrGuest)
	}
	return wasm.Emission{
		Output: int(out),
		Rows:   u32s(b[8 : 8+4*n]),
		Keys:   u32s(b[8+4*n : 8+8*n]),
		Values: f64s(b[8+8*n : 8+16*n]),
	}, nil
}

// decodeRuns checks and reads a ranged emission (msgRuns) of the current
// batch: views into b.
func (i *instance) decodeRuns(b []byte) (wasm.Emission, error) {
	bad := fmt.Errorf("%w: isolate: bad ranged emission", cove.ErrGuest)
	if len(b) < runsHeader {
		return wasm.Emission{}, bad
	}
	le := binary.LittleEndian
	out, rows, nruns, flags := le.Uint32(b), int(le.Uint32(b[4:])), int(le.Uint32(b[8:])), le.Uint32(b[12:])
	if out > math.MaxInt32 || rows != i.rows || flags > 1 || nruns > rows {
		return wasm.Emission{}, bad
	}
	nw, nv := (rows+63)/64, 0
	if flags == 1 {
		nv = rows
	}
	if len(b) != runsHeader+8*nw+8*nv+12*nruns {
		return wasm.Emission{}, bad
	}
	b = b[runsHeader:]
	em := wasm.Emission{Output: int(out), Select: leView[uint64](b, nw)}
	b = b[8*nw:]
	if flags == 1 {
		em.ByRow = leView[float64](b, nv)
		b = b[8*nv:]
	}
	em.Runs = leView[wasm.Run](b, nruns)
	end := uint32(0)
	for _, r := range em.Runs {
		if r.Start < end || r.End <= r.Start || int64(r.End) > int64(rows) {
			return wasm.Emission{}, bad
		}
		if int64(r.Key) >= int64(len(i.keys)) {
			return wasm.Emission{}, fmt.Errorf("%w: isolate: emission names key %d before the sandbox sent it", cove.ErrGuest, r.Key)
		}
		end = r.End
	}
	return em, nil
}

// u32s and f64s read little-endian arrays (the frame buffer is 8-aligned
// where it matters only on little-endian hosts, so copy otherwise).
func u32s(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func f64s(b []byte) []float64 {
	out := make([]float64, len(b)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

func decodeError(b []byte) error {
	var we wireError
	if err := json.Unmarshal(b, &we); err != nil {
		return fmt.Errorf("%w: isolate: bad error frame", cove.ErrGuest)
	}
	if we.NoPlan {
		return wasm.ErrNoPlanExport
	}
	if we.Kind != "" {
		return wasm.NewGuestError(wasm.Kind(we.Kind), we.Phase, we.Msg)
	}
	for _, s := range []error{cove.ErrInvalid, cove.ErrLimit, cove.ErrDeadline, cove.ErrGuest} {
		if cove.Code(s) == we.Code {
			return fmt.Errorf("%w: %s", s, we.Msg)
		}
	}
	return fmt.Errorf("%w: %s", cove.ErrGuest, we.Msg)
}

// proc is one sandbox process.
type proc struct {
	e      *Engine
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	done   chan struct{} // closed when the process has exited
	status error         // Wait's result, set before done closes
	once   sync.Once
	killed time.Time
	uses   int // instances started in it
}

// start takes an idle sandbox, or starts and configures one, and has it
// compile bin.
func (e *Engine) start(ctx context.Context, bin []byte) (*proc, error) {
	p := e.take()
	if p == nil {
		var err error
		if p, err = e.prepare(ctx); err != nil {
			return nil, err
		}
	}
	err := p.do(ctx, func() error {
		if err := writeFrame(p.in, msgModule, bin); err != nil {
			return p.died(ctx, err)
		}
		return p.reply(ctx)
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// take returns an idle sandbox, discarding those that died while idle, or
// nil when there is none, and starts replacements.
func (e *Engine) take() *proc {
	e.poolMu.Lock()
	var p *proc
	var dead []*proc
	for p == nil && len(e.idle) > 0 {
		q := e.idle[0]
		e.idle = e.idle[1:]
		select {
		case <-q.done:
			dead = append(dead, q)
		default:
			p = q
		}
	}
	e.poolMu.Unlock()
	for _, q := range dead {
		q.closeFiles()
	}
	e.refill()
	return p
}

// refill starts sandboxes in the background until the pool is full again.
func (e *Engine) refill() {
	e.poolMu.Lock()
	need := 0
	if !e.closed {
		need = e.cfg.pool - len(e.idle) - e.starting
	}
	e.starting += max(need, 0)
	e.fills.Add(max(need, 0))
	e.poolMu.Unlock()
	for range need {
		go func() {
			defer e.fills.Done()
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.startupWait)
			p, err := e.prepare(ctx)
			cancel()
			e.poolMu.Lock()
			e.starting--
			if err == nil && !e.closed {
				e.idle = append(e.idle, p)
				p = nil
			}
			e.poolMu.Unlock()
			if p != nil {
				p.close()
			}
		}()
	}
}

// prepare starts a sandbox and configures it: it sets its limits and makes
// its engine before it reads anything else.
func (e *Engine) prepare(ctx context.Context) (*proc, error) {
	p := &proc{e: e, done: make(chan struct{})}
	if err := e.spawn(p); err != nil {
		return nil, err
	}
	hl := hello{Limits: e.limits, Engine: e.cfg.engine, AddressSpace: uint64(e.limits.MemoryLimitPages)*65536 + e.cfg.asSlack,
		CPUSeconds: uint64(math.Ceil((e.limits.Deadline + e.cfg.grace).Seconds())) + 1, Uses: e.cfg.reuse.uses}
	if e.cfg.engine == EngineWasmer {
		hl.AddressSpace += wasmerReserve
	}
	cfgJSON, _ := json.Marshal(hl)
	err := p.do(ctx, func() error {
		if err := writeFrame(p.in, msgConfig, cfgJSON); err != nil {
			return p.died(ctx, err)
		}
		return p.reply(ctx)
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// reply reads the answer to a request that gets OK or an error.
func (p *proc) reply(ctx context.Context) error {
	t, b, err := readFrame(p.out, nil, 1<<20)
	if err != nil {
		return p.died(ctx, err)
	}
	switch t {
	case msgOK:
		return nil
	case msgError:
		return decodeError(b)
	}
	return fmt.Errorf("%w: isolate: unexpected frame %q", cove.ErrGuest, t)
}

// spawn starts the process with a new network namespace where the OS lets
// it, falling back (once, with a notice) where it does not.
func (e *Engine) spawn(p *proc) error {
	e.netMu.Lock()
	mode := e.netMode
	e.netMu.Unlock()
	if !e.cfg.netns || !haveNetNS {
		mode = 3
	}
	try := []int{mode}
	if mode == 0 {
		try = []int{1, 2, 3}
	}
	var firstErr error
	for _, m := range try {
		err := e.spawnMode(p, m)
		if err == nil {
			e.netMu.Lock()
			if e.netMode == 0 || !e.cfg.netns {
				e.netMode = m
				e.netNote = [...]string{"", "new network namespace", "new user and network namespaces", "shared network namespace"}[m]
				if m == 3 && e.cfg.netns {
					e.netNote += fmt.Sprintf(" (the OS refused a new one: %v)", firstErr)
					if e.cfg.logf != nil {
						e.cfg.logf("cove isolate: notice: sandboxes run without their own network namespace: %v; they still have no network imports, but a guest escaping WebAssembly would share the host's network", firstErr)
					}
				}
			}
			e.netMu.Unlock()
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("isolate: start sandbox: %w", err)
		}
	}
	return fmt.Errorf("isolate: start sandbox: %w", firstErr)
}

func (e *Engine) spawnMode(p *proc, mode int) error {
	cmd := exec.Command(e.cfg.command[0], e.cfg.command[1:]...)
	// GOGC 400: a sandbox's garbage is mostly the batches it decoded, and
	// collecting less often saves ~15% of a small job's sandbox CPU; the
	// soft memory limit, the guest's cap and 128 MiB, makes it collect
	// harder before it grows far past what the guest itself may use.
	memLimit := uint64(e.limits.MemoryLimitPages)*65536 + 128<<20
	cmd.Env = []string{EnvChild + "=1", "GOMAXPROCS=2", "GOTRACEBACK=none", "GOGC=400", "GOMEMLIMIT=" + strconv.FormatUint(memLimit, 10)}
	cmd.SysProcAttr = sysProcAttr(mode)
	// Three pipes, and nothing else: exec.Cmd passes no other descriptor.
	var parentEnds, childEnds []*os.File
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(parentEnds, childEnds)
			return err
		}
		if len(childEnds) == 0 {
			childEnds, parentEnds = append(childEnds, r), append(parentEnds, w) // stdin
		} else {
			childEnds, parentEnds = append(childEnds, w), append(parentEnds, r) // stdout, stderr
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = childEnds[0], childEnds[1], childEnds[2]
	if err := cmd.Start(); err != nil {
		closeAll(parentEnds, childEnds)
		return err
	}
	closeAll(childEnds)
	p.cmd, p.in, p.out = cmd, parentEnds[0], parentEnds[1]
	go p.drain(parentEnds[2])
	go func() {
		p.status = cmd.Wait()
		close(p.done)
	}()
	return nil
}

func closeAll(groups ...[]*os.File) {
	for _, g := range groups {
		for _, f := range g {
			_ = f.Close()
		}
	}
}

// drain reads the sandbox's stderr: guest output on mock runs, else
// discarded. At most DefaultMaxDebugBytes reach the debug writer.
func (p *proc) drain(r io.ReadCloser) {
	defer r.Close()
	w := p.e.cfg.debug
	left := int64(wasm.DefaultMaxDebugBytes)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && w != nil && left > 0 {
			chunk := buf[:min(int64(n), left)]
			left -= int64(len(chunk))
			p.e.debugMu.Lock()
			_, _ = w.Write(chunk)
			p.e.debugMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// do runs f, the parent's side of one exchange, under the watchdog: when
// ctx is done the sandbox gets SIGTERM (it stops its guest itself), and
// SIGKILL grace later if it has not answered.
func (p *proc) do(ctx context.Context, f func() error) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-stop:
			return
		case <-p.done:
			return
		case <-ctx.Done():
			// Both may be ready when the caller cancels ctx right after f
			// (a pooled sandbox's start does): select picks at random, so
			// look at stop again, or a sandbox that finished its exchange
			// gets a stray SIGTERM that cancels its next one.
			select {
			case <-stop:
				return
			default:
			}
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(p.e.cfg.grace)
		defer t.Stop()
		select {
		case <-stop:
		case <-p.done:
		case <-t.C:
			p.kill()
		}
	}()
	return f()
}

func (p *proc) kill() {
	p.once.Do(func() { p.killed = time.Now() })
	_ = p.cmd.Process.Kill()
}

// died explains a broken pipe: the deadline or cancellation when ctx is
// done, else the sandbox's exit.
func (p *proc) died(ctx context.Context, ioErr error) error {
	p.kill()
	<-p.done
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return wasm.NewGuestError(wasm.KindDeadline, "sandbox", "guest stopped at the deadline (sandbox killed)")
		}
		return wasm.NewGuestError(wasm.KindCanceled, "sandbox", "guest stopped: the run was canceled (sandbox killed)")
	}
	msg := "sandbox process ended"
	var ee *exec.ExitError
	if errors.As(p.status, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			msg += " by signal " + ws.Signal().String()
			if ws.Signal() == syscall.SIGXCPU {
				return wasm.NewGuestError(wasm.KindDeadline, "sandbox", "guest used up its CPU time limit (sandbox killed)")
			}
		} else if p.e.limits.Debug {
			msg += fmt.Sprintf(" with code %d", ee.ExitCode())
		}
	}
	if p.e.limits.Debug {
		msg += fmt.Sprintf(" (%v)", ioErr)
	}
	return wasm.NewGuestError(wasm.KindExit, "sandbox", msg)
}

// close ends the process: closing stdin asks it to exit, SIGKILL makes sure.
func (p *proc) close() {
	_ = p.in.Close()
	select {
	case <-p.done:
	case <-time.After(100 * time.Millisecond):
		p.kill()
		<-p.done
	}
	_ = p.out.Close()
}

// closeFiles closes the parent's pipe ends of a process that has exited.
func (p *proc) closeFiles() {
	_ = p.in.Close()
	_ = p.out.Close()
}

// probe asks the sandbox what it sees (tests).
func (i *instance) probe(ctx context.Context) (Probe, error) {
	var pr Probe
	err := i.p.do(ctx, func() error {
		if err := writeFrame(i.p.in, msgProbe); err != nil {
			return err
		}
		t, b, err := readFrame(i.p.out, nil, 1<<20)
		if err != nil || t != msgOK {
			return fmt.Errorf("probe: %v (frame %q)", err, t)
		}
		return json.Unmarshal(b, &pr)
	})
	return pr, err
}
