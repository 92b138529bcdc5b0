//go:build !linux

package wasm

import "time"

func threadID() int { return 0 }

// threadCPU does not know a thread's CPU time here: the CPU limit is wall
// time.
func threadCPU(int) (time.Duration, bool) { return 0, false }
