package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/isolate"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// modeEnv is what a mode benchmark runs jobs in: a store in a temporary
// directory with one dataset and a grant on it, an engine, and a Runner
// whose Arrow allocator is checked.
type modeEnv struct {
	st     *store.Store
	eng    wasm.Runtime
	runner *jobs.Runner
	alloc  *memory.CheckedAllocator
	seq    int
}

// benchGrant is the grant id the mode benchmarks' manifests name.
const benchGrant = "g-bench"

// newModeEnv registers the file at path as dataset name, the columns in
// unit having role privacy-unit, through Runner.RegisterDataset (which
// records whether that unit is unique per row), and grants every column
// with an ε cap that no benchmark exhausts. isolated selects the isolate
// engine (each guest in a sandbox process) instead of the in-process one.
func newModeEnv(b *testing.B, name, path string, unit []string, isolated bool) *modeEnv {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	wcfg := wasm.NewConfig().WithCompilationCacheDir(filepath.Join(os.TempDir(), "cove-bench-wasm-cache"))
	var eng wasm.Runtime
	if isolated {
		eng, err = isolate.NewEngine(ctx, isolate.NewConfig(wcfg))
	} else {
		eng, err = wasm.NewEngine(ctx, wcfg)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(ctx) })
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	runner := jobs.NewRunner(st, eng, jobs.NewConfig().WithDeadline(30*time.Minute).WithAllocator(alloc))

	schema, err := connectors.ReadSchema(path)
	if err != nil {
		b.Fatal(err)
	}
	d := policy.Dataset{Name: name, Location: path, Sharing: policy.Open, Level: 1}
	for _, f := range schema.Fields() {
		c := policy.Column{Name: f.Name, Type: f.Type.String()}
		if slices.Contains(unit, f.Name) {
			c.Role = policy.PrivacyUnitRole
		}
		d.Columns = append(d.Columns, c)
	}
	if err := runner.RegisterDataset(ctx, d); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateGrant(ctx, policy.Grant{ID: benchGrant, Operator: "bench", Mode: policy.Scenario,
		Mechanisms: []string{policy.MechanismDP}, Pricing: policy.Industry, Purposes: []string{"public-research"},
		Datasets: []string{name}, Columns: map[string][]string{name: {policy.AllColumns}},
		EpsilonCap: map[string]float64{name: 1e12}, ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(24 * time.Hour)}); err != nil {
		b.Fatal(err)
	}
	return &modeEnv{st: st, eng: eng, runner: runner, alloc: alloc}
}

// dataset returns the catalog's entry of name.
func (e *modeEnv) dataset(b *testing.B, name string) policy.Dataset {
	b.Helper()
	d, err := e.st.Dataset(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// run runs one job under a fresh id and returns its release and its time
// (timedGC).
func (e *modeEnv) run(b *testing.B, manifest string, module []byte) (*jobs.Release, sample) {
	b.Helper()
	e.seq++
	var rel *jobs.Release
	var err error
	d := timedGC(func() {
		rel, err = e.runner.Run(context.Background(), jobs.Submission{ID: fmt.Sprintf("bench-%d", e.seq), Operator: "bench", Manifest: []byte(manifest), Module: module})
	})
	if err != nil {
		b.Fatal(err)
	}
	return rel, d
}

// sample is the time of one side of a comparison: wall-clock, and the
// process's CPU time (user and system, every thread; not a sandbox
// process's).
type sample struct{ wall, cpu time.Duration }

// timedGC is how long f takes, with the collection of its garbage: each
// side of a comparison pays for its own garbage, not for the other's (a
// collection started by the first would otherwise run in the second).
func timedGC(f func()) sample {
	t0, c0 := time.Now(), cpuTime()
	f()
	runtime.GC()
	return sample{time.Since(t0), cpuTime() - c0}
}

// comparison accumulates the two sides' times over a benchmark's
// iterations: their sums and their best (on a shared machine the fastest
// run of each side is the least disturbed by other work).
type comparison struct {
	n                  int
	cove, native       sample
	bestCove, bestNatv time.Duration
}

func (c *comparison) add(cove, native sample) {
	if c.n == 0 || cove.wall < c.bestCove {
		c.bestCove = cove.wall
	}
	if c.n == 0 || native.wall < c.bestNatv {
		c.bestNatv = native.wall
	}
	c.n++
	c.cove.wall += cove.wall
	c.cove.cpu += cove.cpu
	c.native.wall += native.wall
	c.native.cpu += native.cpu
}

// report reports rows/s of each side over all iterations, their ratio
// (cove/native: native time over Cove's, 1 = as fast as native Go), the
// ratio of the best iterations, and each side's mean wall and CPU time.
func (c *comparison) report(b *testing.B, rows int64) {
	n, per := float64(c.n)*float64(rows), 1e3/float64(c.n)
	b.ReportMetric(n/c.cove.wall.Seconds(), "cove-rows/s")
	b.ReportMetric(n/c.native.wall.Seconds(), "native-rows/s")
	b.ReportMetric(c.native.wall.Seconds()/c.cove.wall.Seconds(), "cove/native")
	b.ReportMetric(c.bestNatv.Seconds()/c.bestCove.Seconds(), "best-cove/native")
	b.ReportMetric(c.cove.wall.Seconds()*per, "cove-ms")
	b.ReportMetric(c.native.wall.Seconds()*per, "native-ms")
	b.ReportMetric(c.cove.cpu.Seconds()*per, "cove-cpu-ms")
	b.ReportMetric(c.native.cpu.Seconds()*per, "native-cpu-ms")
	b.ReportMetric(float64(rows), "rows")
}

// output returns the release's output name.
func output(b *testing.B, rel *jobs.Release, name string) jobs.Output {
	b.Helper()
	for _, o := range rel.Outputs {
		if o.Name == name {
			return o
		}
	}
	b.Fatalf("release has no output %s", name)
	return jobs.Output{}
}

// rewrite replaces, in a manifest, the line whose trimmed text starts with
// prefix by line (its indentation kept); it fails if there is none.
func rewrite(b *testing.B, manifest, prefix, line string) string {
	b.Helper()
	lines := strings.Split(manifest, "\n")
	for i, l := range lines {
		if t := strings.TrimLeft(l, " "); strings.HasPrefix(t, prefix) {
			lines[i] = l[:len(l)-len(t)] + line
			return strings.Join(lines, "\n")
		}
	}
	b.Fatalf("manifest has no line %q", prefix)
	return ""
}

// envRows reads an int64 setting (n > 0) or returns def.
func envRows(name string, def int64) int64 {
	return int64(envInt(name, int(def)))
}
