// Package examples holds Cove's example jobs, written in Go against the
// guest SDK, and their built WebAssembly modules.
//
// # Jobs
//
//   - airquality (dataset beijing-air-quality): output pm25_mean, the PM2.5
//     readings keyed by station and year, nulls skipped.
//   - adult (dataset adult): output high_income_count, a count per
//     education of rows with income ">50K"; output hours_mean, hours-per-week
//     keyed by occupation, null occupations skipped.
//   - c/airquality: airquality written in C against sdk/guest/c/cove.h, with
//     per-row logic in the guest (AirQualityC).
//
// The Go jobs run on host kernels: the host filters, groups and makes the
// contributions natively over the batch's Arrow buffers.
//
// # Modules
//
// Each job's module (job.wasm next to its main.go) is committed and embedded
// here. The build is reproducible; a test rebuilds both and compares hashes.
// C jobs are built with Debian's clang, lld and wasi-libc. After changing a
// job or the SDK, run
//
//	go generate ./examples
package examples
