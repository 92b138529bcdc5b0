package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/plan"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// The pass over a job's data, shared by every mode and mechanism: a mode
// (plan, unit, block, batch: modes.go) reads the dataset and hands
// contributions to a sink, the mechanism's side (DP: dp.go; HE: he.go),
// which bounds, aggregates and releases them. Everything a mode needs of
// the job — the dataset opened and checked, the privacy unit of each row,
// the module, the deadline, the metering — is in a pass.

// mode computes a job's contributions from its data.
type mode interface {
	run(ctx context.Context, x *pass, s sink) error
}

// sink consumes contributions. Output indexes are the manifest's outputs.
type sink interface {
	// partition maps output o's key (parts joined by KeySeparator) to its
	// partition: -1 when the key is not among the public partitions (its
	// contributions are dropped, unreported); a new key of private
	// partitions is registered.
	partition(o int, key string) (int, error)
	// rows: row i of a batch, table row first+i, is its own privacy unit
	// and contributes values[i] (1 when values is nil) to partition
	// parts[i] of output o, or nothing when parts[i] < 0. At most one
	// contribution per row and output: the plan's shape.
	rows(o int, first int64, parts []int32, values []float64) error
	// units: contribution i is of the unit ids[i] (a keyed hash of its unit
	// columns), bounded by the sink.
	units(o int, ids []uint64, parts []int32, values []float64) error
	// unit: one contribution of the unit numbered unit, at table row row;
	// units come in ascending order and seal(n) says units below n are
	// complete.
	unit(o int, unit uint64, row int64, part int, value float64) error
	seal(n uint64)
	// vector: block b's vector for block output o.
	vector(o, b int, v []float64) error
	// failed counts a unit or block whose guest call failed.
	failed()
}

// pass is one run of a job over its dataset.
type pass struct {
	r      *Runner
	job    store.Job
	m      *Manifest
	d      policy.Dataset
	module moduleBytes
	meter  *Metering
	// unitCols are the host-side unit columns; perRow: every row is its
	// own unit (manifest per_row, or the catalog's unit, unique per row).
	unitCols []string
	perRow   bool
	hasher   *unitHasher
	guest    time.Duration // time spent in guest calls
}

func (r *Runner) newPass(job store.Job, m *Manifest, d policy.Dataset, module moduleBytes, meter *Metering) *pass {
	x := &pass{r: r, job: job, m: m, d: d, module: module, meter: meter, hasher: newUnitHasher()}
	u := m.lit.PrivacyUnit
	switch {
	case u.PerRow:
		x.perRow = true
	case len(u.Columns) == 0:
		x.unitCols = d.UnitColumns() // the catalog's unit (admission checked it exists)
		x.perRow = d.UnitPerRow
	default:
		x.unitCols = slices.Clone(u.Columns)
		// The catalog's own unit, unique per row: each row is its unit.
		cat := d.UnitColumns()
		x.perRow = d.UnitPerRow && len(cat) == len(u.Columns) && sameSet(cat, u.Columns)
	}
	return x
}

func sameSet(a, b []string) bool {
	for _, c := range a {
		if !slices.Contains(b, c) {
			return false
		}
	}
	return true
}

// location resolves a dataset's location against the data directory.
func (r *Runner) location(d policy.Dataset) string {
	loc := d.Location
	if !strings.HasPrefix(loc, "s3://") && !strings.HasPrefix(loc, "file://") && !filepath.IsAbs(loc) && r.cfg.dataDir != "" {
		loc = filepath.Join(r.cfg.dataDir, loc)
	}
	return loc
}

// open opens the dataset projected to cols (then the unit columns, once
// each) and checks it against its registration.
func (x *pass) open(ctx context.Context, cols []string) (*connectors.Reader, error) {
	read := slices.Clone(cols)
	if !x.perRow {
		for _, c := range x.unitCols {
			if !slices.Contains(read, c) {
				read = append(read, c)
			}
		}
	}
	cfg := x.r.cfg
	rd, err := connectors.Open(ctx, x.r.location(x.d), connectors.Options{Columns: read, BatchRows: cfg.batchRows, Allocator: cfg.alloc, S3: cfg.s3})
	if err != nil {
		return nil, err
	}
	snap := rd.Snapshot()
	x.meter.DatasetSHA256, x.meter.Bytes, x.meter.DatasetObjects = snap.SHA256, snap.Bytes, snap.Objects
	if x.d.SHA256 != "" && snap.SHA256 != x.d.SHA256 {
		rd.Release()
		return nil, fmt.Errorf("%w: dataset %s changed since registration (sha256 %s, registered %s)", cove.ErrInvalid, x.d.Name, snap.SHA256, x.d.SHA256)
	}
	return rd, nil
}

// ids returns the unit id of each row of rec, a batch of rows starting at
// table row first: for per-row units a keyed mix of the row number (a
// bijection, so distinct rows stay distinct units).
func (x *pass) ids(rec arrow.RecordBatch, first int64) ([]uint64, error) {
	if !x.perRow {
		return x.hasher.ids(rec, x.unitCols)
	}
	n := int(rec.NumRows())
	if cap(x.hasher.h) < n {
		x.hasher.h = make([]uint64, n)
	}
	h := x.hasher.h[:n]
	for i := range h {
		h[i] = mix64((uint64(first) + uint64(i)) ^ x.hasher.k0)
	}
	return h, nil
}

// call runs f, a guest call, counting its time.
func (x *pass) call(f func() error) error {
	t0 := time.Now()
	err := f()
	x.guest += time.Since(t0)
	return err
}

// batch meters one batch read.
func (x *pass) batch(n int) {
	x.meter.Rows += int64(n)
	x.meter.Batches++
}

// project keeps the first n columns of rec: the guest's. The privacy unit
// columns the host appended after them stay on the host.
func project(rec arrow.RecordBatch, n int) arrow.RecordBatch {
	if int(rec.NumCols()) == n {
		rec.Retain()
		return rec
	}
	fields := rec.Schema().Fields()[:n]
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), rec.Columns()[:n], rec.NumRows())
}

// deadline is when a job's run must end: the runner's deadline from now, or
// the grant's expiry if sooner (expiry stops a job like a revocation).
func (r *Runner) deadline(ctx context.Context, job store.Job) time.Time {
	d := time.Now().Add(r.cfg.deadline)
	if g, err := r.store.Grant(ctx, job.Grant); err == nil && g.ValidUntil.Before(d) {
		d = g.ValidUntil
	}
	return d
}

// execute runs an admitted, started job: its mode over its data into its
// mechanism, and the release.
func (r *Runner) execute(ctx context.Context, job store.Job, m *Manifest, module moduleBytes) (*Release, Metering, error) {
	start := time.Now()
	meter := Metering{Epsilon: job.Epsilon}
	defer func() { meter.WallSeconds = round100ms(time.Since(start)) }()
	d, err := r.store.Dataset(ctx, job.Dataset)
	if err != nil {
		return nil, meter, err
	}
	var p *plan.Plan
	if m.lit.Mode == ModePlan {
		if p, err = r.storedPlan(ctx, job, m, d); err != nil {
			return nil, meter, err
		}
	}
	md, err := r.modeOf(ctx, job, m, p)
	if err != nil {
		return nil, meter, err
	}
	ctx, cancel := context.WithDeadline(ctx, r.deadline(ctx, job))
	defer cancel()
	x := r.newPass(job, m, d, module, &meter)
	defer func() { meter.GuestSeconds = round100ms(x.guest) }()
	if m.lit.Mechanism == policy.MechanismHE {
		rel, err := r.executeHE(ctx, x, md)
		return rel, meter, err
	}
	s, err := newDPSink(m)
	if err != nil {
		return nil, meter, err
	}
	if err := md.run(ctx, x, s); err != nil {
		if ctx.Err() != nil {
			return nil, meter, fmt.Errorf("%w: job %s", cove.ErrDeadline, job.ID)
		}
		return nil, meter, err
	}
	if err := ctx.Err(); err != nil {
		return nil, meter, fmt.Errorf("%w: job %s", cove.ErrDeadline, job.ID)
	}
	rel := &Release{Job: job.ID, Grant: job.Grant, Dataset: job.Dataset, Mode: m.lit.Mode, Epsilon: job.Epsilon}
	if err := s.release(rel); err != nil {
		return nil, meter, err
	}
	return rel, meter, nil
}
