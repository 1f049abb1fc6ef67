//go:build !unix

package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
)

// reexec runs xds-probe again with the same arguments and boot in the environment
// (bootstrapEnv), and waits for it.
func reexec(boot string, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = probeEnv(boot)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode()}
	}
	return err
}
