package mock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// RunOptions configures Run.
type RunOptions struct {
	Dataset  policy.Dataset // the catalog entry the manifest names
	Manifest []byte
	Module   []byte
	Rows     int    // mock rows (default 1000)
	Seed     uint64 // mock data seed
	// Out receives the guest's output, the per-row trace and the release.
	Out io.Writer
	// MaxTrace bounds the contributions listed one by one (default 50).
	MaxTrace int
}

// Result is what a mock run produced.
type Result struct {
	// Release is the job's release on the mock data: real mechanism and
	// shape, synthetic values.
	Release *jobs.Release
	// Emits counts the contributions per output.
	Emits map[string]int64
	// Dropped counts contributions to keys outside the output's public
	// partitions (the enclave drops them).
	Dropped map[string]int64
}

// Operator is the operator name a mock run uses.
const Operator = "mock-operator"

// Run runs a job on mock data of its dataset: through admission, runner and
// enclave on a throwaway store (the manifest's grant is simulated, granting
// the manifest what it asks), with the guest's stdout and stderr shown,
// then again directly on the engine listing its contributions row by row.
func Run(ctx context.Context, opt RunOptions) (*Result, error) {
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	if opt.MaxTrace == 0 {
		opt.MaxTrace = 50
	}
	m, err := jobs.ParseManifest(opt.Manifest)
	if err != nil {
		return nil, err
	}
	lit := m.Literal()
	if lit.Dataset != opt.Dataset.Name {
		return nil, fmt.Errorf("%w: the manifest names dataset %s, not %s", cove.ErrInvalid, lit.Dataset, opt.Dataset.Name)
	}
	domains := map[string][]string{}
	for _, o := range lit.Outputs {
		for _, g := range o.GroupBy {
			domains[g.Column] = append(domains[g.Column], g.Values...)
		}
	}
	rec, err := Generate(opt.Dataset, Options{Rows: opt.Rows, Seed: opt.Seed, Domains: domains})
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	file, err := Parquet(rec)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cove-mock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mock.parquet")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(dir, "mock.db"), store.WithCheckpointEvery(0))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	d := opt.Dataset
	sum := sha256.Sum256(file)
	d.Location, d.SHA256, d.Rows = path, hex.EncodeToString(sum[:]), rec.NumRows()
	if d.Sharing == policy.NotShared {
		d.Sharing = policy.Conditional // still simulated: the real grant would refuse it
		fmt.Fprintf(out, "note: %s is not-shared; no real grant can cover it\n", d.Name)
	}
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig().WithDebugOutput(out))
	if err != nil {
		return nil, err
	}
	defer eng.Close(context.WithoutCancel(ctx))
	runner := jobs.NewRunner(st, eng, jobs.NewConfig().WithDeadline(time.Minute).WithMockData())
	if err := runner.RegisterDataset(ctx, d); err != nil {
		return nil, err
	}
	mech := lit.Mechanism
	if mech == "" {
		mech = policy.MechanismDP
	}
	now := time.Now()
	g := policy.Grant{
		ID: lit.Grant, Operator: Operator, Mode: policy.Scenario, Datasets: []string{d.Name}, Purposes: []string{lit.Purpose},
		Columns: map[string][]string{d.Name: {policy.AllColumns}}, Mechanisms: []string{mech},
		EpsilonCap: map[string]float64{d.Name: m.Epsilon() * 2}, DeltaCap: map[string]float64{d.Name: min(0.5, m.Delta()*2)},
		Pricing: policy.PublicWelfare, ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(time.Hour),
	}
	if err := st.CreateGrant(ctx, g); err != nil {
		return nil, fmt.Errorf("simulating the grant: %w", err)
	}

	fmt.Fprintf(out, "mock run: %d synthetic rows of %s (seed %d; catalog schema and public domains only)\n", rec.NumRows(), d.Name, opt.Seed)
	fmt.Fprintln(out, "--- guest output (shown on mock data only) ---")
	job, err := runner.Submit(ctx, jobs.Submission{Operator: Operator, Manifest: opt.Manifest, Module: opt.Module})
	if err != nil {
		return nil, err
	}
	if job.State == store.StateInReview {
		fmt.Fprintf(out, "(the real job will wait for the authority's review: %s data, level %d)\n", opt.Dataset.Sharing, opt.Dataset.Level)
		if err := runner.Review(ctx, job.ID, true, "mock", "mock run"); err != nil {
			return nil, err
		}
	}
	rel, err := runner.Execute(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	res := &Result{Release: rel, Emits: map[string]int64{}, Dropped: map[string]int64{}}
	switch mode := m.Mode(); {
	case job.Plan != "":
		fmt.Fprintf(out, "--- the plan (%s) ---\n%s\n", job.PlanSHA256, job.Plan)
	case mode == jobs.ModeBlock:
		fmt.Fprintln(out, "(mode block: one vector per block, clamped; no row-by-row trace)")
	}
	if opt.Module != nil && m.Mode() != jobs.ModeBlock && len(lit.Columns) > 0 {
		// The module over the whole mock table at once: a trace of what it
		// emits for which row (in mode unit the host calls it once per unit
		// instead; the contributions are the same for a job that keeps no
		// state across calls).
		fmt.Fprintln(out, "--- contributions, row by row (mock data only) ---")
		if err := trace(ctx, eng, m, opt.Module, rec, opt.MaxTrace, res, out); err != nil {
			return res, err
		}
	}
	fmt.Fprintln(out, "--- release on mock data (values are synthetic; noise and bounds are real) ---")
	for _, o := range rel.Outputs {
		fmt.Fprintf(out, "output %s: %s by %s, %s, ε %.3g, %d partitions; %d contributions, %d outside the public partitions\n",
			o.Name, o.Aggregate, strings.Join(o.GroupBy, " × "), o.Mechanism, o.Epsilon, len(o.Rows), res.Emits[o.Name], res.Dropped[o.Name])
		for i, r := range o.Rows {
			if i == 10 {
				fmt.Fprintf(out, "  … %d more\n", len(o.Rows)-10)
				break
			}
			fmt.Fprintf(out, "  %-30s %12.3f  (σ %.3f)\n", strings.Join(r.Key, " × "), r.Value, r.NoiseStdDev)
		}
	}
	return res, nil
}

// trace runs the guest directly and lists each contribution with its row.
func trace(ctx context.Context, eng *wasm.Engine, m *jobs.Manifest, module []byte, rec arrow.RecordBatch, maxTrace int, res *Result, out io.Writer) error {
	lit := m.Literal()
	names := m.OutputNames()
	public := make([]map[string]bool, len(lit.Outputs))
	for i, o := range lit.Outputs {
		public[i] = map[string]bool{}
		for _, p := range partitions(o.GroupBy) {
			public[i][p] = true
		}
	}
	mod, err := eng.Compile(ctx, module)
	if err != nil {
		return err
	}
	defer mod.Close(context.WithoutCancel(ctx))
	inst, err := mod.Instantiate(ctx, names)
	if err != nil {
		return err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	// The guest sees the manifest's columns, in its order.
	sc := rec.Schema()
	fields := make([]arrow.Field, len(lit.Columns))
	cols := make([]arrow.Array, len(lit.Columns))
	for i, c := range lit.Columns {
		idx := sc.FieldIndices(c)
		if len(idx) != 1 {
			return fmt.Errorf("%w: column %q is not in the dataset", cove.ErrInvalid, c)
		}
		fields[i], cols[i] = sc.Field(idx[0]), rec.Column(idx[0])
	}
	guestRec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	defer guestRec.Release()
	listed := 0
	emit := func(e wasm.Emission) error {
		name := names[e.Output]
		for j, row := range e.Rows {
			key := inst.KeyName(e.Keys[j])
			res.Emits[name]++
			dropped := !public[e.Output][key]
			if dropped {
				res.Dropped[name]++
			}
			if listed >= maxTrace {
				continue
			}
			listed++
			note := ""
			if dropped {
				note = "  (key outside the public partitions: dropped)"
			}
			fmt.Fprintf(out, "row %5d  %-18s key %-28q value %-12g | %s%s\n", row, name,
				strings.ReplaceAll(key, jobs.KeySeparator, " × "), e.Values[j], rowText(guestRec, int(row)), note)
		}
		return nil
	}
	if err := inst.ProcessBatch(ctx, guestRec, emit); err != nil {
		return err
	}
	var total int64
	for _, n := range res.Emits {
		total += n
	}
	if total > int64(listed) {
		fmt.Fprintf(out, "… %d more contributions\n", total-int64(listed))
	}
	return nil
}

// rowText shows one mock row's guest columns.
func rowText(rec arrow.RecordBatch, row int) string {
	parts := make([]string, rec.NumCols())
	for i := range parts {
		parts[i] = rec.ColumnName(i) + "=" + rec.Column(i).ValueStr(row)
	}
	return strings.Join(parts, " ")
}

// partitions lists the public keys of an output: the cross product of its
// group-by values, joined as the guest joins them.
func partitions(gs []jobs.GroupLiteral) []string {
	keys := []string{""}
	for i, g := range gs {
		var next []string
		for _, k := range keys {
			for _, v := range g.Values {
				if i > 0 {
					next = append(next, k+jobs.KeySeparator+v)
				} else {
					next = append(next, v)
				}
			}
		}
		keys = next
	}
	return keys
}
