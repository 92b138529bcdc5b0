package jobs

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/enclave/dpaudit"
	"github.com/covedata/cove/internal/guestbuild"
	"github.com/covedata/cove/plan"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// The privacy claims of the modes, tested as attacks (docs/privacy.md): a
// hostile module per channel runs many times on two neighbouring datasets —
// the target unit present and absent — and a distinguisher (enclave/dpaudit:
// the best threshold test, chosen on half the samples, its ε bounded from
// below on the other half at 95% confidence) estimates the ε actually
// spent. The claim holds when the estimate does not exceed the declared ε;
// each test has a negative control, the same attack where a guest sees
// whole batches (mode batch, today's contract) or keeps state across
// blocks, which the same distinguisher must catch.
//
// The runs go straight through the job's mode and the enclave (attackRelease),
// without admission and the ledger, so that hundreds of releases take
// seconds; what they skip is the bookkeeping, not the privacy path.

// attackSamples is the releases drawn per dataset and case. With 400, a
// control that separates the two datasets completely reads ε ≥ 3.5.
const attackSamples = 400

type attackEnv struct {
	st     *store.Store
	runner *Runner // real data
	mock   *Runner // mode batch allowed: the controls
	dir    string
}

func newAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	if err := guestbuild.HaveC(context.Background()); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"), store.WithCheckpointEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig().WithCompilationCacheDir(filepath.Join(os.TempDir(), "cove-test-wasm-cache")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(ctx) })
	cfg := NewConfig().WithDeadline(time.Minute)
	return &attackEnv{st: st, dir: dir, runner: NewRunner(st, eng, cfg), mock: NewRunner(st, eng, cfg.WithMockData())}
}

// register writes rec as the dataset name and enters it in the catalog
// (roles: the privacy unit columns), as the authority would.
func (e *attackEnv) register(t *testing.T, name string, rec arrow.RecordBatch, unit ...string) {
	t.Helper()
	path := filepath.Join(e.dir, name+".parquet")
	writeParquet(t, path, rec)
	schema, err := connectors.ReadSchema(path)
	if err != nil {
		t.Fatal(err)
	}
	d := policy.Dataset{Name: name, Location: path, Sharing: policy.Open, Level: 1}
	for _, f := range schema.Fields() {
		c := policy.Column{Name: f.Name, Type: f.Type.String()}
		for _, u := range unit {
			if u == f.Name {
				c.Role = policy.PrivacyUnitRole
			}
		}
		d.Columns = append(d.Columns, c)
	}
	if err := e.runner.RegisterDataset(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// attackRelease runs one job (its manifest naming dataset DATASET) on
// dataset through r: its mode over the data into the DP enclave, and the
// release.
func attackRelease(r *Runner, st *store.Store, dataset, manifest string, module []byte, p *plan.Plan) (*Release, error) {
	ctx := context.Background()
	m, err := ParseManifest([]byte(strings.Replace(manifest, "DATASET", dataset, 1)))
	if err != nil {
		return nil, err
	}
	d, err := st.Dataset(ctx, dataset)
	if err != nil {
		return nil, err
	}
	hash := ""
	if module != nil {
		hash = sha(module)
	}
	if m.Mode() == ModePlan && p == nil {
		if p, err = r.jobPlan(ctx, m, d, hash, inline(module)); err != nil {
			return nil, err
		}
	}
	job := store.Job{ID: "attack", Operator: "op", Dataset: dataset, Epsilon: m.Epsilon(), ModuleSHA256: hash, Mode: m.Mode()}
	md, err := r.modeOf(ctx, job, m, p)
	if err != nil {
		return nil, err
	}
	var meter Metering
	x := r.newPass(job, m, d, inline(module), &meter)
	s, err := newDPSink(m)
	if err != nil {
		return nil, err
	}
	if err := md.run(ctx, x, s); err != nil {
		return nil, err
	}
	rel := &Release{Mode: m.Mode()}
	return rel, s.release(rel)
}

// value is the released value of output o's row keyed key, NaN when the
// row is not released (private partitions).
func value(rel *Release, o int, key string) float64 {
	for _, r := range rel.Outputs[o].Rows {
		if strings.Join(r.Key, KeySeparator) == key {
			return r.Value
		}
	}
	return math.NaN()
}

// samples draws n values of stat over releases of the job on dataset, two
// at a time.
func samples(t *testing.T, n int, draw func() (float64, error)) []float64 {
	t.Helper()
	out := make([]float64, n)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				v, err := draw()
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = v
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// attackCase is one attack on a pair of neighbouring datasets.
type attackCase struct {
	name     string
	runner   *Runner
	manifest string
	module   []byte
	eps      float64 // declared ε of the output audited
	delta    float64
	stat     func(*Release) float64
	control  bool // must be caught: its estimate exceeds the declared ε
}

func (e *attackEnv) audit(t *testing.T, withTarget, without string, c attackCase) {
	t.Helper()
	t.Run(c.name, func(t *testing.T) {
		var plans [2]*plan.Plan
		for i, ds := range []string{withTarget, without} {
			m, err := ParseManifest([]byte(strings.Replace(c.manifest, "DATASET", ds, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if m.Mode() == ModePlan {
				d, _ := e.st.Dataset(context.Background(), ds)
				hash := ""
				if c.module != nil {
					hash = sha(c.module)
				}
				if plans[i], err = c.runner.jobPlan(context.Background(), m, d, hash, inline(c.module)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if plans[0] != nil && plans[0].SHA256() != plans[1].SHA256() {
			t.Fatalf("the plan differs between the datasets: %s vs %s", plans[0].Text(), plans[1].Text())
		}
		draw := func(ds string, p *plan.Plan) func() (float64, error) {
			return func() (float64, error) {
				rel, err := attackRelease(c.runner, e.st, ds, c.manifest, c.module, p)
				if err != nil {
					return 0, err
				}
				return c.stat(rel), nil
			}
		}
		n := attackSamples
		if raceEnabled {
			n = 40 // the race detector checks the code paths; the statistics need the full run
		}
		start := time.Now()
		a := samples(t, n, draw(withTarget, plans[0]))
		b := samples(t, n, draw(without, plans[1]))
		r := dpaudit.EpsilonLowerBound(a, b, c.delta, 0.05)
		t.Logf("%d releases × 2 in %v: ε ≥ %.3f (declared %.3g; test: value %s %.4g, P %.3f vs %.3f); medians %.4g vs %.4g",
			n, time.Since(start).Round(time.Millisecond), r.LowerBound, c.eps, map[bool]string{true: ">", false: "<"}[r.Above],
			r.Threshold, r.P1, r.P2, median(a), median(b))
		switch {
		case raceEnabled:
		case c.control && r.LowerBound <= c.eps:
			t.Errorf("negative control not caught: ε ≥ %.3f does not exceed the declared %.3g, so the test could not see this leak", r.LowerBound, c.eps)
		case !c.control && r.LowerBound > c.eps:
			t.Errorf("the release is distinguishable: ε ≥ %.3f exceeds the declared %.3g", r.LowerBound, c.eps)
		}
	})
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	for i := range s {
		if math.IsNaN(s[i]) {
			s[i] = math.Inf(-1)
		}
	}
	slices.Sort(s)
	return s[len(s)/2]
}

func buildC(t *testing.T, file string) []byte {
	t.Helper()
	b, err := guestbuild.BuildC(context.Background(), filepath.Join("testdata", "attack", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildWAT(t *testing.T, name, text string) []byte {
	t.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install Debian's wabt (as .ci/run does)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, name+".wat")
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(wat2wasm, "-o", src+".wasm", src).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(src + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// airReadings is two stations' hourly readings of 2015-01-15 to 17, the
// target (Dongsi, 2015-01-15 14:00, PM2.5 462) among them or not.
func airReadings(t *testing.T, target bool) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "station", Type: arrow.BinaryTypes.String}, {Name: "year", Type: arrow.PrimitiveTypes.Int64},
		{Name: "month", Type: arrow.PrimitiveTypes.Int64}, {Name: "day", Type: arrow.PrimitiveTypes.Int64}, {Name: "hour", Type: arrow.PrimitiveTypes.Int64},
		{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	r := rand.New(rand.NewPCG(1, 2))
	for _, st := range []string{"Dongsi", "Tiantan"} {
		for h := range 60 {
			day, hour := 15+h/24, h%24
			pm := 20 + r.Float64()*60
			if st == "Dongsi" && day == 15 && hour == 14 {
				if !target {
					continue
				}
				pm = 462
			}
			b.Field(0).(*array.StringBuilder).Append(st)
			b.Field(1).(*array.Int64Builder).Append(2015)
			b.Field(2).(*array.Int64Builder).Append(1)
			b.Field(3).(*array.Int64Builder).Append(int64(day))
			b.Field(4).(*array.Int64Builder).Append(int64(hour))
			b.Field(5).(*array.Float64Builder).Append(pm)
		}
	}
	return b.NewRecordBatch()
}

const readingManifest = `version: 1
name: pm25
grant: g
purpose: research
dataset: DATASET
mode: MODE
columns: [station, year, month, day, hour, PM2.5]
outputs:
  - name: pm25_mean
    aggregate: mean
    epsilon: 0.5
    bounds: [0, 1000]
    group_by:
      - {column: station, values: [Dongsi, Tiantan]}
      - {column: year, values: [2015]}
`

// TestAttackReadingCopy: the attack that released one hourly reading exactly
// at ε 0.1. Per unit it moves only the target's own contribution: Tiantan's
// mean (no target row) is the same on both datasets, and Dongsi's moves
// within ε. The plan of the same output cannot copy at all. In batch mode
// (the control) every mean becomes the reading.
func TestAttackReadingCopy(t *testing.T) {
	e := newAttackEnv(t)
	unit := []string{"station", "year", "month", "day", "hour"}
	for _, with := range []bool{true, false} {
		rec := airReadings(t, with)
		e.register(t, map[bool]string{true: "air-d", false: "air-n"}[with], rec, unit...)
		rec.Release()
	}
	module := buildC(t, "copyreading.c")
	manifest := func(mode string) string { return strings.Replace(readingManifest, "MODE", mode, 1) }
	unitManifest := strings.Replace(manifest("unit"), "columns:", "guest: {memory_mib: 1}\ncolumns:", 1)
	tiantan := func(r *Release) float64 { return value(r, 0, "Tiantan\x1f2015") }
	dongsi := func(r *Release) float64 { return value(r, 0, "Dongsi\x1f2015") }
	planManifest := strings.Replace(manifest("plan"), "    aggregate: mean", "    aggregate: mean\n    value: \"`PM2.5`\"", 1)
	for _, c := range []attackCase{
		{name: "unit/Tiantan", runner: e.runner, manifest: unitManifest, module: module, eps: 0.5, stat: tiantan},
		{name: "unit/Dongsi", runner: e.runner, manifest: unitManifest, module: module, eps: 0.5, stat: dongsi},
		{name: "plan/Dongsi", runner: e.runner, manifest: planManifest, eps: 0.5, stat: dongsi},
		{name: "control: batch/Tiantan", runner: e.mock, manifest: manifest("batch"), module: module, eps: 0.5, stat: tiantan, control: true},
	} {
		e.audit(t, "air-d", "air-n", c)
	}
}

// salaries is 60 people with salaries, the target (salary 123457) among
// them or not; pid is the privacy unit.
func salaries(t *testing.T, target bool) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "pid", Type: arrow.PrimitiveTypes.Int64}, {Name: "salary", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range 60 {
		s := int64(40_000 + 1_000*i)
		if i == 17 {
			if !target {
				continue
			}
			s = 123457
		}
		b.Field(0).(*array.Int64Builder).Append(int64(1000 + i))
		b.Field(1).(*array.Int64Builder).Append(s)
	}
	return b.NewRecordBatch()
}

const salaryManifest = `version: 1
name: salary
grant: g
purpose: research
dataset: DATASET
mode: MODE
columns: [salary]
guest: {memory_mib: 1}
outputs:
  - name: by_salary
    aggregate: count
OUTPUT`

// TestAttackSalaryKeys: the attack that released keys 123 and 457 with
// counts of about 2,100 against σ 141 (public partitions), and the raw key
// "123457" (private partitions). Per unit only the target's own unit emits
// them: one count (public), a key private selection suppresses (private).
func TestAttackSalaryKeys(t *testing.T) {
	e := newAttackEnv(t)
	for _, with := range []bool{true, false} {
		rec := salaries(t, with)
		e.register(t, map[bool]string{true: "pay-d", false: "pay-n"}[with], rec, "pid")
		rec.Release()
	}
	public := buildC(t, "salary_public.c")
	private := buildC(t, "salary_private.c")
	man := func(mode, output string) string {
		m := strings.Replace(strings.Replace(salaryManifest, "MODE", mode, 1), "OUTPUT", output, 1)
		if mode == ModeBatch {
			m = strings.Replace(m, "guest: {memory_mib: 1}\n", "", 1)
		}
		return m
	}
	pub := "    epsilon: 0.5\n    group_by: [{name: digits, values: [\"000\", \"123\", \"457\"]}]\n"
	priv := "    epsilon: 1\n    delta: 1.0e-5\n    partitions: private\n    group_by: [{name: salary}]\n"
	count123 := func(r *Release) float64 { return value(r, 0, "123") }
	raw := func(r *Release) float64 { return value(r, 0, "123457") } // NaN when suppressed
	for _, c := range []attackCase{
		{name: "unit/public", runner: e.runner, manifest: man(ModeUnit, pub), module: public, eps: 0.5, stat: count123},
		{name: "unit/private", runner: e.runner, manifest: man(ModeUnit, priv), module: private, eps: 1, delta: 1e-5, stat: raw},
		{name: "control: batch/public", runner: e.mock, manifest: man(ModeBatch, pub), module: public, eps: 0.5, stat: count123, control: true},
		{name: "control: batch/private", runner: e.mock, manifest: man(ModeBatch, priv), module: private, eps: 1, delta: 1e-5, stat: raw, control: true},
	} {
		e.audit(t, "pay-d", "pay-n", c)
	}
}

// values is 120 rows of one float64 column v (the unit is each row's id),
// the target (v = 462) among them or not.
func values(t *testing.T, target bool) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "v", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 120 {
		v := 20 + r.Float64()*60
		if i == 40 {
			if !target {
				continue
			}
			v = 462
		}
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Float64Builder).Append(v)
	}
	return b.NewRecordBatch()
}

//go:embed testdata/attack/statevars.wat
var statevarsWAT string

// TestAttackUnitState: per unit, a guest that carries the target's value to
// later units through a mutable global and the memory size (memory.grow)
// emits it only in the target's own unit: the mean over all rows moves
// within ε. Linear memory is the reading-copy test's channel.
func TestAttackUnitState(t *testing.T) {
	e := newAttackEnv(t)
	for _, with := range []bool{true, false} {
		rec := values(t, with)
		e.register(t, map[bool]string{true: "v-d", false: "v-n"}[with], rec, "id")
		rec.Release()
	}
	module := buildWAT(t, "statevars", statevarsWAT)
	man := `version: 1
name: state
grant: g
purpose: research
dataset: DATASET
mode: MODE
columns: [v]
outputs:
  - name: m
    aggregate: mean
    epsilon: 0.5
    bounds: [0, 1000]
    group_by: [{name: all, values: [all]}]
`
	all := func(r *Release) float64 { return value(r, 0, "all") }
	unitMan := strings.Replace(strings.Replace(man, "MODE", ModeUnit, 1), "columns:", "guest: {memory_mib: 1}\ncolumns:", 1)
	for _, c := range []attackCase{
		{name: "unit", runner: e.runner, manifest: unitMan, module: module, eps: 0.5, stat: all},
		{name: "control: batch", runner: e.mock, manifest: strings.Replace(man, "MODE", ModeBatch, 1), module: module, eps: 0.5, stat: all, control: true},
	} {
		e.audit(t, "v-d", "v-n", c)
	}
}

const blockManifest = `version: 1
name: blocks
grant: g
purpose: research
dataset: DATASET
mode: block
blocks: 20
columns: [v]
guest: {memory_mib: 1, cpu_ms: 1000}
outputs:
  - name: flag
    aggregate: block_mean
    dimension: 1
    bounds: [0, 2]
    default: [0]
    epsilon: 0.5
`

// TestAttackBlockState: in block mode a guest that says, for every block,
// whether it saw the target in this block or any earlier one, can say so
// only in the target's block: the released mean moves by at most 1/k, which
// the noise covers. (The bounds are twice the flag's range, so the sound
// case is not the mechanism's worst case: a distinguisher's 95% lower bound
// of a tight ε exceeds it one run in twenty, which would make the test
// flaky; the claim tested is that no state crosses blocks.) The control keeps the guest's state across blocks (a
// stand-in runtime that does not restore it): every block after the
// target's says so, and the distinguisher sees it.
func TestAttackBlockState(t *testing.T) {
	e := newAttackEnv(t)
	for _, with := range []bool{true, false} {
		rec := values(t, with)
		e.register(t, map[bool]string{true: "b-d", false: "b-n"}[with], rec, "id")
		rec.Release()
	}
	module := buildC(t, "blockstate.c")
	leaky := NewRunner(e.st, leakyBlocks{}, NewConfig().WithDeadline(time.Minute))
	flag := func(r *Release) float64 { return value(r, 0, "0") }
	for _, c := range []attackCase{
		{name: "block", runner: e.runner, manifest: blockManifest, module: module, eps: 0.5, stat: flag},
		{name: "control: state kept across blocks", runner: leaky, manifest: blockManifest, module: module, eps: 0.5, stat: flag, control: true},
	} {
		e.audit(t, "b-d", "b-n", c)
	}
}

// leakyBlocks is a stand-in runtime whose block instances keep the guest's
// state from block to block: it runs blockstate.c's logic natively with one
// variable for all blocks, as a runtime that did not restore the snapshot
// would. It exists to show that the block test can see such a leak.
type leakyBlocks struct{}

func (leakyBlocks) Compile(context.Context, []byte) (wasm.Module, error) { return leakyModule{}, nil }
func (leakyBlocks) Close(context.Context) error                          { return nil }

type leakyModule struct{}

func (leakyModule) Instantiate(context.Context, []string) (wasm.Instance, error) {
	return nil, errors.New("leakyModule: blocks only")
}
func (leakyModule) Plan(context.Context, *arrow.Schema, []string) ([]byte, error) {
	return nil, errors.New("leakyModule: blocks only")
}
func (leakyModule) InstantiateGroups(context.Context, []string, wasm.GroupConfig) (wasm.GroupInstance, error) {
	return &leakyInstance{}, nil
}
func (leakyModule) Close(context.Context) error { return nil }

type leakyInstance struct{ seen bool }

func (l *leakyInstance) RunGroups(_ context.Context, rec arrow.RecordBatch, bounds []uint32, sink wasm.GroupSink) error {
	v := rec.Column(0).(*array.Float64)
	for g := 0; g+1 < len(bounds); g++ {
		for r := bounds[g]; r < bounds[g+1]; r++ {
			if v.Value(int(r)) == 462 {
				l.seen = true
			}
		}
		flag := 0.0
		if l.seen {
			flag = 1
		}
		if err := sink.Vector(g, 0, []float64{flag}); err != nil {
			return err
		}
	}
	return nil
}
func (l *leakyInstance) KeyName(uint32) string       { return "" }
func (l *leakyInstance) Stats() wasm.GroupStats      { return wasm.GroupStats{} }
func (l *leakyInstance) Close(context.Context) error { return nil }

// TestAttackPlanningCallReadsData: a planning call is given the schema and
// no rows; a module that tries to read data in it (a column copy, a filter
// kernel, a key, an emission) is refused, identically on both datasets, and
// nothing is recorded. A planning call that only reads the schema gives the
// same plan on both.
func TestAttackPlanningCallReadsData(t *testing.T) {
	e := newAttackEnv(t)
	for _, with := range []bool{true, false} {
		rec := values(t, with)
		e.register(t, map[bool]string{true: "p-d", false: "p-n"}[with], rec, "id")
		rec.Release()
	}
	if err := e.st.CreateGrant(context.Background(), policy.Grant{ID: "g", Operator: "op", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP},
		Pricing: policy.Industry, Purposes: []string{"research"}, Datasets: []string{"p-d", "p-n"},
		Columns: map[string][]string{policy.AnyDataset: {policy.AllColumns}}, EpsilonCap: map[string]float64{policy.AnyDataset: 10},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	man := `version: 1
name: plan-read
grant: g
purpose: research
dataset: DATASET
outputs:
  - name: m
    aggregate: mean
    epsilon: 0.5
    bounds: [0, 1000]
    group_by: [{column: id, values: ["40"]}]
`
	reads := map[string]string{
		"column":   `(call $column (i32.const 0) (i32.const 8192) (i32.const 8))`,
		"k_filter": `(drop (call $k_filter (i32.const 0) (i32.const 1) (i32.const 5) (i32.const 1024) (i32.const 8)))`,
		"key":      `(drop (call $key (i32.const 1024) (i32.const 3)))`,
		"emit":     `(call $emit (i32.const 0) (i32.const 2048) (i32.const 2048) (i32.const 2048) (i32.const 1))`,
	}
	for name, call := range reads {
		t.Run(name, func(t *testing.T) {
			module := buildWAT(t, "planread-"+name, planReader(call))
			var msgs []string
			for _, ds := range []string{"p-d", "p-n"} {
				_, err := e.runner.Submit(context.Background(), Submission{Operator: "op", Manifest: []byte(strings.Replace(man, "DATASET", ds, 1)), Module: module})
				if err == nil || !strings.Contains(err.Error(), "planning call") {
					t.Fatalf("%s: a planning call that reads data (%s) was not refused: %v", ds, name, err)
				}
				msgs = append(msgs, strings.ReplaceAll(err.Error(), ds, "DATASET"))
			}
			if msgs[0] != msgs[1] {
				t.Errorf("the refusal differs between the datasets:\n%s\n%s", msgs[0], msgs[1])
			}
			t.Logf("refused: %s", msgs[0])
		})
	}
	jobs, err := e.st.Jobs(context.Background(), store.JobFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("refused planning calls recorded %d jobs (%v)", len(jobs), err)
	}
}

// planReader is a guest whose planning call makes call, then hands a plan.
func planReader(call string) string {
	return fmt.Sprintf(`(module
  (import "cove" "output" (func $output (param i32 i32) (result i32)))
  (import "cove" "key" (func $key (param i32 i32) (result i32)))
  (import "cove" "emit" (func $emit (param i32 i32 i32 i32 i32)))
  (import "cove" "k_filter" (func $k_filter (param i32 i32 i32 i32 i32) (result i32)))
  (import "cove" "column" (func $column (param i32 i32 i32)))
  (import "cove" "plan" (func $plan (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "all\00\00\00\00\00")
  (data (i32.const 4096) %q)
  (func (export "cove_abi_version") (result i32) (i32.const 1))
  (func (export "cove_alloc") (param i32) (result i32) (i32.const 16384))
  (func (export "cove_batch") (param i32 i32) (result i32) (i32.const 0))
  (func (export "cove_plan") (param i32 i32) (result i32)
    %s
    (call $plan (i32.const 4096) (i32.const %d))
    (i32.const 0)))`, planJSON, call, len(planJSON))
}

const planJSON = `{"version":1,"outputs":[{"name":"m","group_by":[{"col":"id"}],"value":{"col":"v"}}]}`

// TestPlanningCallSchemaOnly: a planning call that only reads the schema
// gives the same plan on neighbouring datasets, and Submit records it.
func TestPlanningCallSchemaOnly(t *testing.T) {
	e := newAttackEnv(t)
	for _, with := range []bool{true, false} {
		rec := values(t, with)
		e.register(t, map[bool]string{true: "s-d", false: "s-n"}[with], rec, "id")
		rec.Release()
	}
	module := buildWAT(t, "planonly", planReader(""))
	var texts []string
	for _, ds := range []string{"s-d", "s-n"} {
		d, _ := e.st.Dataset(context.Background(), ds)
		m, err := ParseManifest([]byte(strings.ReplaceAll(`version: 1
name: p
grant: g
purpose: research
dataset: DATASET
outputs:
  - {name: m, aggregate: mean, epsilon: 0.5, bounds: [0, 1000], group_by: [{column: id, values: ["40"]}]}
`, "DATASET", ds)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.runner.jobPlan(context.Background(), m, d, sha(module), inline(module))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, p.SHA256()+"\n"+p.Text())
	}
	if texts[0] != texts[1] {
		t.Fatalf("plans differ:\n%s\n%s", texts[0], texts[1])
	}
	t.Logf("plan on both datasets: %s", texts[0])
}
