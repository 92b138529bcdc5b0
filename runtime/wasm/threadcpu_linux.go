package wasm

import (
	"syscall"
	"time"
	"unsafe"
)

// threadID is the calling OS thread's id.
func threadID() int { return syscall.Gettid() }

// threadCPU is the CPU time thread tid (of this process) has used; ok
// false when the OS does not say.
func threadCPU(tid int) (time.Duration, bool) {
	// A thread's CPU clock: CPUCLOCK_SCHED (2) | CPUCLOCK_PERTHREAD (4),
	// with the inverted thread id above (Linux, clock_getcpuclockid).
	clock := uintptr(int32((^tid)<<3 | 6))
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
