// On Linux the server dies with the test binary, even when a test timeout panics it.

package switchyard_test

import (
	"os/exec"
	"syscall"
)

func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
