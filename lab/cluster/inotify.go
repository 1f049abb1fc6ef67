package cluster

import "fmt"

// InotifyPerCluster is about how many inotify instances a lab cluster's processes hold: each
// kube-apiserver holds 6 and each kube-controller-manager 3 (measured). The kernel's default
// fs.inotify.max_user_instances, 128 per user, runs out at about 13 clusters, and the process
// that hits it fails in ways that do not say so ("too many open files" from a webhook).
const InotifyPerCluster = 9

// inotifyReserve is the room left beyond one more cluster: a Karmada control plane's processes
// and reconcile's own watches (fleet.yaml's directory, the drift watch) need some too.
const inotifyReserve = 16

// inotifyRoom decides whether need more inotify instances fit under limit with used taken:
// nil when they do; when they do not and raise is given (the process may write the sysctl),
// it raises the limit with room to spare; otherwise an error that names the limit and how to
// raise it.
func inotifyRoom(limit, used, need int, raise func(int) error) error {
	if limit <= 0 || limit-used >= need {
		return nil
	}
	want := max(2*limit, used+need+8*InotifyPerCluster)
	if raise != nil {
		if err := raise(want); err == nil {
			return nil
		}
	}
	return fmt.Errorf("fs.inotify.max_user_instances is %d and this user holds %d: a lab cluster needs about %d more "+
		"(each kube-apiserver holds 6, each kube-controller-manager 3); raise it (sysctl -w fs.inotify.max_user_instances=%d) "+
		"or run fewer lab clusters", limit, used, need, want)
}
