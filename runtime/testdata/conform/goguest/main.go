//go:build wasip1

// Command goguest is the ABI conformance program (package job) as a Go
// guest.
package main

import (
	"github.com/covedata/cove/runtime/testdata/conform/job"
	"github.com/covedata/cove/sdk/guest"
)

func init() { guest.Handle(job.Process) }

func main() {}
