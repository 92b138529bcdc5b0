// Package mock makes schema-true synthetic data for any catalog entry and
// runs a job on it locally, showing what only mock data may show: the
// guest's own output (stdout, stderr) and its contributions row by row.
//
// # No real value
//
// Generate reads only the catalog: each column's name and type, and the
// public value domains the authority listed (station names, education
// levels) or the caller adds (a manifest's public group-by values). Numbers
// come from fixed synthetic ranges, strings without a domain are
// "<column>-<n>", and the randomness is a seeded PCG: the data holds
// nothing of the real dataset, not even its ranges.
//
// # Debugging
//
// Run executes a job twice on the mock data: once through the real
// pipeline (admission, runner, enclave) on a throwaway store, so the
// release has its real shape, and once directly on the engine with every
// emission listed with the row it came from. On real data neither the
// guest's output nor a per-row trace ever leaves the sandbox.
package mock
