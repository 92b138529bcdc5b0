package examples

import (
	"embed"
	"io/fs"
)

//go:generate go run ./internal/gen

// files holds each job's module and, once written, its manifest
// (<job>/manifest.yaml).
//
//go:embed airquality/job.wasm adult/job.wasm c/airquality/job.wasm
//go:embed airquality adult c/airquality
var files embed.FS

// Job is one example job.
type Job struct {
	Name     string // the job's directory: "airquality" or "adult"
	Module   []byte // the built WebAssembly module (<job>/job.wasm)
	Manifest []byte // <job>/manifest.yaml, nil when there is none
}

// AirQuality returns the airquality job.
func AirQuality() Job { return load("airquality") }

// Adult returns the adult job.
func Adult() Job { return load("adult") }

// AirQualityC returns the airquality job written in C, with per-row logic
// in the guest (Name "c/airquality").
func AirQualityC() Job { return load("c/airquality") }

// All returns every example job written in Go.
func All() []Job { return []Job{AirQuality(), Adult()} }

func load(name string) Job {
	mod, err := fs.ReadFile(files, name+"/job.wasm")
	if err != nil {
		panic("examples: " + err.Error()) // embedded at build time: cannot happen
	}
	man, _ := fs.ReadFile(files, name+"/manifest.yaml")
	return Job{Name: name, Module: mod, Manifest: man}
}
