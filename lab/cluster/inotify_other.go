//go:build !linux

package cluster

// checkInotify has nothing to check where there is no fs.inotify.max_user_instances.
func checkInotify() error { return nil }
