package capmonster_test

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the emulator if the test binary dies without
// stopping it (a crash, a timeout panic).
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
