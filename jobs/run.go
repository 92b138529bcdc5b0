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

// WithAllocator sets the Arrow allocator (tests use a checked one).
func (c Config) WithAllocator(a memory.Allocator) Config { c.alloc = a; return c }

// Runner runs jobs. Safe for concurrent use.
type Runner struct {
	cfg    Config
	store  *store.Store
	engine *wasm.Engine
}

// NewRunner composes a store and a WebAssembly engine.
func NewRunner(st *store.Store, eng *wasm.Engine, cfg Config) *Runner {
	return &Runner{cfg: cfg, store: st, engine: eng}
}

// Submission is what an operator sends.
type Submission struct {
	ID       string // idempotency key; empty means a fresh random id
	Operator string
	Manifest []byte
	Module   []byte
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
	MaxPartitions    int      `json:"max_partitions"`
	MaxContributions int      `json:"max_contributions"`
	GroupBy          []string `json:"group_by"`
	Rows             []Row    `json:"rows"`
}

// Row is one partition's released value.
type Row struct {
	Key         []string `json:"key"`
	Value       float64  `json:"value"`
	NoiseStdDev float64  `json:"noise_stddev"`
	CILow       float64  `json:"ci95_low"`
	CIHigh      float64  `json:"ci95_high"`
}

// Metering is what a run consumed, as recorded in the ledger. It holds
// nothing derived from data values: rows and bytes are those of the whole
// snapshot read, and times are rounded to 100 ms to blunt them as a channel.
type Metering struct {
	DatasetSHA256 string  `json:"dataset_sha256"`
	Rows          int64   `json:"rows"`
	Bytes         int64   `json:"bytes"`
	Batches       int     `json:"batches"`
	WallSeconds   float64 `json:"wall_seconds"`
	GuestSeconds  float64 `json:"guest_seconds"`
	Epsilon       float64 `json:"epsilon"`
}

// Run submits, admits, runs and releases one job. A submission whose id was
// already released returns the stored release without running again.
func (r *Runner) Run(ctx context.Context, sub Submission) (*Release, error) {
	m, err := ParseManifest(sub.Manifest)
	if err != nil {
		return nil, err
	}
	if sub.ID == "" {
		sub.ID = newJobID()
	}
	job := store.Job{
		ID: sub.ID, Operator: sub.Operator, Grant: m.lit.Grant, Dataset: m.lit.Dataset,
		Epsilon: m.Epsilon(), ManifestSHA256: sha(sub.Manifest), ModuleSHA256: sha(sub.Module),
	}
	if err := r.store.SubmitJob(ctx, job); err != nil {
		if errors.Is(err, cove.ErrExists) {
			return r.previous(ctx, job)
		}
		return nil, err
	}
	req := policy.Request{
		Job: job.ID, Operator: job.Operator, Grant: job.Grant, Purpose: m.lit.Purpose, Dataset: job.Dataset,
		Columns: m.lit.Columns, UnitColumns: m.lit.PrivacyUnit.Columns, Epsilon: job.Epsilon,
	}
	if err := r.store.Admit(ctx, req); err != nil {
		return nil, err
	}
	rel, meter, err := r.execute(ctx, job, m, sub.Module)
	// Recording the outcome must not be undone by the caller's cancellation.
	rec := context.WithoutCancel(ctx)
	if err != nil {
		if ferr := r.store.Fail(rec, job.ID, err.Error(), meter); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
		return nil, fmt.Errorf("job %s: %w", job.ID, err)
	}
	body, err := json.Marshal(rel)
	if err != nil {
		return nil, errors.Join(err, r.store.Fail(rec, job.ID, "release could not be encoded", meter))
	}
	if err := r.store.Release(rec, job.ID, meter, body); err != nil {
		// The reservation stays until the release is recorded or refunded;
		// refund it if the release itself could not be written.
		return nil, errors.Join(err, r.store.Fail(rec, job.ID, "release could not be recorded", meter))
	}
	return rel, nil
}

// previous answers a resubmitted job id from what the store holds.
func (r *Runner) previous(ctx context.Context, job store.Job) (*Release, error) {
	old, err := r.store.Job(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	if old.Operator != job.Operator || old.ManifestSHA256 != job.ManifestSHA256 || old.ModuleSHA256 != job.ModuleSHA256 {
		return nil, fmt.Errorf("%w: job %s was submitted with another manifest or module", cove.ErrExists, job.ID)
	}
	switch old.State {
	case store.StateReleased:
		body, err := r.store.StoredRelease(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		var rel Release
		if err := json.Unmarshal(body, &rel); err != nil {
			return nil, err
		}
		return &rel, nil
	case store.StateRejected, store.StateFailed:
		return nil, fmt.Errorf("%w: job %s already ended %s: %s", cove.ErrExists, job.ID, old.State, old.Reason)
	default:
		return nil, fmt.Errorf("%w: job %s is %s", cove.ErrExists, job.ID, old.State)
	}
}

func (r *Runner) execute(ctx context.Context, job store.Job, m *Manifest, module []byte) (*Release, Metering, error) {
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

	mod, err := r.engine.Compile(ctx, module)
	if err != nil {
		return nil, meter, err
	}
	defer mod.Close(context.WithoutCancel(ctx))
	// The deadline bounds the guest: from its start to its last batch.
	// Compilation is host work, cached by module hash.
	ctx, cancel := context.WithTimeout(ctx, r.cfg.deadline)
	defer cancel()
	inst, err := mod.Instantiate(ctx, m.OutputNames())
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
	if !filepath.IsAbs(loc) && r.cfg.dataDir != "" {
		loc = filepath.Join(r.cfg.dataDir, loc)
	}
	rd, err := connectors.OpenFile(loc, connectors.Options{Columns: read, BatchRows: r.cfg.batchRows, Allocator: r.cfg.alloc})
	if err != nil {
		return nil, meter, err
	}
	defer rd.Release()
	snap := rd.Snapshot()
	meter.DatasetSHA256, meter.Bytes = snap.SHA256, snap.Bytes
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
			for j, row := range e.Rows {
				p, ok := cache[e.Keys[j]]
				if !ok {
					p = -1
					if q, found := parts[inst.KeyName(e.Keys[j])]; found {
						p = q
					}
					cache[e.Keys[j]] = p
				}
				if p < 0 {
					// A key outside the public partitions is dropped: releasing
					// or reporting it would reveal data.
					continue
				}
				if err := acc.Add(ids[row], p, e.Values[j]); err != nil {
					return err
				}
			}
			return nil
		}
		t0 := time.Now()
		err = inst.ProcessBatch(ctx, guestRec, emit)
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
		Lower: er.Lower, Upper: er.Upper, MaxPartitions: er.MaxPartitions, MaxContributions: er.MaxContributions,
	}
	for _, g := range lit.GroupBy {
		o.GroupBy = append(o.GroupBy, g.Column)
	}
	for _, row := range er.Rows {
		o.Rows = append(o.Rows, Row{Key: splitKey(row.Key), Value: row.Value, NoiseStdDev: row.NoiseStdDev, CILow: row.CILow, CIHigh: row.CIHigh})
	}
	return o
}

func splitKey(k string) []string {
	var parts []string
	for {
		i := indexSep(k)
		if i < 0 {
			return append(parts, k)
		}
		parts, k = append(parts, k[:i]), k[i+len(KeySeparator):]
	}
}

func indexSep(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == KeySeparator[0] {
			return i
		}
	}
	return -1
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
