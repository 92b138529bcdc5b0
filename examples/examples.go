package examples

import (
	"embed"
	"io/fs"
)

//go:generate go run ./internal/gen

// files holds each job's module and, once written, its manifest
// (<job>/manifest.yaml).
//
//go:embed airquality/job.wasm adult/job.wasm c/airquality/job.wasm c/pm25days/job.wasm c/pm25regress/job.wasm
//go:embed airquality adult c/airquality c/pm25days c/pm25regress
var files embed.FS

// Job is one example job.
type Job struct {
	Name     string // the job's directory: "airquality", "adult", "c/pm25days", ...
	Module   []byte // the built WebAssembly module (<job>/job.wasm)
	Manifest []byte // <job>/manifest.yaml, nil when there is none
}

// AirQuality returns the airquality job (plan mode).
func AirQuality() Job { return load("airquality") }

// Adult returns the adult job (plan mode).
func Adult() Job { return load("adult") }

// AirQualityC returns the airquality job written in C, with per-row logic
// in the guest, one reading per call (unit mode; Name "c/airquality").
func AirQualityC() Job { return load("c/airquality") }

// PM25Days returns the per-unit C job that counts station-days by AQI
// category (unit mode; Name "c/pm25days").
func PM25Days() Job { return load("c/pm25days") }

// PM25Regress returns the block C job that regresses PM2.5 on the weather
// (block mode; Name "c/pm25regress").
func PM25Regress() Job { return load("c/pm25regress") }

// All returns every example job written in Go.
func All() []Job { return []Job{AirQuality(), Adult()} }

// C returns every example job written in C.
func C() []Job { return []Job{AirQualityC(), PM25Days(), PM25Regress()} }

func load(name string) Job {
	mod, err := fs.ReadFile(files, name+"/job.wasm")
	if err != nil {
		panic("examples: " + err.Error()) // embedded at build time: cannot happen
	}
	man, _ := fs.ReadFile(files, name+"/manifest.yaml")
	return Job{Name: name, Module: mod, Manifest: man}
}
