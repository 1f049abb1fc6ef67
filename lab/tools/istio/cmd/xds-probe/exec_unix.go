//go:build unix

package main

import (
	"io"
	"os"
	"syscall"
)

// reexec replaces this process by xds-probe with the same arguments and boot in the
// environment (bootstrapEnv): the same process id, so whoever started it may stop it.
func reexec(boot string, _, _ io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(self, os.Args, probeEnv(boot))
}
