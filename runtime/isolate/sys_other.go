//go:build !linux

package isolate

import "syscall"

func sysProcAttr(mode int) *syscall.SysProcAttr { return nil }

func setLimits(as, cpu uint64, uses int) error { return nil }

func boundCPU(cpu uint64) {}

func netNamespace() string { return "" }

const haveNetNS = false

func usedCPU() uint64 { return 0 }

func closeInherited() {}

func cloexec(fd int) bool { return true }
