package miniotest

import (
	"os/exec"
	"syscall"
)

// setProcAttr kills the server if the test process dies first.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
