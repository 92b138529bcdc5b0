package main

import (
	"fmt"

	"github.com/covedata/cove/runtime/isolate"
)

// sandboxCmd is the hidden `cove sandbox` subcommand: a guest's sandbox
// process, started by runtime/isolate, never by a person.
func sandboxCmd() error {
	if code := isolate.Serve(); code != 0 {
		return fmt.Errorf("sandbox exited with code %d", code)
	}
	return nil
}
