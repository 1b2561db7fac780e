//go:build !linux

// Elsewhere the server is killed by each test's cleanup only.

package switchyard_test

import "os/exec"

func killWithParent(*exec.Cmd) {}
