package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/runtime/wasm"
)

// The job modes against native Go (issue 11): each benchmark runs a Cove
// job through jobs.Runner and, in the same iteration, the native baseline
// over the same Parquet file (modesnative_test.go), and reports both rates
// and their ratio. Data is written once, outside the timed region
// (modesdata_test.go).

// planManifest is mean PM2.5 per station × year, a plan written in the
// manifest (no module), bounds [0, 1000], ε 0.5, public partitions. It
// names no privacy unit: the catalog's applies.
func planManifest(dataset string) string {
	return fmt.Sprintf(`version: 1
name: pm25-plan-bench
grant: %s
purpose: public-research
dataset: %s
outputs:
  - name: pm25_mean
    aggregate: mean
    value: "`+"`PM2.5`"+`"
    epsilon: 0.5
    bounds: [0, 1000]
    max_partitions: 1
    max_contributions: 1
    group_by:
      - column: station
        values: [%s]
      - column: year
        values: [2013, 2014, 2015, 2016, 2017]
`, benchGrant, dataset, strings.Join(demodata.AirQualityStations(), ", "))
}

// BenchmarkPlanMode: a plan-mode job over 10M rows (COVE_BENCH_ROWS) whose
// catalog unit, (replica, station, year, month, day, hour), is unique per
// row: each row is its own unit, clamping is the whole bounding.
func BenchmarkPlanMode(b *testing.B) {
	benchPlan(b, []string{"replica", "station", "year", "month", "day", "hour"}, true)
}

// BenchmarkPlanModeBounded: the same job where the catalog's unit is uid,
// shared by 10 consecutive rows: the host bounds each unit's contributions
// (L0 = L∞ = 1). The native baseline is the exact mean, unbounded.
func BenchmarkPlanModeBounded(b *testing.B) {
	benchPlan(b, []string{"uid"}, false)
}

func benchPlan(b *testing.B, unit []string, perRow bool) {
	rows := envRows("COVE_BENCH_ROWS", 10_000_000)
	f := modeData(b, rows, true, []string{"PM2.5"})
	name := "air-plan"
	env := newModeEnv(b, name, f.path, unit, false)
	if got := env.dataset(b, name).UnitPerRow; got != perRow {
		b.Fatalf("catalog: unit %v unique per row: %v, want %v", unit, got, perRow)
	}
	manifest := planManifest(name)
	stations := demodata.AirQualityStations()

	var cmp comparison
	b.ResetTimer()
	for range b.N {
		rel, d := env.run(b, manifest, nil)
		var exact *groupMoments
		cmp.add(d, timedGC(func() { exact = nativeStationYear(b, f.path) }))

		b.StopTimer()
		out := output(b, rel, "pm25_mean")
		if len(out.Rows) != nStations*nYears {
			b.Fatalf("released %d station-years, want %d", len(out.Rows), nStations*nYears)
		}
		for _, r := range out.Rows {
			s, y := slices.Index(stations, r.Key[0]), year(b, r.Key[1])
			g := s*nYears + y - firstYear
			if exact.n[g] == 0 {
				continue // no data: the release is noise about the midpoint
			}
			// Within the noise; bounded, also within 6 σ of the sampling:
			// one row of each unit's 10 is kept.
			tol := sigmas(len(out.Rows)) * r.NoiseStdDev
			if !perRow {
				tol += 6 * math.Sqrt(exact.variance(g)*unitRows/exact.n[g])
			}
			if math.Abs(r.Value-exact.mean(g)) > tol+1e-9 {
				b.Fatalf("%v: released %.3f, exact %.3f (noise σ %.3g, tolerance %.3g)", r.Key, r.Value, exact.mean(g), r.NoiseStdDev, tol)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	env.alloc.AssertSize(b, 0)
	cmp.report(b, rows)
}

// sigmas is how many noise σ a released value may be from the exact one
// before a benchmark fails: the noise is Laplace, P(|X| > kσ) = e^{−k√2},
// so k = ln(partitions/10⁻⁵)/√2 keeps a false alarm below 10⁻⁵ per release
// (6 σ over 360 counts would fail one run in fourteen).
func sigmas(partitions int) float64 {
	return math.Log(float64(partitions)/1e-5) / math.Sqrt2
}

func year(b *testing.B, s string) int {
	y, err := strconv.Atoi(s)
	if err != nil {
		b.Fatal(err)
	}
	return y
}

// engines are the runtimes the per-unit and block benchmarks run on: the
// in-process engine, and with COVE_BENCH_ISOLATED=1 the isolate engine too.
func engines() []string {
	if os.Getenv("COVE_BENCH_ISOLATED") == "1" {
		return []string{"wazero", "isolate"}
	}
	return []string{"wazero"}
}

// groupsData is the file of the per-unit and block benchmarks: the
// Beijing table COVE_BENCH_UNIT_REPLICAS times (default 1). With more than
// one replica, the jobs' unit gains the replica column, so that each
// replica's station-days are units of their own.
func groupsData(b *testing.B) (modeFile, int64) {
	t, err := loadBeijing()
	if err != nil {
		b.Fatal(err)
	}
	reps := envRows("COVE_BENCH_UNIT_REPLICAS", 1)
	return modeData(b, reps*int64(t.rows), false, beijingFloats), reps
}

// groupsUnit is the catalog's unit of the per-unit and block datasets: one
// reading. The jobs bound a coarser unit, the station-day.
var groupsUnit = []string{"replica", "station", "year", "month", "day", "hour"}

// BenchmarkUnitMode: the per-unit C example (examples.PM25Days: a guest
// call per station-day, from a restored snapshot) through the Runner,
// against the same daily-category counts in native Go; then the runtime
// alone over the same station-days, for the cost per unit of restoring the
// guest's state (GroupInstance.Stats).
func BenchmarkUnitMode(b *testing.B) {
	for _, engine := range engines() {
		b.Run("engine="+engine, func(b *testing.B) { benchUnit(b, engine == "isolate") })
	}
}

func benchUnit(b *testing.B, isolated bool) {
	ctx := context.Background()
	f, reps := groupsData(b)
	name := "beijing-air-quality"
	env := newModeEnv(b, name, f.path, groupsUnit, isolated)
	job := examples.PM25Days()
	manifest := strings.Replace(string(job.Manifest), "grant: g-acme-2026", "grant: "+benchGrant, 1)
	if reps > 1 {
		manifest = rewrite(b, manifest, "columns: [station, year, month, day]", "columns: [replica, station, year, month, day]")
	}
	days := gatherDays(b, f.path)
	defer days.release()
	mod, err := env.eng.Compile(ctx, job.Module)
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)

	var cmp comparison
	var direct time.Duration
	var stats wasm.GroupStats
	b.ResetTimer()
	for range b.N {
		rel, d := env.run(b, manifest, job.Module)
		var exact *dayCounts
		cmp.add(d, timedGC(func() { exact = nativeDays(b, f.path, reps, reps > 1) }))

		b.StopTimer()
		checkDays(b, output(b, rel, "days_by_category"), exact)
		b.StartTimer()
		var st wasm.GroupStats
		var counts *dayCounts
		direct += timedGC(func() { st, counts = days.run(b, mod) }).wall
		b.StopTimer()
		if *counts != *exact {
			b.Fatal("runtime alone: the guest's daily categories differ from native Go's")
		}
		stats = stats.Add(st)
		b.StartTimer()
	}
	b.StopTimer()
	env.alloc.AssertSize(b, 0)
	groups := float64(stats.Groups)
	cmp.report(b, f.rows)
	b.ReportMetric(groups/cmp.cove.wall.Seconds(), "job-units/s")
	b.ReportMetric(groups/direct.Seconds(), "runtime-units/s")
	b.ReportMetric(stats.RestoreTime.Seconds()*1e6/groups, "restore-µs/unit")
	b.ReportMetric(float64(stats.RestoredPages)/groups, "restored-pages/unit")
	b.ReportMetric(stats.CallTime.Seconds()*1e6/groups, "call-µs/unit")
	b.ReportMetric(float64(stats.Failed)/groups, "failed/unit")
	b.ReportMetric(groups/float64(b.N), "units")
}

// checkDays checks a release of days_by_category against the exact counts:
// every count within its noise (sigmas).
func checkDays(b *testing.B, out jobs.Output, exact *dayCounts) {
	b.Helper()
	stations := demodata.AirQualityStations()
	if len(out.Rows) != len(exact) {
		b.Fatalf("released %d counts, want %d", len(out.Rows), len(exact))
	}
	var bad []string
	var released, total float64
	for _, r := range out.Rows {
		s, y, c := slices.Index(stations, r.Key[0]), year(b, r.Key[1]), slices.Index(categories, r.Key[2])
		want := float64(exact[(s*nYears+y-firstYear)*6+c])
		released += r.Value
		total += want
		if math.Abs(r.Value-want) > sigmas(len(out.Rows))*r.NoiseStdDev+1e-9 {
			bad = append(bad, fmt.Sprintf("%v: released %g days, exact %g (noise σ %.3g)", r.Key, r.Value, want, r.NoiseStdDev))
		}
	}
	if len(bad) > 0 {
		b.Fatalf("%d of %d counts off (released %g days in all, exact %g):\n%s", len(bad), len(out.Rows), released, total, strings.Join(bad, "\n"))
	}
}

// stationDays is the per-unit guest's columns, read from the file whole
// and ordered by station-day, cut into records of whole station-days of at
// most 64Ki rows (as jobs hands them to the runtime), with the group
// bounds of each.
type stationDays struct {
	recs   []arrow.RecordBatch
	bounds [][]uint32
}

func gatherDays(b *testing.B, path string) *stationDays {
	ctx := context.Background()
	cols := []string{"station", "year", "month", "day", "hour", "PM2.5", "replica"}
	r, err := connectors.OpenFile(path, connectors.Options{Columns: cols, BatchRows: nativeBatchRows})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	guest := len(cols) - 1
	parts := make([][]arrow.Array, guest)
	var unit []int
	var codes []int32
	for r.Next() {
		rec := r.RecordBatch()
		var idx []int32
		codes, idx = stationCodes(rec.Column(0), codes)
		yr := rec.Column(1).(*array.Int64).Int64Values()
		mo := rec.Column(2).(*array.Int64).Int64Values()
		dy := rec.Column(3).(*array.Int64).Int64Values()
		rep := rec.Column(6).(*array.Int64).Int64Values()
		for i := range int(rec.NumRows()) {
			u, ok := dayIndex(rep[i], codes[idx[i]], yr[i], mo[i], dy[i])
			if !ok {
				b.Fatalf("row outside the study's station-days")
			}
			unit = append(unit, u)
		}
		for c := range guest {
			a := rec.Column(c)
			a.Retain()
			parts[c] = append(parts[c], a)
		}
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	order := make([]int32, len(unit))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int { return unit[x] - unit[y] })
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues(order, nil)
	take := ib.NewArray()
	ib.Release()
	defer take.Release()
	var sorted []arrow.Array
	var fields []arrow.Field
	for c := range guest {
		all, err := array.Concatenate(parts[c], memory.DefaultAllocator)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range parts[c] {
			a.Release()
		}
		s, err := compute.TakeArray(ctx, all, take)
		all.Release()
		if err != nil {
			b.Fatal(err)
		}
		sorted = append(sorted, s)
		fields = append(fields, arrow.Field{Name: cols[c], Type: s.DataType(), Nullable: true})
	}
	whole := array.NewRecordBatch(arrow.NewSchema(fields, nil), sorted, int64(len(unit)))
	for _, s := range sorted {
		s.Release()
	}
	defer whole.Release()
	slices.Sort(unit)
	sd := &stationDays{}
	const chunk = 1 << 16
	start := 0
	bounds := []uint32{0}
	for i := 0; i < len(unit); {
		j := i + 1
		for j < len(unit) && unit[j] == unit[i] {
			j++
		}
		if j-start > chunk && i > start {
			sd.recs = append(sd.recs, whole.NewSlice(int64(start), int64(i)))
			sd.bounds = append(sd.bounds, bounds)
			start, bounds = i, []uint32{0}
		}
		bounds = append(bounds, uint32(j-start))
		i = j
	}
	sd.recs = append(sd.recs, whole.NewSlice(int64(start), int64(len(unit))))
	sd.bounds = append(sd.bounds, bounds)
	return sd
}

func (sd *stationDays) release() {
	for _, r := range sd.recs {
		r.Release()
	}
}

// run calls the guest once per station-day from its snapshot and counts
// its contributions by key.
func (sd *stationDays) run(b *testing.B, mod wasm.Module) (wasm.GroupStats, *dayCounts) {
	ctx := context.Background()
	cfg := wasm.NewGroupConfig().WithMemoryPages(16 * jobs.DefaultUnitMemoryMiB).WithCPULimit(jobs.DefaultUnitCPU * time.Millisecond)
	inst, err := mod.InstantiateGroups(ctx, []string{"days_by_category"}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close(ctx)
	sink := &countSink{}
	for i, rec := range sd.recs {
		if err := inst.RunGroups(ctx, rec, sd.bounds[i], sink); err != nil {
			b.Fatal(err)
		}
	}
	stations := demodata.AirQualityStations()
	var out dayCounts
	for id, n := range sink.byKey {
		parts := strings.Split(inst.KeyName(uint32(id)), jobs.KeySeparator)
		if n == 0 {
			continue
		}
		if len(parts) != 3 {
			b.Fatalf("key %q", inst.KeyName(uint32(id)))
		}
		s, y, c := slices.Index(stations, parts[0]), year(b, parts[1]), slices.Index(categories, parts[2])
		if s < 0 || c < 0 || y < firstYear || y >= firstYear+nYears {
			b.Fatalf("key %q", inst.KeyName(uint32(id)))
		}
		out[(s*nYears+y-firstYear)*6+c] += n
	}
	return inst.Stats(), &out
}

// countSink counts contributions per key id.
type countSink struct{ byKey []int64 }

func (s *countSink) Emit(_ int, e wasm.Emission) error {
	for _, k := range e.Keys {
		if int(k) >= len(s.byKey) {
			s.byKey = append(s.byKey, make([]int64, int(k)+1-len(s.byKey))...)
		}
		s.byKey[k]++
	}
	return nil
}
func (s *countSink) Vector(int, int, []float64) error { return nil }
func (s *countSink) Failed(int) error                 { return nil }

// BenchmarkBlockMode: the block C example (examples.PM25Regress: OLS of
// PM2.5 on the weather per block) with k = 100 blocks through the Runner,
// against the same OLS per block in native Go on blocks of its own hash
// and the mean of the clamped coefficients.
func BenchmarkBlockMode(b *testing.B) {
	for _, engine := range engines() {
		b.Run("engine="+engine, func(b *testing.B) { benchBlock(b, engine == "isolate") })
	}
}

func benchBlock(b *testing.B, isolated bool) {
	const k = 100
	f, reps := groupsData(b)
	name := "beijing-air-quality"
	env := newModeEnv(b, name, f.path, groupsUnit, isolated)
	job := examples.PM25Regress()
	manifest := strings.Replace(string(job.Manifest), "grant: g-acme-2026", "grant: "+benchGrant, 1)
	manifest = rewrite(b, manifest, "blocks:", fmt.Sprintf("blocks: %d", k))
	if reps > 1 {
		manifest = rewrite(b, manifest, "columns: [station, year, month, day]", "columns: [replica, station, year, month, day]")
	}
	labels := []string{"intercept", "temp", "dewp", "wind"}

	var cmp comparison
	b.ResetTimer()
	for range b.N {
		rel, d := env.run(b, manifest, job.Module)
		var exact [regressors + 1]float64
		cmp.add(d, timedGC(func() { exact = nativeRegress(b, f.path, k, reps > 1) }))

		b.StopTimer()
		out := output(b, rel, "coef")
		if len(out.Rows) != len(labels) {
			b.Fatalf("released %d coefficients, want %d", len(out.Rows), len(labels))
		}
		for _, r := range out.Rows {
			j := slices.Index(labels, r.Key[0])
			if j < 0 {
				b.Fatalf("coefficient %v", r.Key)
			}
			// Within 3 × the 95% interval's half-width. The interval is
			// clamped to the coordinate's bounds: where the noise is as wide
			// as the bounds (k = 100 blocks), take the unclamped 1.96 σ;
			// and never less than the noise allows (sigmas).
			half := max((r.CIHigh-r.CILow)/2, 1.96*r.NoiseStdDev)
			if math.Abs(r.Value-exact[j]) > max(3*half, sigmas(len(out.Rows))*r.NoiseStdDev)+1e-9 {
				b.Fatalf("%s: released %.4f, native mean over blocks %.4f (95%% CI half-width %.3g)", labels[j], r.Value, exact[j], half)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	env.alloc.AssertSize(b, 0)
	cmp.report(b, f.rows)
}
