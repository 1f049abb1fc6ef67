//go:build unix && !linux

package cluster

import "syscall"

// sysProcAttr puts a lab process in its own process group, so Stop can signal it and every child
// at once.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
