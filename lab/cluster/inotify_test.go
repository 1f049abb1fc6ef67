package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestInotifyRoom(t *testing.T) {
	t.Parallel()
	if err := inotifyRoom(128, 100, InotifyPerCluster, nil); err != nil {
		t.Errorf("room for one more cluster: %v", err)
	}
	err := inotifyRoom(128, 124, InotifyPerCluster, nil)
	if err == nil || !strings.Contains(err.Error(), "fs.inotify.max_user_instances is 128 and this user holds 124") ||
		!strings.Contains(err.Error(), "sysctl -w fs.inotify.max_user_instances=256") {
		t.Errorf("no room and no way to raise it: %v", err)
	}
	var raised int
	if err := inotifyRoom(128, 124, InotifyPerCluster, func(n int) error { raised = n; return nil }); err != nil || raised != 256 {
		t.Errorf("root raises the limit: err %v, raised to %d", err, raised)
	}
	if err := inotifyRoom(128, 124, InotifyPerCluster, func(int) error { return errors.New("read-only /proc") }); err == nil {
		t.Error("a failed raise is refused with the limit named")
	}
	if err := inotifyRoom(0, 500, InotifyPerCluster, nil); err != nil {
		t.Errorf("an unknown limit is not checked: %v", err)
	}
}
