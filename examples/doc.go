// Package examples holds Cove's example jobs, written in Go against the
// guest SDK and in C against sdk/guest/c/cove.h, their manifests and their
// built WebAssembly modules: one job or more for each mode.
//
// # Jobs
//
//   - airquality (dataset beijing-air-quality, plan mode): output
//     pm25_mean, the PM2.5 readings keyed by station and year, nulls
//     skipped.
//   - adult (dataset adult, plan mode): output high_income_count, a count
//     per education of rows with income ">50K"; output hours_mean,
//     hours-per-week keyed by occupation, null occupations skipped.
//   - c/airquality (unit mode): airquality written in C, with per-row logic
//     in the guest, called once per reading (AirQualityC).
//   - c/pm25days (unit mode): per station-day, the mean PM2.5 of the day's
//     hourly readings mapped to its Chinese AQI category, counted per
//     station, year and category: output days_by_category (PM25Days).
//   - c/pm25regress (block mode): per block of station-days, the least
//     squares fit of PM2.5 on TEMP, DEWP and WSPM; output coef, the
//     noisy mean of the four coefficients over 100 blocks (PM25Regress).
//
// The Go jobs are plan jobs: in the planning call their handlers see the
// schema only and build the plan (each job's plan.golden.json) that the
// host runs natively. On mock data in batch mode the same handlers run on
// host kernels. Their tests (go test ./examples/...) check both with
// guest.PlanLocal and guest.RunLocal; this package's tests run the
// committed modules: the Go jobs' planning calls, and the C jobs over the
// whole dataset unit by unit and block by block, against the same
// computations in Go.
//
// # Modules
//
// Each job's module (job.wasm next to its main.go) is committed and embedded
// here. The build is reproducible; a test rebuilds each and compares hashes.
// C jobs are built with Debian's clang, lld and wasi-libc. After changing a
// job or the SDK, run
//
//	go generate ./examples
package examples
