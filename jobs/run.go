package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/plan"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// Config holds a Runner's settings. It is a value: WithX returns a copy.
type Config struct {
	deadline  time.Duration
	batchRows int
	dataDir   string
	alloc     memory.Allocator
	shares    ShareSource // key holders' key-switch shares, for mechanism he (he.go)
	s3        *connectors.S3
	mock      bool
}

// NewConfig returns the defaults: 60 s per job, 64Ki rows per batch.
func NewConfig() Config {
	return Config{deadline: 60 * time.Second, batchRows: 64 << 10, alloc: memory.DefaultAllocator}
}

// WithDeadline sets how long a job may run, guest and all.
func (c Config) WithDeadline(d time.Duration) Config { c.deadline = d; return c }

// WithBatchRows sets the rows per record batch handed to the guest.
func (c Config) WithBatchRows(n int) Config { c.batchRows = n; return c }

// WithDataDir resolves relative dataset locations against dir.
func (c Config) WithDataDir(dir string) Config { c.dataDir = dir; return c }

// WithS3 sets the object store that s3:// dataset locations are read from.
func (c Config) WithS3(s3 *connectors.S3) Config { c.s3 = s3; return c }

// WithMockData marks a Runner whose datasets are mock data (cove job run
// --mock): only there may a job run in mode batch, where a guest sees
// whole batches.
func (c Config) WithMockData() Config { c.mock = true; return c }

// WithAllocator sets the Arrow allocator (tests use a checked one).
func (c Config) WithAllocator(a memory.Allocator) Config { c.alloc = a; return c }

// Runner runs jobs. Safe for concurrent use.
type Runner struct {
	cfg    Config
	store  *store.Store
	engine wasm.Runtime

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // by job id
	modules moduleCache
}

// NewRunner composes a store and a WebAssembly runtime: an isolate.Engine
// (each guest in a sandbox process: the production choice) or an in-process
// wasm.Engine.
func NewRunner(st *store.Store, eng wasm.Runtime, cfg Config) *Runner {
	return &Runner{cfg: cfg, store: st, engine: eng, running: map[string]context.CancelCauseFunc{}}
}

// Submission is what an operator sends.
type Submission struct {
	ID       string // idempotency key; empty means a fresh random id
	Operator string
	Manifest []byte
	Module   []byte
	// ModuleSHA256, when set, is the module's hash, computed by a trusted
	// caller (the service hashes uploads as it reads them). With Module nil
	// it names a module the store already holds.
	ModuleSHA256 string
}

// Release is what an operator receives: the enclave's output per declared
// aggregate, with what is needed to read it.
type Release struct {
	Job     string   `json:"job"`
	Grant   string   `json:"grant"`
	Dataset string   `json:"dataset"`
	Mode    string   `json:"mode,omitempty"`
	Epsilon float64  `json:"epsilon"`
	Outputs []Output `json:"outputs"`
	// Failures is, in unit and block modes, the noisy count of units or
	// blocks whose guest call failed (they contributed nothing, or the
	// default vector): which ones, and why, is never told.
	Failures *Failures `json:"failures,omitempty"`
}

// Failures is the noisy count of failed units or blocks (one unit changes
// it by at most one; Laplace noise of ε Epsilon, clamped at 0).
type Failures struct {
	Of          string  `json:"of"` // "units" or "blocks"
	Count       int64   `json:"count"`
	NoiseStdDev float64 `json:"noise_stddev"`
	Epsilon     float64 `json:"epsilon"`
}

// Output is the release of one declared aggregate.
type Output struct {
	Name             string   `json:"name"`
	Aggregate        string   `json:"aggregate"`
	Mechanism        string   `json:"mechanism"`
	Epsilon          float64  `json:"epsilon"`
	Delta            float64  `json:"delta"`
	Lower            float64  `json:"lower,omitempty"`
	Upper            float64  `json:"upper,omitempty"`
	Granularity      float64  `json:"granularity,omitempty"`
	MaxPartitions    int      `json:"max_partitions"`
	MaxContributions int      `json:"max_contributions"`
	GroupBy          []string `json:"group_by"`
	// PrivatePartitions: the rows are the groups private partition selection
	// kept; Suppressed is a noisy count of those it did not release.
	PrivatePartitions     bool    `json:"private_partitions,omitempty"`
	Suppressed            int64   `json:"suppressed,omitempty"`
	SuppressedNoiseStdDev float64 `json:"suppressed_noise_stddev,omitempty"`
	Rows                  []Row   `json:"rows"`
	// HE is set for mechanism he: the result encrypted to the operator's key.
	HE *HEOutput `json:"he,omitempty"`
}

// Row is one partition's released value (one per rank for quantiles, per
// bucket for histograms).
type Row struct {
	Key         []string `json:"key"`
	Rank        *float64 `json:"rank,omitempty"`
	Bucket      string   `json:"bucket,omitempty"`
	Value       float64  `json:"value"`
	NoiseStdDev float64  `json:"noise_stddev"`
	CILow       float64  `json:"ci95_low"`
	CIHigh      float64  `json:"ci95_high"`
	NoCI        bool     `json:"no_ci,omitempty"` // quantiles: the library gives no interval
}

// Metering is what a run consumed, as recorded in the ledger. It holds
// nothing derived from data values: rows and bytes are those of the whole
// snapshot read, and times are rounded to 100 ms to blunt them as a channel.
type Metering struct {
	DatasetSHA256 string `json:"dataset_sha256"`
	// DatasetObjects names exactly what was read from an object store (key,
	// size, ETag, version): the release's lineage.
	DatasetObjects []connectors.Object `json:"dataset_objects,omitempty"`
	Rows           int64               `json:"rows"`
	Bytes          int64               `json:"bytes"`
	Batches        int                 `json:"batches"`
	WallSeconds    float64             `json:"wall_seconds"`
	GuestSeconds   float64             `json:"guest_seconds"`
	Epsilon        float64             `json:"epsilon"`
}

// Submit records a job and has it admitted: it returns the stored job
// (admitted, or in review) or the rejection. A submission whose id is
// already known is answered from the store: the same job, or ErrExists.
//
// A plan-mode job's plan is built here, before anything is recorded: from
// the manifest, or from the module's planning call (which sees the schema
// only); an invalid plan is refused with every problem listed.
func (r *Runner) Submit(ctx context.Context, sub Submission) (store.Job, error) {
	m, p, hash, err := r.prepare(ctx, sub)
	if err != nil {
		return store.Job{}, err
	}
	if sub.ID == "" {
		sub.ID = newJobID()
	}
	job := store.Job{
		ID: sub.ID, Operator: sub.Operator, Grant: m.lit.Grant, Dataset: m.lit.Dataset,
		Epsilon: m.Epsilon(), Delta: m.Delta(), ManifestSHA256: sha(sub.Manifest), ModuleSHA256: hash,
		ShapeSHA256: m.shape(), Mode: m.lit.Mode,
	}
	var planJSON []byte
	if p != nil {
		planJSON, job.PlanSHA256, job.Plan = p.Canonical(), p.SHA256(), p.Text()
	}
	if err := r.store.SubmitJob(ctx, store.Submission{Job: job, Manifest: sub.Manifest, Module: sub.Module, PlanJSON: planJSON}); err != nil {
		if errors.Is(err, cove.ErrExists) {
			return r.same(ctx, job)
		}
		return store.Job{}, err
	}
	if _, err := r.store.Admit(ctx, m.request(job.ID, job.Operator, p)); err != nil {
		return store.Job{}, err
	}
	return r.store.Job(ctx, job.ID)
}

// prepare validates a submission: the manifest, the module's presence for
// the mode, and for plan mode the plan. It returns the module's hash ("" for
// a plan job written in its manifest).
func (r *Runner) prepare(ctx context.Context, sub Submission) (*Manifest, *plan.Plan, string, error) {
	m, err := ParseManifest(sub.Manifest)
	if err != nil {
		return nil, nil, "", err
	}
	if m.lit.Mode == ModeBatch && !r.cfg.mock {
		return nil, nil, "", fmt.Errorf("%w: mode batch runs on mock data only (a guest that sees whole batches can copy one unit's data onto others): on real data use mode plan, unit or block", cove.ErrOutOfScope)
	}
	hash := sub.ModuleSHA256
	switch {
	case hash == "" && len(sub.Module) > 0:
		hash = sha(sub.Module)
	case hash != "" && sub.Module == nil:
		if ok, err := r.store.ModuleStored(ctx, hash); err != nil {
			return nil, nil, "", err
		} else if !ok {
			return nil, nil, "", fmt.Errorf("%w: module %s", cove.ErrNotFound, hash)
		}
	}
	if hash == "" && m.lit.Mode != ModePlan {
		return nil, nil, "", fmt.Errorf("%w: mode %s runs a module: the submission has none", cove.ErrInvalid, m.lit.Mode)
	}
	if m.lit.Mode != ModePlan {
		return m, nil, hash, nil
	}
	d, err := r.store.Dataset(ctx, m.lit.Dataset)
	if errors.Is(err, cove.ErrNotFound) {
		return m, nil, hash, nil // admission rejects it, recorded
	} else if err != nil {
		return nil, nil, "", err
	}
	module := moduleBytes(func() ([]byte, error) { return r.store.Module(ctx, hash) })
	if sub.Module != nil {
		module = inline(sub.Module)
	}
	p, err := r.jobPlan(ctx, m, d, hash, module)
	if err != nil {
		return nil, nil, "", err
	}
	return m, p, hash, nil
}

// DryRun answers what Submit would — the manifest's and the module's
// validity, the plan, and admission's decision with every violation —
// without recording, reserving or running anything on data.
func (r *Runner) DryRun(ctx context.Context, sub Submission) (policy.Decision, error) {
	m, p, hash, err := r.prepare(ctx, sub)
	if err != nil {
		return policy.Decision{}, err
	}
	if hash != "" && m.lit.Mode != ModePlan {
		// Compiled through the runner's cache: a job submitted after its
		// dry run does not compile again.
		_, done, err := r.modules.get(ctx, r.engine, hash, inline(sub.Module))
		if err != nil {
			return policy.Decision{}, err
		}
		done()
	}
	return r.store.Check(ctx, m.request("dry-run", sub.Operator, p))
}

// request is the admission request of a job.
func (m *Manifest) request(job, operator string, p *plan.Plan) policy.Request {
	cols := slices.Clone(m.lit.Columns)
	if p != nil {
		for _, c := range p.Columns() {
			if !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	for _, o := range m.lit.Outputs {
		// An encrypted column is aggregated by the host, never read by the
		// guest, but the grant must still cover it.
		if o.Column != "" && !slices.Contains(cols, o.Column) {
			cols = append(cols, o.Column)
		}
	}
	return policy.Request{
		Job: job, Operator: operator, Grant: m.lit.Grant, Purpose: m.lit.Purpose, Dataset: m.lit.Dataset,
		Mechanism: m.lit.Mechanism, Columns: cols, UnitColumns: m.lit.PrivacyUnit.Columns, UnitPerRow: m.lit.PrivacyUnit.PerRow,
		GroupBy: m.groupColumns(), Epsilon: m.Epsilon(), Delta: m.Delta(),
	}
}

// same returns the stored job of a resubmitted id, if it is the same job.
func (r *Runner) same(ctx context.Context, job store.Job) (store.Job, error) {
	old, err := r.store.Job(ctx, job.ID)
	if err != nil {
		return old, err
	}
	if old.Operator != job.Operator || old.ManifestSHA256 != job.ManifestSHA256 || old.ModuleSHA256 != job.ModuleSHA256 {
		return old, fmt.Errorf("%w: job %s was submitted with another manifest or module", cove.ErrExists, job.ID)
	}
	return old, nil
}

// Run submits a job and, once admitted, executes it. A job that needs review
// returns ErrInReview (Execute it after approval). A submission whose id was
// already released returns the stored release without running again.
func (r *Runner) Run(ctx context.Context, sub Submission) (*Release, error) {
	job, err := r.Submit(ctx, sub)
	if err != nil {
		return nil, err
	}
	return r.Execute(ctx, job.ID)
}

// Execute runs an admitted job and releases its result. For a job that was
// released already it returns the stored release; it never runs a job twice.
func (r *Runner) Execute(ctx context.Context, id string) (*Release, error) {
	job, err := r.store.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	switch job.State {
	case store.StateReleased:
		return r.Release(ctx, id)
	case store.StateInReview:
		return nil, fmt.Errorf("%w: job %s waits for the authority", cove.ErrInReview, id)
	case store.StateAdmitted:
	case store.StateRunning:
		// Another Execute runs it (or a crash left it, for Recover to end).
		return nil, fmt.Errorf("%w: job %s is running", cove.ErrExists, id)
	default:
		return nil, fmt.Errorf("%w: job %s ended %s: %s", cove.ErrExists, id, job.State, job.Reason)
	}
	manifest, err := r.store.JobManifest(ctx, id)
	if err != nil {
		return nil, err
	}
	module := moduleBytes(func() ([]byte, error) { return r.store.Module(ctx, job.ModuleSHA256) })
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	if err := r.store.Start(ctx, id); err != nil {
		if errors.Is(err, cove.ErrGrantInactive) {
			return nil, r.failed(ctx, job, err, Metering{})
		}
		// Lost a race to another Execute of the same job: leave it alone.
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.running[id] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, id)
		r.mu.Unlock()
	}()
	rel, meter, err := r.execute(ctx, job, m, module)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return nil, r.failed(ctx, job, err, meter)
	}
	body, err := json.Marshal(rel)
	if err != nil {
		return nil, r.failed(ctx, job, err, meter)
	}
	// Recording the outcome must not be undone by the caller's cancellation.
	if err := r.store.Release(context.WithoutCancel(ctx), id, meter, body); err != nil {
		return nil, r.failed(ctx, job, err, meter)
	}
	return rel, nil
}

// failed records a job's failure (refunding it) unless it already ended,
// as a job cancelled by revocation has.
func (r *Runner) failed(ctx context.Context, job store.Job, err error, meter Metering) error {
	rec := context.WithoutCancel(ctx)
	if cur, gerr := r.store.Job(rec, job.ID); gerr == nil && cur.State != store.StateRunning && cur.State != store.StateAdmitted {
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	if ferr := r.store.Fail(rec, job.ID, err.Error(), meter); ferr != nil {
		return errors.Join(fmt.Errorf("job %s: %w", job.ID, err), ferr)
	}
	return fmt.Errorf("job %s: %w", job.ID, err)
}

// Release returns the stored release of a released job.
func (r *Runner) Release(ctx context.Context, id string) (*Release, error) {
	body, err := r.store.StoredRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	var rel Release
	if err := json.Unmarshal(body, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// Review records the authority's decision on a job in review.
func (r *Runner) Review(ctx context.Context, id string, approve bool, reviewer, reason string) error {
	return r.store.Review(ctx, id, approve, reviewer, reason)
}

// Revoke revokes a grant: its jobs are cancelled and refunded, and the
// running ones are stopped at once. The ids of the cancelled jobs are
// returned.
func (r *Runner) Revoke(ctx context.Context, grant, reason string) ([]string, error) {
	ids, err := r.store.RevokeGrant(ctx, grant, reason)
	if err != nil {
		return nil, err
	}
	r.stop(ids, fmt.Errorf("%w: grant %s was revoked", cove.ErrGrantInactive, grant))
	return ids, nil
}

// Cancel cancels one job, refunded, and stops it if it runs.
func (r *Runner) Cancel(ctx context.Context, id, reason string) error {
	if err := r.store.Cancel(ctx, id, reason); err != nil {
		return err
	}
	r.stop([]string{id}, fmt.Errorf("%w: job %s: %s", cove.ErrCancelled, id, reason))
	return nil
}

func (r *Runner) stop(ids []string, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if cancel, ok := r.running[id]; ok {
			cancel(cause)
		}
	}
}

func round100ms(d time.Duration) float64 { return math.Round(d.Seconds()*10) / 10 }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}

// guestScope is the scope a job's guest instance runs in (wasm.WithScope):
// its operator, its dataset and the columns the guest is given. A sandbox
// process that served one guest may serve the next of the same module and
// scope: whatever a guest that escaped WebAssembly could leave behind there
// is data the next one is given anyway, for the same operator.
func guestScope(job store.Job, m *Manifest) string {
	return strings.Join([]string{job.Operator, job.Dataset, strings.Join(m.lit.Columns, "\x1f")}, "\x00")
}
