// Package demo runs Cove end to end on the embedded public data: it registers
// the Beijing air-quality and UCI Adult datasets, grants an operator, runs the
// two example jobs, shows two rejections and verifies the ledger. `cove demo`
// and the end-to-end test both run it.
package demo
