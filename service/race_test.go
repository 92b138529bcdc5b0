//go:build race

package service_test

// raceEnabled: the race binary does not fit a sandbox's address-space
// limit, so servers under the race detector run guests in process.
const raceEnabled = true
