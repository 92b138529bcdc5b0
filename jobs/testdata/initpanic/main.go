//go:build wasip1

// A guest whose initialization fails (on every dataset alike): the job
// fails before it reads a row.
package main

import "github.com/covedata/cove/sdk/guest"

func init() {
	guest.Handle(func(*guest.Batch) error { return nil })
	panic("init fails")
}
func main() {}
