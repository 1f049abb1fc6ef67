package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// stopGrace is how long a stopped process gets to exit after SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// Process is one lab binary running in its own process group, its output in a log file. Other lab
// packages (karmadalab) start their binaries with it too.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and err is set
	err     error
}

// StartProcess runs bin with args in its own process group (on Linux killed if its starter dies),
// stdout and stderr appended to logPath (mode 0600).
func StartProcess(name, logPath, bin string, args ...string) (*Process, error) {
	return StartProcessWith(name, logPath, bin, ProcessOptions{}, args...)
}

// ProcessOptions are what StartProcessWith sets beyond StartProcess.
type ProcessOptions struct {
	// Env is the process's whole environment; nil passes this process's.
	Env []string
	// Dir is its working directory; empty is this process's.
	Dir string
}

// StartProcessWith is StartProcess with an environment and a working directory of its own.
func StartProcessWith(name, logPath, bin string, o ProcessOptions, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = o.Env, o.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports an error, with the end of the log, if the process has already exited.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early (%v); last log lines of %s:\n%s", p.name, p.err, p.logPath, Tail(p.logPath, 20))
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, waits up to stopGrace, then kills the group. It is
// safe to call more than once.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.Pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s (pid %d) did not exit within %s of SIGTERM; killed", p.name, pgid, stopGrace)
}

// RSSBytes is the resident set size of the process, read from /proc.
func (p *Process) RSSBytes() (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Tail returns up to the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// FreePort returns a TCP port that is free on host at the time of the call.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PollUntil calls check every 100ms until it returns true, one of procs exits, or timeout (or
// ctx) expires. An error from check means "not yet": the last one is reported on timeout.
func PollUntil(ctx context.Context, timeout time.Duration, what string, procs []*Process, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var last error
	for {
		for _, p := range procs {
			if err := p.Exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-ticker.C:
		}
	}
}
