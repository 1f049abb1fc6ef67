package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const inotifyLimitFile = "/proc/sys/fs/inotify/max_user_instances"

// checkInotify makes sure one more lab cluster fits under the user's inotify instance limit,
// raising the limit when running as root.
func checkInotify() error {
	b, err := os.ReadFile(inotifyLimitFile)
	if err != nil {
		return nil // no such limit to check here
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	var raise func(int) error
	if os.Geteuid() == 0 {
		raise = func(n int) error { return os.WriteFile(inotifyLimitFile, []byte(strconv.Itoa(n)+"\n"), 0o644) }
	}
	return inotifyRoom(limit, inotifyInUse(os.Getuid()), InotifyPerCluster+inotifyReserve, raise)
}

// inotifyInUse counts the inotify instances the processes of uid hold (those /proc lets this
// process see).
func inotifyInUse(uid int) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, p := range procs {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || int(st.Uid) != uid {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(p, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(p, "fd", fd.Name())); err == nil && target == "anon_inode:inotify" {
				n++
			}
		}
	}
	return n
}
