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
package bench
