//go:build wasip1

// Command initloop never finishes its initialization.
package main

import "github.com/covedata/cove/sdk/guest"

var spin int

func init() {
	for {
		spin++
	}
}

func init() { guest.Handle(func(*guest.Batch) error { return nil }) }

func main() {}
