package stack

import (
	"os/exec"
	"syscall"
)

// tieToParent makes the kernel kill the child when the test process dies,
// so an interrupted run leaves no collector or Prometheus behind. The child
// gets a process group of its own: Ctrl-C in a terminal signals the whole
// foreground group, and the servers must outlive the programs that export
// to them (devstack stops them last, in order).
func tieToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
