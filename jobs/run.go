package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/enclave"
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
	Epsilon float64  `json:"epsilon"`
	Outputs []Output `json:"outputs"`
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
func (r *Runner) Submit(ctx context.Context, sub Submission) (store.Job, error) {
	m, err := ParseManifest(sub.Manifest)
	if err != nil {
		return store.Job{}, err
	}
	if sub.ID == "" {
		sub.ID = newJobID()
	}
	switch {
	case sub.ModuleSHA256 == "":
		sub.ModuleSHA256 = sha(sub.Module)
	case sub.Module == nil:
		if ok, err := r.store.ModuleStored(ctx, sub.ModuleSHA256); err != nil {
			return store.Job{}, err
		} else if !ok {
			return store.Job{}, fmt.Errorf("%w: module %s", cove.ErrNotFound, sub.ModuleSHA256)
		}
	}
	job := store.Job{
		ID: sub.ID, Operator: sub.Operator, Grant: m.lit.Grant, Dataset: m.lit.Dataset,
		Epsilon: m.Epsilon(), Delta: m.Delta(), ManifestSHA256: sha(sub.Manifest), ModuleSHA256: sub.ModuleSHA256,
		ShapeSHA256: m.shape(),
	}
	if err := r.store.SubmitJob(ctx, store.Submission{Job: job, Manifest: sub.Manifest, Module: sub.Module}); err != nil {
		if errors.Is(err, cove.ErrExists) {
			return r.same(ctx, job)
		}
		return store.Job{}, err
	}
	if _, err := r.store.Admit(ctx, m.request(job.ID, job.Operator)); err != nil {
		return store.Job{}, err
	}
	return r.store.Job(ctx, job.ID)
}

// DryRun answers what Submit would — the manifest's and the module's
// validity, and admission's decision with every violation — without
// recording, reserving or running anything.
func (r *Runner) DryRun(ctx context.Context, sub Submission) (policy.Decision, error) {
	m, err := ParseManifest(sub.Manifest)
	if err != nil {
		return policy.Decision{}, err
	}
	// Compiled through the runner's cache: a job submitted after its dry run
	// does not compile again.
	_, done, err := r.modules.get(ctx, r.engine, sha(sub.Module), inline(sub.Module))
	if err != nil {
		return policy.Decision{}, err
	}
	done()
	return r.store.Check(ctx, m.request("dry-run", sub.Operator))
}

// request is the admission request of a job.
func (m *Manifest) request(job, operator string) policy.Request {
	cols := slices.Clone(m.lit.Columns)
	for _, o := range m.lit.Outputs {
		// An encrypted column is aggregated by the host, never read by the
		// guest, but the grant must still cover it.
		if o.Column != "" && !slices.Contains(cols, o.Column) {
			cols = append(cols, o.Column)
		}
	}
	return policy.Request{
		Job: job, Operator: operator, Grant: m.lit.Grant, Purpose: m.lit.Purpose, Dataset: m.lit.Dataset,
		Mechanism: m.lit.Mechanism, Columns: cols, UnitColumns: m.lit.PrivacyUnit.Columns,
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
	var rel *Release
	var meter Metering
	if m.lit.Mechanism == policy.MechanismHE {
		rel, meter, err = r.executeHE(ctx, job, m, module)
	} else {
		rel, meter, err = r.execute(ctx, job, m, module)
	}
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

func (r *Runner) execute(ctx context.Context, job store.Job, m *Manifest, module moduleBytes) (*Release, Metering, error) {
	start := time.Now()
	meter := Metering{Epsilon: job.Epsilon}
	defer func() { meter.WallSeconds = round100ms(time.Since(start)) }()
	d, err := r.store.Dataset(ctx, job.Dataset)
	if err != nil {
		return nil, meter, err
	}
	specs := m.Specs()
	accs := make([]*enclave.Accumulator, len(specs))
	partIndex := make([]map[string]int, len(specs))
	for i, s := range specs {
		if accs[i], err = enclave.NewAccumulator(s); err != nil {
			return nil, meter, err
		}
		partIndex[i] = make(map[string]int, len(s.Partitions))
		for p, k := range s.Partitions {
			partIndex[i][k] = p
		}
	}

	mod, done, err := r.modules.get(ctx, r.engine, job.ModuleSHA256, module)
	if err != nil {
		return nil, meter, err
	}
	defer done()
	// The deadline bounds the guest: from its start to its last batch.
	// Compilation is host work, cached by module hash.
	deadline := time.Now().Add(r.cfg.deadline)
	if g, err := r.store.Grant(ctx, job.Grant); err == nil && g.ValidUntil.Before(deadline) {
		deadline = g.ValidUntil // expiry stops the job like a revocation
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	inst, err := mod.Instantiate(wasm.WithScope(ctx, guestScope(job, m)), m.OutputNames())
	if err != nil {
		return nil, meter, err
	}
	defer inst.Close(context.WithoutCancel(ctx))

	unitCols := m.lit.PrivacyUnit.Columns
	read := slices.Clone(m.lit.Columns)
	for _, c := range unitCols {
		if !slices.Contains(read, c) {
			read = append(read, c)
		}
	}
	loc := d.Location
	if !strings.HasPrefix(loc, "s3://") && !strings.HasPrefix(loc, "file://") && !filepath.IsAbs(loc) && r.cfg.dataDir != "" {
		loc = filepath.Join(r.cfg.dataDir, loc)
	}
	rd, err := connectors.Open(ctx, loc, connectors.Options{Columns: read, BatchRows: r.cfg.batchRows, Allocator: r.cfg.alloc, S3: r.cfg.s3})
	if err != nil {
		return nil, meter, err
	}
	defer rd.Release()
	snap := rd.Snapshot()
	meter.DatasetSHA256, meter.Bytes, meter.DatasetObjects = snap.SHA256, snap.Bytes, snap.Objects
	if d.SHA256 != "" && snap.SHA256 != d.SHA256 {
		return nil, meter, fmt.Errorf("%w: dataset %s changed since registration (sha256 %s, registered %s)", cove.ErrInvalid, d.Name, snap.SHA256, d.SHA256)
	}

	units := unitMapper{seed: maphash.MakeSeed()}
	// Key ids are the guest's; partition lookups are cached per output.
	keyPart := make([]map[uint32]int, len(specs))
	for i := range keyPart {
		keyPart[i] = map[uint32]int{}
	}
	var guestTime time.Duration
	var nextRow uint64
	for rd.Next() {
		rec := rd.RecordBatch()
		n := int(rec.NumRows())
		ids, err := units.ids(rec, unitCols, nextRow)
		if err != nil {
			return nil, meter, err
		}
		guestRec := project(rec, len(m.lit.Columns))
		emit := func(e wasm.Emission) error {
			acc, parts, cache := accs[e.Output], partIndex[e.Output], keyPart[e.Output]
			// partition maps a key id to the output's partition, -1 for a
			// key outside the public partitions.
			partition := func(key uint32) (int, error) {
				if p, ok := cache[key]; ok {
					return p, nil
				}
				p := -1
				if specs[e.Output].PrivatePartitions {
					// Keys come from the data; the enclave selects privately
					// which ones are released.
					var err error
					if p, err = acc.Partition(inst.KeyName(key)); err != nil {
						return 0, err
					}
				} else if q, found := parts[inst.KeyName(key)]; found {
					p = q
				}
				cache[key] = p
				return p, nil
			}
			if e.Runs == nil {
				for j, row := range e.Rows {
					p, err := partition(e.Keys[j])
					if err != nil {
						return err
					}
					if p < 0 {
						// A key outside the public partitions is dropped:
						// releasing or reporting it would reveal data.
						continue
					}
					if err := acc.Add(ids[row], p, e.Values[j]); err != nil {
						return err
					}
				}
				return nil
			}
			// Ranged (host kernels): one key per run of rows; each selected
			// row is still its own contribution, bounded per privacy unit.
			for _, run := range e.Runs {
				p, err := partition(run.Key)
				if err != nil {
					return err
				}
				if p < 0 {
					continue
				}
				one := wasm.Emission{Runs: []wasm.Run{run}, Select: e.Select, ByRow: e.ByRow}
				if err := one.Each(func(row, _ uint32, v float64) error { return acc.Add(ids[row], p, v) }); err != nil {
					return err
				}
			}
			return nil
		}
		t0 := time.Now()
		err = inst.ProcessBatchRuns(ctx, guestRec, emit)
		guestTime += time.Since(t0)
		guestRec.Release()
		if err != nil {
			return nil, meter, err
		}
		meter.Rows += int64(n)
		meter.Batches++
		nextRow += uint64(n)
		if len(unitCols) == 0 {
			for _, a := range accs {
				a.Seal(nextRow)
			}
		}
	}
	meter.GuestSeconds = round100ms(guestTime)
	if err := rd.Err(); err != nil {
		return nil, meter, err
	}
	if err := ctx.Err(); err != nil {
		return nil, meter, fmt.Errorf("%w: job %s", cove.ErrDeadline, job.ID)
	}
	rel := &Release{Job: job.ID, Grant: job.Grant, Dataset: job.Dataset, Epsilon: job.Epsilon}
	for i, a := range accs {
		er, err := a.Release()
		if err != nil {
			return nil, meter, err
		}
		rel.Outputs = append(rel.Outputs, outputOf(er, m.lit.Outputs[i]))
	}
	return rel, meter, nil
}

func outputOf(er *enclave.Release, lit OutputLiteral) Output {
	o := Output{
		Name: er.Output, Aggregate: string(er.Aggregate), Mechanism: er.Mechanism, Epsilon: er.Epsilon, Delta: er.Delta,
		Lower: er.Lower, Upper: er.Upper, Granularity: er.Granularity, MaxPartitions: er.MaxPartitions, MaxContributions: er.MaxContributions,
		PrivatePartitions: er.PrivatePartitions, Suppressed: er.Suppressed, SuppressedNoiseStdDev: er.SuppressedNoiseStdDev,
	}
	for _, g := range lit.GroupBy {
		o.GroupBy = append(o.GroupBy, g.Column)
	}
	for _, row := range er.Rows {
		o.Rows = append(o.Rows, Row{Key: strings.Split(row.Key, KeySeparator), Rank: row.Rank, Bucket: row.Bucket, Value: row.Value,
			NoiseStdDev: row.NoiseStdDev, CILow: row.CILow, CIHigh: row.CIHigh, NoCI: row.NoCI})
	}
	return o
}

// project keeps the first n columns: the guest's. The privacy unit columns
// the host appended after them stay on the host.
func project(rec arrow.RecordBatch, n int) arrow.RecordBatch {
	if int(rec.NumCols()) == n {
		rec.Retain()
		return rec
	}
	fields := rec.Schema().Fields()[:n]
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), rec.Columns()[:n], rec.NumRows())
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
