package stack

import (
	"os/exec"
	"syscall"
)

// tieToParent makes the kernel kill the child when the test process dies,
// so an interrupted run leaves no collector or Prometheus behind.
func tieToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
