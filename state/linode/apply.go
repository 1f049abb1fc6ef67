package linode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// ApplyCluster creates the fleet's cluster called name when the fleet owns none, else
// changes in place what the API allows: tags, a k8s upgrade (only with allowUpgrade),
// HA off→on, pool counts, autoscalers and pool tags. A pool whose type changed is
// replaced: the new pool is created and waited for before the old one is deleted.
//
// Pools are matched to the spec by type: the i-th spec pool of type T is the i-th
// existing pool of type T in ascending pool ID order (the order they were created in).
// Spec pools left over are created, existing pools left over are deleted last.
func (d *Driver) ApplyCluster(ctx context.Context, fleet *spec.Fleet, name string) error {
	sc, ok := specCluster(fleet, name)
	if !ok {
		return fmt.Errorf("linode: cluster %s is not in fleet %s", name, fleet.Metadata.Name)
	}
	if !sc.IsLKE() {
		return fmt.Errorf("linode: cluster %s is given by kubeconfig, not an LKE cluster", name)
	}
	// Re-observe by tag right before deciding: a crash after a create and before any
	// state was written must find that cluster, not make a second one.
	cur, err := d.findOwned(ctx, fleet.Metadata.Name, name)
	if err != nil {
		return err
	}
	if cur == nil {
		return d.create(ctx, fleet.Metadata.Name, name, sc)
	}
	return d.update(ctx, fleet.Metadata.Name, name, sc, cur)
}

func (d *Driver) create(ctx context.Context, fleet, name string, sc *spec.Cluster) error {
	if err := d.checkLabelFree(ctx, fleet, name); err != nil {
		return err
	}
	if len(sc.Pools) == 0 {
		return fmt.Errorf("linode: create cluster %s: no node pools in the spec", name)
	}
	ha := sc.HighAvailability
	opts := linodego.LKEClusterCreateOptions{
		Label:        name,
		Region:       sc.Region,
		K8sVersion:   sc.K8sVersion,
		Tags:         desiredTags(fleet, name, sc.Tags),
		ControlPlane: &linodego.LKEClusterControlPlaneOptions{HighAvailability: &ha},
	}
	for _, p := range sc.Pools {
		opts.NodePools = append(opts.NodePools, poolCreateOptions(p))
	}
	d.log.Info("creating LKE cluster", "cluster", name, "region", sc.Region, "k8sVersion", sc.K8sVersion, "pools", len(sc.Pools))
	c, err := d.api.CreateLKECluster(ctx, opts)
	d.invalidatePools(name)
	if err != nil {
		return classify(ctx, "create cluster "+name, err)
	}
	d.log.Info("created LKE cluster", "cluster", name, "linodeID", c.ID)
	return nil
}

func poolCreateOptions(p spec.Pool) linodego.LKENodePoolCreateOptions {
	o := linodego.LKENodePoolCreateOptions{Type: p.Type, Count: p.Count, Tags: sortedSet(p.Tags)}
	if o.Tags == nil {
		o.Tags = []string{}
	}
	if p.Autoscaler != nil {
		o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: true, Min: p.Autoscaler.Min, Max: p.Autoscaler.Max}
		if o.Count == 0 {
			o.Count = p.Autoscaler.Min
		}
	}
	return o
}

func (d *Driver) update(ctx context.Context, fleet, name string, sc *spec.Cluster, cur *linodego.LKECluster) error {
	if sc.Region != "" && sc.Region != cur.Region {
		return fmt.Errorf("linode: update cluster %s: region is %s, the spec says %s; LKE cannot move a cluster, delete and recreate it", name, cur.Region, sc.Region)
	}
	changed := false
	defer func() {
		if changed {
			d.invalidatePools(name)
		}
	}()

	var up linodego.LKEClusterUpdateOptions
	var what []string
	if cur.Label != name {
		up.Label = name
		what = append(what, "label")
	}
	if want := desiredTags(fleet, name, sc.Tags); !sameSet(want, cur.Tags) {
		up.Tags = &want
		what = append(what, "tags")
	}
	if sc.K8sVersion != "" && sc.K8sVersion != cur.K8sVersion {
		if sc.AllowUpgrade {
			up.K8sVersion = sc.K8sVersion
			what = append(what, "k8s_version")
		} else {
			d.log.Warn("k8s version differs; set allowUpgrade to upgrade in place", "cluster", name, "have", cur.K8sVersion, "want", sc.K8sVersion)
		}
	}
	switch {
	case sc.HighAvailability && !cur.ControlPlane.HighAvailability:
		ha := true
		up.ControlPlane = &linodego.LKEClusterControlPlaneOptions{HighAvailability: &ha}
		what = append(what, "control_plane.high_availability")
	case !sc.HighAvailability && cur.ControlPlane.HighAvailability:
		d.log.Warn("high availability cannot be turned off on an LKE cluster; keeping it", "cluster", name)
	}
	if len(what) > 0 {
		d.log.Info("updating LKE cluster", "cluster", name, "linodeID", cur.ID, "fields", strings.Join(what, ","))
		changed = true
		if _, err := d.api.UpdateLKECluster(ctx, cur.ID, up); err != nil {
			return classify(ctx, "update cluster "+name, err)
		}
	}

	listed, err := d.api.ListLKENodePools(ctx, cur.ID, &linodego.ListOptions{PageSize: listPageSize})
	if err != nil {
		return classify(ctx, "list pools of cluster "+name, err)
	}
	plan := matchPools(sc.Pools, listed)

	for _, m := range plan.keep {
		opts, fields := poolUpdate(m.want, m.have)
		if len(fields) == 0 {
			continue
		}
		d.log.Info("updating node pool", "cluster", name, "pool", m.have.ID, "fields", strings.Join(fields, ","))
		changed = true
		if _, err := d.api.UpdateLKENodePool(ctx, cur.ID, m.have.ID, opts); err != nil {
			return classify(ctx, fmt.Sprintf("update pool %d of cluster %s", m.have.ID, name), err)
		}
	}
	var created []int
	for _, p := range plan.create {
		d.log.Info("creating node pool", "cluster", name, "type", p.Type, "count", poolCreateOptions(p).Count)
		changed = true
		np, err := d.api.CreateLKENodePool(ctx, cur.ID, poolCreateOptions(p))
		if err != nil {
			return classify(ctx, fmt.Sprintf("create %s pool in cluster %s", p.Type, name), err)
		}
		created = append(created, np.ID)
	}
	if len(plan.remove) == 0 {
		return nil
	}
	// Replacing: the pools that stay must carry the workloads before the old ones go.
	// That includes kept pools: after a crash or a timed-out wait, the new pool of a
	// replacement made by an earlier attempt is matched as kept, and may not be ready yet.
	staying := created
	for _, m := range plan.keep {
		staying = append(staying, m.have.ID)
	}
	if len(staying) == 0 {
		return fmt.Errorf("linode: update cluster %s: refusing to delete every node pool", name)
	}
	if err := d.waitPoolsReady(ctx, name, cur.ID, staying); err != nil {
		return err
	}
	for _, p := range plan.remove {
		d.log.Info("deleting node pool", "cluster", name, "pool", p.ID, "type", p.Type)
		changed = true
		if err := d.api.DeleteLKENodePool(ctx, cur.ID, p.ID); err != nil && !linodego.IsNotFound(err) {
			return classify(ctx, fmt.Sprintf("delete pool %d of cluster %s", p.ID, name), err)
		}
	}
	return nil
}

type poolMatch struct {
	want spec.Pool
	have linodego.LKENodePool
}

type poolPlan struct {
	keep   []poolMatch
	create []spec.Pool
	remove []linodego.LKENodePool
}

// matchPools pairs spec pools with existing ones by type, in order (see ApplyCluster).
func matchPools(want []spec.Pool, have []linodego.LKENodePool) poolPlan {
	byType := make(map[string][]linodego.LKENodePool)
	sorted := slices.Clone(have)
	slices.SortFunc(sorted, func(a, b linodego.LKENodePool) int { return a.ID - b.ID })
	for _, p := range sorted {
		byType[p.Type] = append(byType[p.Type], p)
	}
	var plan poolPlan
	for _, w := range want {
		if q := byType[w.Type]; len(q) > 0 {
			plan.keep = append(plan.keep, poolMatch{want: w, have: q[0]})
			byType[w.Type] = q[1:]
			continue
		}
		plan.create = append(plan.create, w)
	}
	for _, p := range sorted {
		for _, left := range byType[p.Type] {
			if left.ID == p.ID {
				plan.remove = append(plan.remove, p)
			}
		}
	}
	return plan
}

// poolUpdate is the update for one matched pool, with only the fields that differ. The
// count is the autoscaler's business when the spec enables one.
func poolUpdate(want spec.Pool, have linodego.LKENodePool) (linodego.LKENodePoolUpdateOptions, []string) {
	var o linodego.LKENodePoolUpdateOptions
	var fields []string
	switch {
	case want.Autoscaler != nil:
		if !have.Autoscaler.Enabled || have.Autoscaler.Min != want.Autoscaler.Min || have.Autoscaler.Max != want.Autoscaler.Max {
			o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: true, Min: want.Autoscaler.Min, Max: want.Autoscaler.Max}
			fields = append(fields, "autoscaler")
		}
	case have.Autoscaler.Enabled:
		o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: false, Min: have.Autoscaler.Min, Max: have.Autoscaler.Max}
		fields = append(fields, "autoscaler")
		if want.Count > 0 {
			o.Count = want.Count
			fields = append(fields, "count")
		}
	case want.Count > 0 && want.Count != have.Count:
		o.Count = want.Count
		fields = append(fields, "count")
	}
	if !sameSet(want.Tags, have.Tags) {
		tags := sortedSet(want.Tags)
		if tags == nil {
			tags = []string{}
		}
		o.Tags = &tags
		fields = append(fields, "tags")
	}
	return o, fields
}

// waitPoolsReady waits (bounded by WaitTimeout) until every node of the pools is ready.
func (d *Driver) waitPoolsReady(ctx context.Context, name string, clusterID int, poolIDs []int) error {
	what := fmt.Sprintf("new node pools %v of cluster %s to be ready", poolIDs, name)
	return d.waitFor(ctx, what, func(ctx context.Context) (bool, string, error) {
		for _, id := range poolIDs {
			p, err := d.api.GetLKENodePool(ctx, clusterID, id)
			if err != nil {
				return false, "", classify(ctx, fmt.Sprintf("get pool %d of cluster %s", id, name), err)
			}
			ready := 0
			for _, n := range p.Linodes {
				if n.Status == linodego.LKELinodeReady {
					ready++
				}
			}
			if len(p.Linodes) < p.Count || ready < len(p.Linodes) {
				return false, fmt.Sprintf("pool %d: %d of %d nodes ready", id, ready, p.Count), nil
			}
		}
		return true, "", nil
	})
}

// DeleteCluster deletes the fleet's cluster called name, if the fleet owns one, and
// returns once the API answers 404 for it (bounded by WaitTimeout). A cluster without
// the fleet's tag is never deleted, whatever its label.
func (d *Driver) DeleteCluster(ctx context.Context, fleet *spec.Fleet, name string) error {
	cur, err := d.findOwned(ctx, fleet.Metadata.Name, name)
	if err != nil {
		return err
	}
	if cur == nil {
		d.log.Info("LKE cluster already gone", "cluster", name)
		return nil
	}
	d.log.Info("deleting LKE cluster", "cluster", name, "linodeID", cur.ID)
	err = d.api.DeleteLKECluster(ctx, cur.ID)
	d.invalidatePools(name)
	if err != nil && !linodego.IsNotFound(err) {
		return classify(ctx, "delete cluster "+name, err)
	}
	id := cur.ID
	err = d.waitFor(ctx, "cluster "+name+" ("+strconv.Itoa(id)+") to be gone", func(ctx context.Context) (bool, string, error) {
		c, err := d.api.GetLKECluster(ctx, id)
		if linodego.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", classify(ctx, "get cluster "+name, err)
		}
		return false, "status " + string(c.Status), nil
	})
	if err != nil {
		return err
	}
	d.forget(name)
	return nil
}

// remover is the optional part of the store that deletes files (state.Store has it).
type remover interface {
	Remove(name string) error
}

// forget drops what the store keeps of a deleted cluster: its kubeconfig would only
// mislead a cluster created later under the same name (Observe checks the ID anyway).
func (d *Driver) forget(name string) {
	r, ok := d.cfg.Store.(remover)
	if !ok {
		return
	}
	for _, f := range []string{kubeconfigName(name), kubeconfigRecordName(name), poolCacheName(name)} {
		if d.cfg.Store.Exists(f) {
			if err := r.Remove(f); err != nil {
				d.log.Warn("could not remove a deleted cluster's file from the store", "cluster", name, "file", f, "err", err)
			}
		}
	}
}

// waitFor calls check right away and then every PollInterval until it reports done,
// returns a terminal error, or WaitTimeout passes. Transient errors are waited through;
// the timeout error names what was waited for and the last answer, and is transient.
func (d *Driver) waitFor(ctx context.Context, what string, check func(ctx context.Context) (done bool, answer string, err error)) error {
	return d.waitUntil(ctx, time.Now().Add(d.cfg.WaitTimeout), what, check)
}

// waitUntil is waitFor with a deadline shared by several waits of one step.
func (d *Driver) waitUntil(ctx context.Context, deadline time.Time, what string, check func(ctx context.Context) (done bool, answer string, err error)) error {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	start := time.Now()
	last := "none"
	for {
		done, answer, err := check(wctx)
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			last = answer
		case ctx.Err() != nil:
			return fmt.Errorf("linode: waiting for %s: %w", what, ctx.Err())
		case wctx.Err() != nil:
			// The deadline cut the last call short; the answer before it is the useful one.
		case !isRetryable(err):
			return err
		default:
			last = lastAnswer(err)
		}
		d.log.Debug("waiting", "for", what, "answer", last, "waited", time.Since(start).Round(time.Millisecond).String())
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("linode: waiting for %s: %w", what, ctx.Err())
		case <-wctx.Done():
			t.Stop()
			return state.Transient(fmt.Errorf("linode: timed out waiting for %s (wait timeout %s, last answer: %s)", what, d.cfg.WaitTimeout, last), 0)
		case <-t.C:
		}
	}
}

func isRetryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}
