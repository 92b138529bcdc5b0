package isolate

import (
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr is the sandbox's process attributes for a namespace mode: 1 a
// new network namespace (needs CAP_SYS_ADMIN), 2 new user and network
// namespaces (unprivileged, where the kernel allows user namespaces), 3
// none. The sandbox dies with its parent.
func sysProcAttr(mode int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	switch mode {
	case 1:
		a.Cloneflags = syscall.CLONE_NEWNET
	case 2:
		a.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
	}
	return a
}

// setLimits applies the sandbox's resource limits to itself, before it
// reads any untrusted byte: address space, CPU seconds (cpu per instance,
// for uses instances), no core dumps, no file over 1 GiB (the compilation
// cache writes compiled modules), few descriptors.
func setLimits(as, cpu uint64, uses int) error {
	set := func(res int, v uint64) error {
		return syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v})
	}
	for _, l := range []struct {
		res int
		v   uint64
	}{
		{syscall.RLIMIT_CORE, 0},
		{syscall.RLIMIT_FSIZE, 1 << 30},
		{syscall.RLIMIT_NOFILE, 64},
	} {
		if err := set(l.res, l.v); err != nil {
			return err
		}
	}
	if as > 0 {
		if err := set(syscall.RLIMIT_AS, as); err != nil {
			return err
		}
	}
	if cpu > 0 {
		// Soft limit: SIGXCPU, at one instance's worth (callContext moves
		// it with each deadline); hard limit: SIGKILL, a second past all
		// the uses' worth. The parent's watchdog bounds each call anyway.
		if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: cpu, Max: cpu*uint64(uses) + 1}); err != nil {
			return err
		}
	}
	return nil
}

// boundCPU sets the soft CPU limit to cpu seconds, below the hard limit.
func boundCPU(cpu uint64) {
	var cur syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_CPU, &cur) == nil && cur.Max != ^uint64(0) {
		_ = syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: min(cpu, cur.Max-1), Max: cur.Max})
	}
}

// netNamespace names the sandbox's network namespace (for tests).
func netNamespace() string {
	s, _ := os.Readlink("/proc/self/ns/net")
	return s
}

// haveNetNS: namespaces are Linux only.
const haveNetNS = true

// usedCPU is the CPU seconds the process has used, rounded up.
func usedCPU() uint64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	us := ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
	return uint64((us + 999_999) / 1_000_000)
}

// closeInherited closes every descriptor above 2 that survived exec: one
// without FD_CLOEXEC was inherited (Go opens its own with FD_CLOEXEC), so a
// descriptor the parent leaked (a library's, a shell's) is gone before the
// sandbox reads an untrusted byte.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&syscall.FD_CLOEXEC == 0 {
			_ = syscall.Close(fd)
		}
	}
}

// cloexec reports whether fd has FD_CLOEXEC.
func cloexec(fd int) bool {
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	return errno == 0 && flags&syscall.FD_CLOEXEC != 0
}
