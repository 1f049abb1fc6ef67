package cluster

import "syscall"

// sysProcAttr puts a lab process in its own process group, so Stop can signal it and every child
// at once, and has the kernel kill it if the process that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
