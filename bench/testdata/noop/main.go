//go:build wasip1

// Command noop does nothing with its batches: the floor of a Go guest's
// per-batch cost (region allocation, decoding, host encoding).
package main

import "github.com/covedata/cove/sdk/guest"

func init() { guest.Handle(func(*guest.Batch) error { return nil }) }

func main() {}
