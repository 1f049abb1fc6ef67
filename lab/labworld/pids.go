package labworld

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procID names one process for its lifetime: a PID alone may be reused after the process
// exits, its start time (in clock ticks since boot, /proc/<pid>/stat field 22) with it may not.
type procID struct {
	PID   int
	Start uint64
}

// procStat reads a process's parent PID and start time from /proc.
func procStat(pid int) (ppid int, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return ppid, start, err
}

// children lists the live direct children of pid.
func children(pid int) []procID {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procID
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, err := procStat(p)
		if err == nil && ppid == pid {
			out = append(out, procID{p, start})
		}
	}
	return out
}

// alive reports whether the process still runs (a zombie does not count) and is the one
// recorded.
func (p procID) alive() bool {
	_, start, err := procStat(p.PID)
	if err != nil || start != p.Start {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
		return false
	}
	return true
}

// pidFile records the processes the lab starts, one "pid start" a line, so that `lab down`
// can end them even when the serve process died without stopping them.
type pidFile struct {
	path string
	mu   sync.Mutex
	seen map[procID]bool
}

// recordChildren appends every direct child of this process not recorded yet.
func (f *pidFile) recordChildren() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[procID]bool{}
	}
	var lines strings.Builder
	for _, c := range children(os.Getpid()) {
		if !f.seen[c] {
			f.seen[c] = true
			fmt.Fprintf(&lines, "%d %d\n", c.PID, c.Start)
		}
	}
	if lines.Len() == 0 {
		return nil
	}
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(lines.String())
	return errors.Join(err, fh.Close())
}

func readPIDFile(path string) ([]procID, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []procID
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var p procID
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p.PID, &p.Start); err == nil && p.PID > 1 {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// terminate sends SIGTERM to each live process (to its whole group when it leads one), waits
// up to grace for all to exit, then kills what is left. It reports the processes it had to kill.
func terminate(procs []procID, grace time.Duration) (killed []procID) {
	signal := func(p procID, sig syscall.Signal) {
		if pgid, err := syscall.Getpgid(p.PID); err == nil && pgid == p.PID {
			_ = syscall.Kill(-p.PID, sig)
		}
		_ = syscall.Kill(p.PID, sig)
	}
	var live []procID
	for _, p := range procs {
		if p.alive() {
			signal(p, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(live) > 0 && time.Now().Before(deadline) {
		<-tick.C
		live = stillAlive(live)
	}
	for _, p := range live {
		signal(p, syscall.SIGKILL)
		killed = append(killed, p)
	}
	// SIGKILL cannot be ignored; bound the wait anyway.
	deadline = time.Now().Add(5 * time.Second)
	for len(live) > 0 && time.Now().Before(deadline) {
		<-tick.C
		live = stillAlive(live)
	}
	return killed
}

func stillAlive(ps []procID) []procID {
	var out []procID
	for _, p := range ps {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

func pidFilePath(dir string) string { return filepath.Join(dir, "pids") }
