package linode

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/linode/linodego"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/state"
)

// storeKubeconfig waits (bounded by WaitTimeout) until the fleet's cluster name has a ready
// node and serves its kubeconfig, checks that it parses, and stores it as
// "kubeconfigs/<name>"; with copyTo set it also writes that file (0600, its directory 0700).
// Unchanged files are not rewritten. It returns the API endpoint of the kubeconfig's
// current context.
func (d *Driver) storeKubeconfig(ctx context.Context, name, copyTo string) (string, error) {
	cur, err := d.findOwned(ctx, d.cfg.Fleet, name)
	if err != nil {
		return "", err
	}
	if cur == nil {
		// Transient: the step runs after the create, and a list may lag a create.
		return "", state.Transient(fmt.Errorf("linode: kubeconfig of %s: fleet %s owns no LKE cluster %s", name, d.cfg.Fleet, name), 0)
	}
	id := cur.ID

	// One deadline for both waits: the whole step is bounded by WaitTimeout.
	deadline := time.Now().Add(d.cfg.WaitTimeout)

	var raw []byte
	err = d.waitUntil(ctx, deadline, "the kubeconfig of cluster "+name, func(ctx context.Context) (bool, string, error) {
		// The no-retry client: a 503 "not yet available" comes back at once.
		kc, err := d.poll.GetLKEClusterKubeconfig(ctx, id)
		if err != nil {
			if isStatus(err, http.StatusServiceUnavailable) {
				return false, lastAnswer(err), nil
			}
			return false, "", classify(ctx, "get kubeconfig of cluster "+name, err)
		}
		dec, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
		if err != nil {
			return false, "", fmt.Errorf("linode: kubeconfig of cluster %s is not base64: %w", name, err)
		}
		raw = dec
		return true, "", nil
	})
	if err != nil {
		return "", err
	}
	if err := checkKubeconfig(raw); err != nil {
		return "", fmt.Errorf("linode: kubeconfig of cluster %s: %w", name, err)
	}

	err = d.waitUntil(ctx, deadline, "a ready node in cluster "+name, func(ctx context.Context) (bool, string, error) {
		pools, err := d.api.ListLKENodePools(ctx, id, &linodego.ListOptions{PageSize: listPageSize})
		if err != nil {
			return false, "", classify(ctx, "list pools of cluster "+name, err)
		}
		nodes := 0
		for _, p := range pools {
			for _, n := range p.Linodes {
				nodes++
				if n.Status == linodego.LKELinodeReady {
					return true, "", nil
				}
			}
		}
		return false, fmt.Sprintf("%d nodes, none ready", nodes), nil
	})
	if err != nil {
		return "", err
	}

	if err := d.saveKubeconfig(name, id, raw, copyTo); err != nil {
		return "", err
	}
	d.log.Info("stored kubeconfig", "cluster", name, "linodeID", id)
	return kubeconfigServer(raw), nil
}

// saveKubeconfig stores a checked kubeconfig of cluster id as "kubeconfigs/<name>" with the
// record that binds it to id, and copies it to copyTo when set. The kubeconfig step and the
// observer both store through it, so either leaves the same files.
func (d *Driver) saveKubeconfig(name string, id int, raw []byte, copyTo string) error {
	if err := d.writeStore(kubeconfigName(name), raw); err != nil {
		return fmt.Errorf("linode: store kubeconfig of cluster %s: %w", name, err)
	}
	record, _ := json.Marshal(kubeconfigRecord{ClusterID: id})
	if err := d.writeStore(kubeconfigRecordName(name), record); err != nil {
		return fmt.Errorf("linode: store kubeconfig of cluster %s: %w", name, err)
	}
	if copyTo != "" {
		if err := state.WritePrivateFile(copyTo, raw); err != nil {
			return fmt.Errorf("linode: write kubeconfig of cluster %s: %w", name, err)
		}
	}
	return nil
}

// errNotReady means LKE does not serve the cluster's kubeconfig yet (503).
var errNotReady = errors.New("the kubeconfig is not available yet")

// fetchKubeconfig is the observer's side of the kubeconfig step: one GET of the kubeconfig of
// a cluster that has a ready node, stored as the step would store it. A runner with an empty
// store (a fresh CI runner) then reads the clusters that exist in this same pass, instead of
// planning their contents as absent. It returns errNotReady on 503 (the step is planned
// then, as before) and writes nothing on any error.
func (d *Driver) fetchKubeconfig(ctx context.Context, name string, id int, copyTo string) error {
	kc, err := d.poll.GetLKEClusterKubeconfig(ctx, id)
	if err != nil {
		if isStatus(err, http.StatusServiceUnavailable) {
			return errNotReady
		}
		return classify(ctx, "get kubeconfig of cluster "+name, err)
	}
	raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	if err != nil {
		return fmt.Errorf("linode: kubeconfig of cluster %s is not base64: %w", name, err)
	}
	if err := checkKubeconfig(raw); err != nil {
		return fmt.Errorf("linode: kubeconfig of cluster %s: %w", name, err)
	}
	if err := d.saveKubeconfig(name, id, raw, copyTo); err != nil {
		return err
	}
	d.log.Info("stored kubeconfig while observing", "cluster", name, "linodeID", id)
	return nil
}

// kubeconfigRecord says which LKE cluster the stored kubeconfig belongs to, so that a
// cluster deleted and created again under the same name is not taken for having one.
type kubeconfigRecord struct {
	ClusterID int `json:"clusterID"`
}

func kubeconfigRecordName(name string) string { return "linode/kubeconfig-" + name + ".json" }

// kubeconfigFor reports whether the stored kubeconfig of name is that of cluster id.
func (d *Driver) kubeconfigFor(name string, id int) bool {
	if !d.cfg.Store.Exists(kubeconfigName(name)) || !d.cfg.Store.Exists(kubeconfigRecordName(name)) {
		return false
	}
	data, err := d.cfg.Store.ReadFile(kubeconfigRecordName(name))
	if err != nil {
		return false
	}
	var rec kubeconfigRecord
	return json.Unmarshal(data, &rec) == nil && rec.ClusterID == id
}

// checkKubeconfig makes sure the payload is a kubeconfig a client can use. Its errors
// never quote the content (it holds credentials).
func checkKubeconfig(raw []byte) error {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return errors.New("does not parse as a kubeconfig")
	}
	if len(cfg.Clusters) == 0 || kubeconfigServer(raw) == "" {
		return errors.New("names no cluster server")
	}
	if _, err := clientcmd.RESTConfigFromKubeConfig(raw); err != nil {
		return errors.New("has no usable context")
	}
	return nil
}

func (d *Driver) writeStore(name string, data []byte) error {
	if d.cfg.Store.Exists(name) {
		if old, err := d.cfg.Store.ReadFile(name); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	return d.cfg.Store.WriteFile(name, data)
}
