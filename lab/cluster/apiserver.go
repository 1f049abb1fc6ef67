package cluster

// APIServerPID is the process id of the cluster's kube-apiserver (also its process group),
// for tests that stop it (SIGSTOP) to make a cluster that accepts connections and never answers.
func (c *Cluster) APIServerPID() int { return c.apiServer.Pid() }
