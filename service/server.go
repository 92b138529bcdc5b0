package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/report"
	"github.com/covedata/cove/runtime/isolate"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// Defaults of Options.
const (
	DefaultWorkers          = 2
	DefaultMaxModuleBytes   = 8 << 20 // a job's module
	DefaultMaxBodyBytes     = 1 << 20 // any JSON body but a job submission
	DefaultGuestMemoryPages = 1024    // 64 MiB of linear memory per running guest
	DefaultJobDeadline      = 60 * time.Second
	MaxWait                 = 60 * time.Second // longest long poll
	// DefaultSandboxPool: no idle sandboxes kept ahead (isolate.DefaultPool
	// says why).
	DefaultSandboxPool = 0
)

// Options configures a Server. The zero value of each field means its default.
type Options struct {
	// DataDir holds the state (cove.db), the ledger key, the token store
	// (tokens.db), the compilation cache and the datasets' files.
	DataDir string
	// Workers is how many jobs run at once.
	Workers int
	// JobDeadline bounds one job's run.
	JobDeadline time.Duration
	// MaxModuleBytes bounds a submitted module; MaxBodyBytes every other body.
	MaxModuleBytes int64
	MaxBodyBytes   int64
	// GuestMemoryPages caps each guest's linear memory (64 KiB pages).
	GuestMemoryPages uint32
	// Prices prices statements; zero means report.DefaultPrices.
	Prices *report.Prices
	// Logger receives the service log; nil means slog.Default().
	Logger *slog.Logger
	// MaxHEBytes bounds the binary bodies of the HE routes (keygen shares,
	// operator keys, key-switch shares, encrypted queries);
	// MaxHEColumnBytes an encrypted column.
	MaxHEBytes       int64
	MaxHEColumnBytes int64
	// HEShareWait bounds how long an HE release waits for each key
	// holder's key-switch share (jobs.DefaultShareWait when zero); past it
	// the job fails, refunded.
	HEShareWait time.Duration
	// InProcessGuests runs guests in the server's own process (wazero
	// only) instead of a sandbox process per instance (runtime/isolate, the
	// default). For development and for tests under the race detector,
	// whose binary does not fit a sandbox's address-space limit: a guest
	// that escaped wazero would share the server's memory and descriptors.
	InProcessGuests bool
	// SandboxPool is how many idle sandboxes are kept started ahead
	// (isolate.Config.WithPool); 0 or negative: none (DefaultSandboxPool).
	SandboxPool int
	// NoSandboxReuse starts a new sandbox for every guest instance. By
	// default a sandbox serves the next guest of the same operator, module,
	// dataset and columns (isolate.Config.WithReuse and its defaults).
	NoSandboxReuse bool
	// LedgerVerifyEvery is how often the whole ledger is verified again
	// in the background; between, reports extend the verified view with
	// the new entries only.
	LedgerVerifyEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.JobDeadline <= 0 {
		o.JobDeadline = DefaultJobDeadline
	}
	if o.MaxModuleBytes <= 0 {
		o.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.GuestMemoryPages == 0 {
		o.GuestMemoryPages = DefaultGuestMemoryPages
	}
	if o.Prices == nil {
		p := report.DefaultPrices
		o.Prices = &p
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxHEBytes <= 0 {
		o.MaxHEBytes = DefaultMaxHEBytes
	}
	if o.MaxHEColumnBytes <= 0 {
		o.MaxHEColumnBytes = DefaultMaxHEColumnBytes
	}
	if o.LedgerVerifyEvery <= 0 {
		o.LedgerVerifyEvery = DefaultLedgerVerifyEvery
	}
	o.SandboxPool = max(o.SandboxPool, DefaultSandboxPool)
	return o
}

// Server is Cove's HTTP API. Safe for concurrent use.
type Server struct {
	opt     Options
	log     *slog.Logger
	st      *store.Store
	eng     wasm.Runtime
	runner  *jobs.Runner
	tokens  *Tokens
	sched   *Scheduler
	modules *modules
	ledger  *ledgerView
	// moduleReads holds a slot per request body being read that may
	// carry a module (maxModuleReads).
	moduleReads chan struct{}
	// shares parks HE key-switch requests for the key holders (the
	// Runner's share source); heReads holds a slot per binary HE body
	// being read (maxHEReads).
	shares  *jobs.ShareBox
	heReads chan struct{}
	hub     *hub
	metrics *metrics
	mux     *http.ServeMux
	// registered lists the patterns given to mux, for the OpenAPI test.
	registered []string

	runCtx    context.Context
	stopRuns  context.CancelFunc
	bg        sync.WaitGroup // background verification
	closeOnce sync.Once
}

// New opens the data directory's state, recovers jobs a crash interrupted,
// and queues the admitted ones. Call Start to run jobs, Close at the end.
func New(ctx context.Context, opt Options) (*Server, error) {
	opt = opt.withDefaults()
	if opt.DataDir == "" {
		return nil, fmt.Errorf("%w: service needs a data directory", cove.ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Join(opt.DataDir, "datasets"), 0o755); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(opt.DataDir, "cove.db"))
	if err != nil {
		return nil, err
	}
	toks, err := OpenTokens(ctx, filepath.Join(opt.DataDir, TokensFile))
	if err != nil {
		st.Close()
		return nil, err
	}
	wcfg := wasm.NewConfig().
		WithMemoryLimitPages(opt.GuestMemoryPages).
		WithMaxModuleBytes(int(opt.MaxModuleBytes)).
		WithCompilationCacheDir(filepath.Join(opt.DataDir, "wasm-cache"))
	var eng wasm.Runtime
	if opt.InProcessGuests {
		eng, err = wasm.NewEngine(ctx, wcfg)
	} else {
		icfg := isolate.NewConfig(wcfg).WithPool(opt.SandboxPool).
			WithLogf(func(format string, args ...any) { opt.Logger.Warn(fmt.Sprintf(format, args...)) })
		if opt.NoSandboxReuse {
			icfg = icfg.WithReuse(0, 0, 1)
		}
		eng, err = isolate.NewEngine(ctx, icfg)
	}
	if err != nil {
		toks.Close()
		st.Close()
		return nil, err
	}
	for _, prep := range []func(context.Context) error{st.PrepareModules, st.IndexLedgerSubjects} {
		if err := prep(ctx); err != nil {
			eng.Close(ctx)
			toks.Close()
			st.Close()
			return nil, err
		}
	}
	shares := jobs.NewShareBox(st, opt.HEShareWait)
	s := &Server{
		opt: opt, log: opt.Logger, st: st, eng: eng, tokens: toks, hub: newHub(), metrics: newMetrics(),
		runner:  jobs.NewRunner(st, eng, jobs.NewConfig().WithDeadline(opt.JobDeadline).WithDataDir(opt.DataDir).WithShareSource(shares)),
		shares:  shares,
		heReads: make(chan struct{}, maxHEReads),
	}
	s.modules = newModules(eng, 4*opt.MaxModuleBytes)
	s.moduleReads = make(chan struct{}, maxModuleReads)
	s.ledger = newLedgerView(st, s.log.Error)
	// A ledger that does not verify does not stop the service: the
	// reports that rest on it answer ledger_failure until it verifies.
	s.ledger.verifyAll(ctx)
	s.runCtx, s.stopRuns = context.WithCancel(context.WithoutCancel(ctx))
	s.sched = NewScheduler(opt.Workers, s.execute)
	s.routes()
	if err := s.recover(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// recover fails the jobs a crash left running (refunded) and queues the
// admitted ones again, oldest first.
func (s *Server) recover(ctx context.Context) error {
	failed, err := s.st.Recover(ctx)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		s.log.Warn("recovered jobs interrupted while running: failed and refunded", "jobs", failed)
	}
	admitted, err := s.st.Jobs(ctx, store.JobFilter{States: []string{store.StateAdmitted}})
	if err != nil {
		return err
	}
	for _, j := range admitted {
		s.sched.Enqueue(j.Operator, j.ID)
	}
	if len(admitted) > 0 {
		s.log.Info("queued admitted jobs again", "jobs", len(admitted))
	}
	return nil
}

// execute is the scheduler's work: run one job to its end.
func (s *Server) execute(ctx context.Context, id string) {
	t0 := time.Now()
	s.hub.notify(id)
	_, err := s.runner.Execute(ctx, id)
	state := store.StateReleased
	if err != nil {
		state = "error"
		if j, gerr := s.st.Job(context.WithoutCancel(ctx), id); gerr == nil {
			state = j.State
		}
		s.log.Info("job ended without release", "job", id, "state", state, "code", cove.Code(err))
	}
	s.metrics.jobEnded(state, time.Since(t0))
	s.hub.notify(id)
}

// Start starts the scheduler's workers and the periodic verification of
// the whole ledger.
func (s *Server) Start() {
	s.sched.Start(s.runCtx)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.ledger.run(s.runCtx, s.opt.LedgerVerifyEvery)
	}()
}

// Handler is the API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Tokens is the server's token store (to issue the first authority token).
func (s *Server) Tokens() *Tokens { return s.tokens }

// Store is the server's state.
func (s *Server) Store() *store.Store { return s.st }

// Close stops the workers (running jobs are stopped: they fail, refunded)
// and closes the state. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stopRuns()
		s.sched.Stop()
		s.bg.Wait()
		s.modules.close(context.Background())
		err = errors.Join(s.eng.Close(context.Background()), s.tokens.Close(), s.st.Close())
	})
	return err
}

// Serve answers on ln until ctx ends, then shuts down gracefully. With
// certFile and keyFile it serves TLS (1.2 or later).
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("%w: TLS certificate: %v", cove.ErrInvalid, err)
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	<-errc
	return err
}

// hub wakes long polls when a job changes.
type hub struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

func newHub() *hub { return &hub{waiters: map[string]chan struct{}{}} }

// wait returns a channel closed at the next change of job id.
func (h *hub) wait(id string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.waiters[id]
	if !ok {
		c = make(chan struct{})
		h.waiters[id] = c
	}
	return c
}

func (h *hub) notify(ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if c, ok := h.waiters[id]; ok {
			close(c)
			delete(h.waiters, id)
		}
	}
}

// limitedBody reads at most n bytes of r's body; more is ErrLimit.
func limitedBody(w http.ResponseWriter, r *http.Request, n int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: body over %d bytes", cove.ErrLimit, n)
	}
	if err != nil {
		return nil, invalidf("reading body: %v", err)
	}
	return b, nil
}
