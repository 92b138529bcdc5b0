//go:build race

package isolate

// raceEnabled: sandboxes are this race-instrumented binary too, several
// times slower to start and compile.
const raceEnabled = true
