//go:build !wasmer

package wasm_test

import "github.com/covedata/cove/runtime/testdata/conform/suite"

// wasmerEngine is not in this build: its conformance subtests skip.
var wasmerEngine = suite.Engine{Name: "wasmer", Skip: "the wasmer engine needs -tags wasmer (and cgo)"}
