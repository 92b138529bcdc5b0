// Package bench holds Cove's benchmarks. Each measures Cove against a
// native-Go computation of the same result in the same run, so the ratio is
// meaningful on shared, noisy machines.
//
// # Running
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/
//
// BenchmarkAirQuality runs the air-quality example job (mean PM2.5 per
// station and year, a Go guest) over the Beijing data replicated ten times
// (4,207,680 rows) and, in the same iteration, a native Go exact computation
// over the same file. It reports rows/s for both and their ratio.
//
// # The job modes
//
//	go test -run '^$' -bench 'PlanMode|UnitMode|BlockMode' -benchtime 3x ./bench/
//	COVE_BENCH_ROWS=1000000 go test -run '^$' -bench PlanMode -benchtime 1x ./bench/   # smaller
//	COVE_BENCH_ISOLATED=1 COVE_BENCH_UNIT_REPLICAS=10 go test -run '^$' -bench 'UnitMode|BlockMode' -benchtime 3x ./bench/
//
// Each runs a job through jobs.Runner — a store in a temporary directory,
// the dataset registered with Runner.RegisterDataset, a grant, a checked
// Arrow allocator asserted empty at the end, a fresh job id per iteration
// — and in the same iteration a native Go baseline: one tight loop over the
// decoded Arrow columns with integer group codes (the station dictionary
// mapped once per batch to a small code, year − 2013), no string key and no
// map per row. Both sides read the same Parquet file through
// connectors.OpenFile with the same columns, so both include Parquet
// decoding; each side's time includes collecting its own garbage. The data
// (the Beijing table replicated, station stored as a dictionary, with
// columns replica and uid that give fresh privacy units) is written once,
// outside the timed region. Every iteration checks the release against the
// exact answer (within the noise, see sigmas in modes_test.go).
//
// Each reports cove-rows/s and native-rows/s, cove/native (native time over
// Cove's over all iterations: 1 is as fast as native Go),
// best-cove/native (the same for each side's fastest iteration, the
// figure least disturbed by other work), and each side's mean wall time
// (cove-ms, native-ms) and CPU time of the process (cove-cpu-ms,
// native-cpu-ms: every thread, the garbage collector's included, not a
// sandbox process's).
//
//   - BenchmarkPlanMode: mean PM2.5 per station × year (12 × 5 public
//     partitions, bounds [0, 1000], ε 0.5), a plan written in the manifest
//     (no module), over COVE_BENCH_ROWS rows (default 10,000,000). The
//     catalog's unit, (replica, station, year, month, day, hour), is
//     unique per row, as registration records: each row is its own unit
//     and clamping is the whole bounding. Target ≥ 0.8× native.
//   - BenchmarkPlanModeBounded: the same rows and job, the catalog's unit
//     uid shared by 10 consecutive rows: the host hashes each row's unit
//     and bounds contributions (L0 = L∞ = 1); the native side computes the
//     exact mean, unbounded. Target ≥ 0.4× native.
//   - BenchmarkUnitMode: the per-unit C example (examples.PM25Days: a
//     guest call per station-day from a restored snapshot, days by AQI
//     category per station and year) over the Beijing table
//     (COVE_BENCH_UNIT_REPLICAS copies, default 1; with more, the job's
//     unit gains replica), against the same counts in native Go. Then the
//     runtime alone (Module.InstantiateGroups, RunGroups over the
//     station-days) gives the cost per unit from GroupInstance.Stats:
//     restore-µs/unit (goal ≤ 2 µs for a guest dirtying ≤ 64 KiB),
//     restored-pages/unit (4 KiB pages), call-µs/unit; and job-units/s and
//     runtime-units/s.
//   - BenchmarkBlockMode: the block C example (examples.PM25Regress: OLS of
//     PM2.5 on TEMP, DEWP and WSPM) with k = 100 blocks, against native Go
//     fitting the same OLS on 100 blocks of station-days (its own hash) and
//     averaging the clamped coefficients. Target ≥ 0.5× native.
//
// The per-unit and block benchmarks run on the in-process engine
// (engine=wazero) and, with COVE_BENCH_ISOLATED=1, on the isolate engine
// too (engine=isolate).
package bench
