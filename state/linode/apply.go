package linode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// Apply applies a cluster or kubeconfig step exactly as planned:
//
//   - cluster, create: the LKE cluster with the payload's label, region, version, HA, tags
//     and pools, unless the fleet already owns a cluster of that name (an earlier attempt
//     made it; the next pass plans the rest);
//   - cluster, update: on cluster LinodeID, which must still be the fleet's, exactly the
//     fields the payload sets, then the pools it creates and, once the pools that stay have
//     ready nodes, the pools it deletes. Fields that already hold are not written;
//   - cluster, delete: cluster LinodeID, if still the fleet's, waiting until it is gone;
//   - kubeconfig: waits for the cluster's kubeconfig and a ready node, stores it (and its
//     copy), and outputs the cluster's API endpoint.
//
// Errors are classified (transient or terminal) as the executor expects.
func (d *Driver) Apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	name := s.Cluster
	switch s.Kind {
	case plan.KindCluster:
		c := s.Payload.Cluster
		if c == nil {
			return nil, fmt.Errorf("linode: step %s has no cluster payload", s.Address)
		}
		if name == "" {
			name = c.Label
		}
		switch s.Action {
		case plan.Create:
			return nil, d.create(ctx, name, c)
		case plan.Update:
			return nil, d.update(ctx, s.Address, name, c)
		case plan.Delete:
			return nil, d.delete(ctx, name, c.LinodeID)
		}
	case plan.KindKubeconfig:
		if s.Action != plan.Create && s.Action != plan.Update {
			break
		}
		if name == "" {
			return nil, fmt.Errorf("linode: step %s names no cluster", s.Address)
		}
		var copyTo string
		if s.Payload.Kubeconfig != nil {
			copyTo = s.Payload.Kubeconfig.CopyTo
		}
		endpoint, err := d.storeKubeconfig(ctx, name, copyTo)
		if err != nil {
			return nil, err
		}
		return plan.Outputs{plan.OutputAPIEndpoint: endpoint}, nil
	default:
		return nil, fmt.Errorf("linode: step %s: kind %q is not the clusters driver's", s.Address, s.Kind)
	}
	return nil, fmt.Errorf("linode: step %s: action %q is not supported for %s steps", s.Address, s.Action, s.Kind)
}

// create makes the fleet's cluster name as the payload describes it.
func (d *Driver) create(ctx context.Context, name string, c *plan.ClusterChange) error {
	fleet := d.cfg.Fleet
	// Re-observe by tag right before creating: a crash after a create and before any state
	// was written must find that cluster, not make a second one.
	cur, err := d.findOwned(ctx, fleet, name)
	if err != nil {
		return err
	}
	if cur != nil {
		d.log.Info("LKE cluster already exists (an earlier attempt created it); not creating another, the next pass plans the rest",
			"cluster", name, "linodeID", cur.ID)
		return nil
	}
	label := c.Label
	if label == "" {
		label = name
	}
	if err := d.checkLabelFree(ctx, fleet, label); err != nil {
		return err
	}
	if len(c.CreatePools) == 0 {
		return fmt.Errorf("linode: create cluster %s: the step creates no node pools", name)
	}
	var tags []string
	if c.Tags != nil {
		tags = *c.Tags
	}
	ha := c.HighAvailability
	opts := linodego.LKEClusterCreateOptions{
		Label:        label,
		Region:       c.Region,
		K8sVersion:   c.K8sVersion,
		Tags:         desiredTags(fleet, name, tags),
		ControlPlane: &linodego.LKEClusterControlPlaneOptions{HighAvailability: &ha},
	}
	for _, p := range c.CreatePools {
		opts.NodePools = append(opts.NodePools, poolCreateOptions(p))
	}
	d.log.Info("creating LKE cluster", "cluster", name, "region", c.Region, "k8sVersion", c.K8sVersion, "pools", len(c.CreatePools))
	lc, err := d.api.CreateLKECluster(ctx, opts)
	d.invalidatePools(name)
	if err != nil {
		return classify(ctx, "create cluster "+name, err)
	}
	d.log.Info("created LKE cluster", "cluster", name, "linodeID", lc.ID)
	return nil
}

// poolCreateOptions is a pool as the API creates it. A pool with an enabled autoscaler and
// no count starts at the autoscaler's minimum.
func poolCreateOptions(p plan.Pool) linodego.LKENodePoolCreateOptions {
	o := linodego.LKENodePoolCreateOptions{Type: p.Type, Count: p.Count, Tags: sortedSet(p.Tags)}
	if o.Tags == nil {
		o.Tags = []string{}
	}
	if a := p.Autoscaler; a != nil && a.Enabled {
		o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: true, Min: a.Min, Max: a.Max}
		if o.Count == 0 {
			o.Count = a.Min
		}
	}
	return o
}

// ownedByID finds LKE cluster id among the fleet's clusters (one list filtered by the
// fleet's tag: a cluster without it is never even requested). It is nil when the fleet owns
// no cluster id: deleted since, or never the fleet's. A cluster of the fleet that is tagged
// as another fleet cluster than name is refused.
func (d *Driver) ownedByID(ctx context.Context, name string, id int) (*linodego.LKECluster, error) {
	if id == 0 {
		return nil, fmt.Errorf("linode: cluster %s: the step names no LKE cluster (linodeID 0)", name)
	}
	owned, err := d.listOwned(ctx, d.cfg.Fleet)
	if err != nil {
		return nil, err
	}
	for i := range owned {
		c := &owned[i]
		if c.ID != id {
			continue
		}
		if other := clusterName(c); other != name {
			return nil, fmt.Errorf("linode: cluster %s: LKE cluster %d is fleet %s's cluster %s, not %s; refusing to change it",
				name, id, d.cfg.Fleet, other, name)
		}
		return c, nil
	}
	return nil, nil
}

func (d *Driver) update(ctx context.Context, address, name string, c *plan.ClusterChange) error {
	cur, err := d.ownedByID(ctx, name, c.LinodeID)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("linode: update cluster %s: LKE cluster %d is not a cluster of fleet %s (deleted, or without the tag %s); refusing to change it",
			name, c.LinodeID, d.cfg.Fleet, FleetTag(d.cfg.Fleet))
	}
	if c.Region != "" && c.Region != cur.Region {
		return fmt.Errorf("linode: update cluster %s: region is %s, the step says %s; LKE cannot move a cluster, delete and recreate it", name, cur.Region, c.Region)
	}
	listed, err := d.api.ListLKENodePools(ctx, cur.ID, &linodego.ListOptions{PageSize: listPageSize})
	if err != nil {
		return classify(ctx, "list pools of cluster "+name, err)
	}
	byID := make(map[int]linodego.LKENodePool, len(listed))
	for _, p := range listed {
		byID[p.ID] = p
	}

	// Everything that can be refused is checked before the first write.
	for _, u := range c.UpdatePools {
		have, ok := byID[u.ID]
		if !ok {
			return fmt.Errorf("linode: update cluster %s: node pool %d no longer exists; the next plan will see that", name, u.ID)
		}
		if u.Type != "" && have.Type != u.Type {
			return fmt.Errorf("linode: update cluster %s: node pool %d is of type %s, the step says %s", name, u.ID, have.Type, u.Type)
		}
	}
	deleting := make(map[int]bool, len(c.DeletePools))
	for _, p := range c.DeletePools {
		deleting[p.ID] = true
	}
	create, adopted := d.pendingPools(address, cur.ID, c, listed)
	if len(c.DeletePools) > 0 {
		stays := len(create)
		for _, p := range listed {
			if !deleting[p.ID] {
				stays++
			}
		}
		if stays == 0 {
			return fmt.Errorf("linode: update cluster %s: refusing to delete every node pool", name)
		}
	}

	changed := false
	defer func() {
		if changed {
			d.invalidatePools(name)
		}
	}()

	up, what := clusterUpdate(d.cfg.Fleet, name, c, cur)
	if len(what) > 0 {
		d.log.Info("updating LKE cluster", "cluster", name, "linodeID", cur.ID, "fields", strings.Join(what, ","))
		changed = true
		if _, err := d.api.UpdateLKECluster(ctx, cur.ID, up); err != nil {
			return classify(ctx, "update cluster "+name, err)
		}
	}
	if !c.HighAvailability && cur.ControlPlane.HighAvailability {
		d.log.Debug("high availability stays on (LKE cannot turn it off)", "cluster", name)
	}

	for _, u := range c.UpdatePools {
		opts, fields := poolUpdate(u, byID[u.ID])
		if len(fields) == 0 {
			continue
		}
		d.log.Info("updating node pool", "cluster", name, "pool", u.ID, "fields", strings.Join(fields, ","))
		changed = true
		if _, err := d.api.UpdateLKENodePool(ctx, cur.ID, u.ID, opts); err != nil {
			return classify(ctx, fmt.Sprintf("update pool %d of cluster %s", u.ID, name), err)
		}
	}
	for _, id := range adopted {
		d.log.Info("node pool created by an earlier attempt; not creating it again", "cluster", name, "pool", id, "type", byID[id].Type)
	}
	for _, p := range create {
		o := poolCreateOptions(p)
		d.log.Info("creating node pool", "cluster", name, "type", p.Type, "count", o.Count)
		changed = true
		np, err := d.api.CreateLKENodePool(ctx, cur.ID, o)
		if err != nil {
			return classify(ctx, fmt.Sprintf("create %s pool in cluster %s", p.Type, name), err)
		}
		d.rememberCreated(address, cur.ID, np.ID)
		listed = append(listed, *np)
	}
	if len(c.DeletePools) == 0 {
		return nil
	}

	// The pools that stay must carry the workloads before the old ones go: those created
	// now or by an earlier attempt, and every other pool the cluster keeps.
	var staying []int
	for _, p := range listed {
		if !deleting[p.ID] {
			staying = append(staying, p.ID)
		}
	}
	if err := d.waitPoolsReady(ctx, name, cur.ID, staying); err != nil {
		return err
	}
	for _, p := range c.DeletePools {
		if _, ok := byID[p.ID]; !ok {
			continue // already gone
		}
		d.log.Info("deleting node pool", "cluster", name, "pool", p.ID, "type", p.Type)
		changed = true
		if err := d.api.DeleteLKENodePool(ctx, cur.ID, p.ID); err != nil && !linodego.IsNotFound(err) {
			return classify(ctx, fmt.Sprintf("delete pool %d of cluster %s", p.ID, name), err)
		}
	}
	return nil
}

// clusterUpdate is the cluster-level update the payload asks for, with only the fields that
// do not hold yet.
func clusterUpdate(fleet, name string, c *plan.ClusterChange, cur *linodego.LKECluster) (linodego.LKEClusterUpdateOptions, []string) {
	var up linodego.LKEClusterUpdateOptions
	var what []string
	if c.Tags != nil {
		if want := desiredTags(fleet, name, *c.Tags); !sameSet(want, cur.Tags) {
			up.Tags = &want
			what = append(what, "tags")
		}
	}
	if c.K8sVersion != "" && c.K8sVersion != cur.K8sVersion {
		up.K8sVersion = c.K8sVersion
		what = append(what, "k8s_version")
	}
	if c.HighAvailability && !cur.ControlPlane.HighAvailability {
		ha := true
		up.ControlPlane = &linodego.LKEClusterControlPlaneOptions{HighAvailability: &ha}
		what = append(what, "control_plane.high_availability")
	}
	return up, what
}

// pendingPools splits the payload's CreatePools into those still to create and the
// existing pools that an earlier attempt of this step created (see
// plan.ClusterChange.ExistingPools), matched by type in ascending ID order.
func (d *Driver) pendingPools(address string, clusterID int, c *plan.ClusterChange, listed []linodego.LKENodePool) (create []plan.Pool, adopted []int) {
	if len(c.CreatePools) == 0 {
		return nil, nil
	}
	planned := make(map[int]bool)
	for _, p := range c.UpdatePools {
		planned[p.ID] = true
	}
	for _, p := range c.DeletePools {
		planned[p.ID] = true
	}
	for _, p := range c.ExistingPools {
		planned[p.ID] = true
	}
	ours := d.createdBy(address, clusterID)
	var candidates []linodego.LKENodePool
	for _, p := range listed {
		if planned[p.ID] {
			continue
		}
		if c.ExistingPools != nil || ours[p.ID] {
			candidates = append(candidates, p)
		}
	}
	slices.SortFunc(candidates, func(a, b linodego.LKENodePool) int { return a.ID - b.ID })
	for _, want := range c.CreatePools {
		i := slices.IndexFunc(candidates, func(p linodego.LKENodePool) bool { return p.Type == want.Type })
		if i < 0 {
			create = append(create, want)
			continue
		}
		adopted = append(adopted, candidates[i].ID)
		candidates = slices.Delete(candidates, i, i+1)
	}
	return create, adopted
}

// createdKey names the pools one step created in one cluster.
func createdKey(address string, clusterID int) string {
	return address + "@" + strconv.Itoa(clusterID)
}

func (d *Driver) rememberCreated(address string, clusterID, poolID int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := createdKey(address, clusterID)
	if d.created[k] == nil {
		d.created[k] = make(map[int]bool)
	}
	d.created[k][poolID] = true
}

func (d *Driver) createdBy(address string, clusterID int) map[int]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[int]bool)
	for id := range d.created[createdKey(address, clusterID)] {
		out[id] = true
	}
	return out
}

// poolUpdate translates a PoolUpdate into the API's update, with only the fields that do
// not hold yet: the count when set, the autoscaler when set (Enabled false turns it off),
// the tags when set.
func poolUpdate(u plan.PoolUpdate, have linodego.LKENodePool) (linodego.LKENodePoolUpdateOptions, []string) {
	var o linodego.LKENodePoolUpdateOptions
	var fields []string
	if u.Count > 0 && u.Count != have.Count {
		o.Count = u.Count
		fields = append(fields, "count")
	}
	if a := u.Autoscaler; a != nil {
		switch {
		case a.Enabled:
			if !have.Autoscaler.Enabled || have.Autoscaler.Min != a.Min || have.Autoscaler.Max != a.Max {
				o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: true, Min: a.Min, Max: a.Max}
				fields = append(fields, "autoscaler")
			}
		case have.Autoscaler.Enabled:
			// The API wants valid bounds even to turn the autoscaler off: keep the pool's
			// unless the step gives some.
			lo, hi := have.Autoscaler.Min, have.Autoscaler.Max
			if a.Min >= 1 && a.Max >= a.Min {
				lo, hi = a.Min, a.Max
			}
			o.Autoscaler = &linodego.LKENodePoolAutoscaler{Enabled: false, Min: lo, Max: hi}
			fields = append(fields, "autoscaler")
		}
	}
	if u.Tags != nil && !sameSet(*u.Tags, have.Tags) {
		tags := sortedSet(*u.Tags)
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

// delete deletes LKE cluster id, if it is still the fleet's cluster name, and returns once
// the API answers 404 for it (bounded by WaitTimeout). A cluster without the fleet's tag is
// never deleted, nor even requested: for the fleet it is already gone.
func (d *Driver) delete(ctx context.Context, name string, id int) error {
	if slices.Contains(d.cfg.Declared, name) {
		return fmt.Errorf("linode: refusing to delete LKE cluster %s (%d): fleet.yaml declares it; only a cluster that left fleet.yaml is ever deleted", name, id)
	}
	cur, err := d.ownedByID(ctx, name, id)
	if err != nil {
		return err
	}
	if cur == nil {
		d.log.Info("the fleet owns no such LKE cluster (already deleted, or not the fleet's); nothing to delete", "cluster", name, "linodeID", id)
		d.forget(name, id)
		return nil
	}
	d.log.Info("deleting LKE cluster", "cluster", name, "linodeID", cur.ID)
	err = d.api.DeleteLKECluster(ctx, cur.ID)
	d.invalidatePools(name)
	if err != nil && !linodego.IsNotFound(err) {
		return classify(ctx, "delete cluster "+name, err)
	}
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
	d.forget(name, id)
	return nil
}

// remover is the optional part of the store that deletes files (state.Store has it).
type remover interface {
	Remove(name string) error
}

// forget drops what the store keeps of deleted cluster id: its kubeconfig would only
// mislead a cluster created later under the same name (Observe checks the ID anyway). Files
// that belong to another cluster of that name (one created since) are kept.
func (d *Driver) forget(name string, id int) {
	r, ok := d.cfg.Store.(remover)
	if !ok {
		return
	}
	files := []string{poolCacheName(name)}
	if other := d.recordedID(kubeconfigRecordName(name)); other == 0 || other == id {
		files = append(files, kubeconfigName(name), kubeconfigRecordName(name))
	}
	if other := d.recordedID(poolCacheName(name)); other != 0 && other != id {
		files = files[1:]
	}
	for _, f := range files {
		if d.cfg.Store.Exists(f) {
			if err := r.Remove(f); err != nil {
				d.log.Warn("could not remove a deleted cluster's file from the store", "cluster", name, "file", f, "err", err)
			}
		}
	}
}

// recordedID is the clusterID a JSON file of the store names; 0 when it names none.
func (d *Driver) recordedID(name string) int {
	if !d.cfg.Store.Exists(name) {
		return 0
	}
	data, err := d.cfg.Store.ReadFile(name)
	if err != nil {
		return 0
	}
	var rec struct {
		ClusterID int `json:"clusterID"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return 0
	}
	return rec.ClusterID
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
	// The bound is what is left of the step's deadline, which several waits may share.
	w := progress.Start(ctx, d.log, what, time.Until(deadline))
	defer w.End()
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
		w.Set("last answer: " + last)
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
