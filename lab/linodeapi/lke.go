package linodeapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type cluster struct {
	id      int
	label   string
	region  string
	k8s     string
	tags    []string
	ha      bool
	audit   bool
	created time.Time
	updated time.Time
	pools   []*pool
	acl     controlPlaneACL

	renewing         bool               // the kubeconfig is being regenerated
	cancel           context.CancelFunc // stops this cluster's provisioning
	done             chan struct{}      // closed when provisioning has returned
	provisionStarted bool
	provisioned      bool
	provisionedAt    time.Time
	kubeconfig       []byte
	endpoints        []string
	nodeIPs          []string
	ipNext           int
}

type pool struct {
	id         int
	typ        string
	count      int
	disks      []poolDisk
	tags       []string
	labels     map[string]string
	taints     []poolTaint
	label      *string
	autoscaler poolAutoscaler
	firewallID *int
	nodes      []*node
}

type node struct {
	id         string
	created    time.Time
	instanceID int // 0 until provisioned
	assignedAt time.Time
	ip         string
	privateIP  string
}

type poolDisk struct {
	Size int    `json:"size"`
	Type string `json:"type"`
}

type poolTaint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

type poolAutoscaler struct {
	Enabled bool `json:"enabled"`
	Min     int  `json:"min"`
	Max     int  `json:"max"`
}

// Wire shapes of answers.

type clusterJSON struct {
	ID           int              `json:"id"`
	Status       string           `json:"status"`
	Created      string           `json:"created"`
	Updated      string           `json:"updated"`
	Label        string           `json:"label"`
	Region       string           `json:"region"`
	K8sVersion   string           `json:"k8s_version"`
	Tier         string           `json:"tier"` // beta-only fields: see betaOnlyFields
	ControlPlane controlPlaneJSON `json:"control_plane"`
	APLEnabled   bool             `json:"apl_enabled"`
	StackType    string           `json:"stack_type"`
	Tags         []string         `json:"tags"`
	Locks        []string         `json:"locks"`
}

type controlPlaneJSON struct {
	HighAvailability bool `json:"high_availability"`
	AuditLogsEnabled bool `json:"audit_logs_enabled"`
}

type poolJSON struct {
	ID             int               `json:"id"`
	Type           string            `json:"type"`
	Label          string            `json:"label"`
	Count          int               `json:"count"`
	Nodes          []nodeJSON        `json:"nodes"`
	Disks          []poolDisk        `json:"disks"`
	Autoscaler     poolAutoscaler    `json:"autoscaler"`
	Labels         map[string]string `json:"labels"`
	Taints         []poolTaint       `json:"taints"`
	Tags           []string          `json:"tags"`
	FirewallID     *int              `json:"firewall_id,omitempty"`
	DiskEncryption string            `json:"disk_encryption"`
	Locks          []string          `json:"locks"`
}

type nodeJSON struct {
	ID         string `json:"id"`
	InstanceID *int   `json:"instance_id"`
	Status     string `json:"status"`
}

// Request bodies, with every field linodego v1.69.1 may send, so that strict decoding
// only refuses what the real client would never produce.

type controlPlaneOptions struct {
	HighAvailability *bool       `json:"high_availability"`
	ACL              *aclOptions `json:"acl"`
	AuditLogsEnabled *bool       `json:"audit_logs_enabled"`
}

type poolCreateOptions struct {
	Count          *int              `json:"count"`
	Type           string            `json:"type"`
	Disks          []poolDisk        `json:"disks"`
	Tags           []string          `json:"tags"`
	Labels         map[string]string `json:"labels"`
	Taints         []poolTaint       `json:"taints"`
	Label          *string           `json:"label"`
	Autoscaler     *poolAutoscaler   `json:"autoscaler"`
	FirewallID     *int              `json:"firewall_id"`
	K8sVersion     *string           `json:"k8s_version"`
	UpdateStrategy *string           `json:"update_strategy"`
	DiskEncryption *string           `json:"disk_encryption"`
}

type clusterCreateOptions struct {
	NodePools    []poolCreateOptions  `json:"node_pools"`
	Label        string               `json:"label"`
	Region       string               `json:"region"`
	K8sVersion   string               `json:"k8s_version"`
	Tags         []string             `json:"tags"`
	ControlPlane *controlPlaneOptions `json:"control_plane"`
	Tier         string               `json:"tier"`
	APLEnabled   bool                 `json:"apl_enabled"`
	SubnetID     *int                 `json:"subnet_id"`
	VpcID        *int                 `json:"vpc_id"`
	StackType    *string              `json:"stack_type"`
}

type clusterUpdateOptions struct {
	K8sVersion   string               `json:"k8s_version"`
	Label        string               `json:"label"`
	Tags         *[]string            `json:"tags"`
	ControlPlane *controlPlaneOptions `json:"control_plane"`
}

type poolUpdateOptions struct {
	Count          *int               `json:"count"`
	Tags           *[]string          `json:"tags"`
	Labels         *map[string]string `json:"labels"`
	Taints         *[]poolTaint       `json:"taints"`
	Label          *string            `json:"label"`
	Autoscaler     *poolAutoscaler    `json:"autoscaler"`
	FirewallID     *int               `json:"firewall_id"`
	K8sVersion     *string            `json:"k8s_version"`
	UpdateStrategy *string            `json:"update_strategy"`
}

var clusterFields = map[string]bool{"id": true, "label": true, "region": true, "tags": true, "k8s_version": true, "status": true, "created": true, "updated": true, "tier": true}
var poolFields = map[string]bool{"id": true, "type": true, "count": true, "tags": true, "label": true}
var versionFields = map[string]bool{"id": true}

const maxNodesPerPool = 100

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// routeLKE serves lke/... ; path[0] == "lke".
func (s *Server) routeLKE(w http.ResponseWriter, r *http.Request, path []string) {
	if len(path) < 2 {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	switch path[1] {
	case "versions":
		s.versions(w, r, path[2:])
		return
	case "tiers":
		s.tierVersions(w, r, path[2:])
		return
	case "types":
		if len(path) != 2 {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeList(w, r, lkeTypesJSON(), map[string]bool{"id": true, "label": true})
		return
	case "clusters":
	default:
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	if len(path) == 2 {
		switch r.Method {
		case http.MethodGet:
			s.listClusters(w, r)
		case http.MethodPost:
			s.createCluster(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
		return
	}
	id, err := strconv.Atoi(path[2])
	if err != nil {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	c := s.clusters[id]
	if c == nil {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	rest := path[3:]
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, c.json(isBeta(r)))
		case http.MethodPut:
			s.updateClusterLocked(w, r, c)
		case http.MethodDelete:
			s.deleteClusterLocked(c)
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case rest[0] == "pools":
		s.poolsLocked(w, r, c, rest[1:])
	case rest[0] == "nodes" && len(rest) >= 2:
		s.nodeLocked(w, r, c, rest[1], rest[2:])
	case rest[0] == "dashboard" && len(rest) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"url": dashboardURL(c)})
	case rest[0] == "control_plane_acl" && len(rest) == 1:
		s.controlPlaneACLLocked(w, r, c)
	case rest[0] == "kubeconfig" && len(rest) == 1:
		s.kubeconfigLocked(w, r, c)
	case rest[0] == "servicetoken" && len(rest) == 1:
		s.serviceTokenLocked(w, r, c)
	case rest[0] == "regenerate" && len(rest) == 1:
		s.regenerateLocked(w, r, c)
	case rest[0] == "api-endpoints" && len(rest) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		if !c.provisioned {
			s.notYet(w, c, "Cluster API Endpoints are not yet available. Please try again later.")
			return
		}
		var items []any
		for _, e := range c.endpoints {
			items = append(items, map[string]string{"endpoint": e})
		}
		writeList(w, r, items, map[string]bool{"endpoint": true})
	case rest[0] == "recycle" && len(rest) == 1:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		for _, p := range c.pools {
			s.recyclePoolLocked(c, p)
		}
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}

// notYet answers 503 while a cluster is provisioning, with a Retry-After that
// estimates the rest of the provisioning delay.
func (s *Server) notYet(w http.ResponseWriter, c *cluster, reason string) {
	left := c.created.Add(s.opts.ProvisionDelay).Sub(s.now())
	w.Header().Set("Retry-After", strconv.Itoa(max(int((left+time.Second-1)/time.Second), 1)))
	writeError(w, http.StatusServiceUnavailable, apiErr(reason, ""))
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	switch len(rest) {
	case 0:
		var items []any
		for _, v := range k8sVersions {
			items = append(items, map[string]string{"id": v})
		}
		writeList(w, r, items, versionFields)
	case 1:
		if !knownVersion(rest[0]) {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": rest[0]})
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}

// tierVersions serves lke/tiers/{tier}/versions[/{id}], a v4beta endpoint. The lab
// offers the standard tier only; enterprise is a known tier with no versions.
func (s *Server) tierVersions(w http.ResponseWriter, r *http.Request, rest []string) {
	if !isBeta(r) || len(rest) < 2 || len(rest) > 3 || rest[1] != "versions" ||
		(rest[0] != "standard" && rest[0] != "enterprise") {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	var versions []string
	if rest[0] == "standard" {
		versions = k8sVersions
	}
	if len(rest) == 3 {
		if !slices.Contains(versions, rest[2]) {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": rest[2], "tier": rest[0]})
		return
	}
	var items []any
	for _, v := range versions {
		items = append(items, map[string]string{"id": v, "tier": rest[0]})
	}
	writeList(w, r, items, map[string]bool{"id": true, "tier": true})
}

// json is the cluster as answered under /v4, or under /v4beta when beta is set; the
// fields only v4beta carries are listed in betaOnlyFields.
func (c *cluster) json(beta bool) any {
	return forVersion(objLKECluster, beta, clusterJSON{
		ID: c.id, Status: "ready", Created: stamp(c.created), Updated: stamp(c.updated),
		Label: c.label, Region: c.region, K8sVersion: c.k8s, Tier: "standard", StackType: "ipv4",
		ControlPlane: controlPlaneJSON{HighAvailability: c.ha, AuditLogsEnabled: c.audit},
		Tags:         nonNil(c.tags), Locks: []string{},
	})
}

// poolAnswer is a pool as answered for the request's API version.
func (s *Server) poolAnswer(r *http.Request, p *pool) any {
	return forVersion(objLKENodePool, isBeta(r), s.poolJSON(p))
}

func (s *Server) poolJSON(p *pool) poolJSON {
	out := poolJSON{
		ID: p.id, Type: p.typ, Count: p.count, Disks: nonNil(p.disks), Autoscaler: p.autoscaler,
		Labels: p.labels, Taints: nonNil(p.taints), Tags: nonNil(p.tags), FirewallID: p.firewallID,
		DiskEncryption: "enabled", Locks: []string{}, Nodes: []nodeJSON{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if p.label != nil {
		out.Label = *p.label
	}
	for _, n := range p.nodes {
		out.Nodes = append(out.Nodes, s.nodeJSON(n))
	}
	return out
}

func (s *Server) nodeJSON(n *node) nodeJSON {
	j := nodeJSON{ID: n.id, Status: "not_ready"}
	if n.instanceID != 0 {
		id := n.instanceID
		j.InstanceID = &id
		if s.nodeReady(n) {
			j.Status = "ready"
		}
	}
	return j
}

func (s *Server) nodeReady(n *node) bool {
	return n.instanceID != 0 && !s.now().Before(n.assignedAt.Add(s.opts.NodeReadyDelay))
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	items := make([]any, 0, len(s.clusters))
	for _, c := range s.sortedClustersLocked() {
		items = append(items, c.json(isBeta(r)))
	}
	s.mu.Unlock()
	writeList(w, r, items, clusterFields)
}

func (s *Server) sortedClustersLocked() []*cluster {
	cs := make([]*cluster, 0, len(s.clusters))
	for _, c := range s.clusters {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *cluster) int { return a.id - b.id })
	return cs
}

func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) {
	var o clusterCreateOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.validateCreateLocked(o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	now := s.now()
	s.nextCluster++
	c := &cluster{
		id: s.nextCluster, label: o.Label, region: o.Region, k8s: o.K8sVersion,
		tags: normTags(o.Tags), created: now, updated: now,
	}
	if cp := o.ControlPlane; cp != nil {
		c.ha = cp.HighAvailability != nil && *cp.HighAvailability
		c.audit = cp.AuditLogsEnabled != nil && *cp.AuditLogsEnabled
		if cp.ACL != nil {
			s.applyACLLocked(c, *cp.ACL)
		}
	}
	for _, po := range o.NodePools {
		c.pools = append(c.pools, s.newPoolLocked(po))
	}
	s.clusters[c.id] = c
	s.startProvisionLocked(c)
	writeJSON(w, http.StatusOK, c.json(isBeta(r)))
}

func (s *Server) validateCreateLocked(o clusterCreateOptions) *apiError {
	var errs []errorReason
	add := func(e *apiError) {
		if e != nil {
			errs = append(errs, e.Errors...)
		}
	}
	add(s.validateLabelLocked(o.Label, 0))
	if rg, ok := findRegion(o.Region); !ok || !rg.Core {
		add(apiErr("region is not valid", "region"))
	}
	if !knownVersion(o.K8sVersion) {
		add(apiErr(fmt.Sprintf("No Kubernetes version %q is available", o.K8sVersion), "k8s_version"))
	}
	if len(o.NodePools) == 0 {
		add(apiErr("At least one node pool is required", "node_pools"))
	}
	for i, p := range o.NodePools {
		add(validatePool(p, fmt.Sprintf("node_pools[%d].", i)))
	}
	if cp := o.ControlPlane; cp != nil && cp.ACL != nil {
		add(validateACL(*cp.ACL, "control_plane.acl."))
	}
	if o.Tier != "" && o.Tier != "standard" {
		add(apiErr("Only the standard tier is available", "tier"))
	}
	if o.APLEnabled {
		add(apiErr("Akamai App Platform is not available in the lab", "apl_enabled"))
	}
	if o.VpcID != nil {
		add(apiErr("VPCs are not available in the lab", "vpc_id"))
	}
	if o.SubnetID != nil {
		add(apiErr("VPCs are not available in the lab", "subnet_id"))
	}
	if o.StackType != nil && *o.StackType != "ipv4" {
		add(apiErr("Only the ipv4 stack is available in the lab", "stack_type"))
	}
	if len(errs) == 0 {
		return nil
	}
	return &apiError{Errors: errs}
}

func (s *Server) validateLabelLocked(label string, self int) *apiError {
	if len(label) < 1 || len(label) > 32 {
		return apiErr("Length must be 1-32 characters", "label")
	}
	if !labelRE.MatchString(label) {
		return apiErr("Must begin with a letter or digit and contain only letters, digits, '.', '-' and '_'", "label")
	}
	for _, c := range s.clusters {
		if c.label == label && c.id != self {
			return apiErr("Label must be unique among your LKE Clusters", "label")
		}
	}
	return nil
}

func validatePool(p poolCreateOptions, prefix string) *apiError {
	var errs []errorReason
	if _, ok := findType(p.Type); !ok {
		errs = append(errs, errorReason{"A valid plan type by that ID was not found", prefix + "type"})
	}
	if p.Count == nil || *p.Count < 1 || *p.Count > maxNodesPerPool {
		errs = append(errs, errorReason{fmt.Sprintf("Must be between 1 and %d", maxNodesPerPool), prefix + "count"})
	}
	if a := p.Autoscaler; a != nil {
		if e := validateAutoscaler(*a, prefix); e != nil {
			errs = append(errs, e.Errors...)
		}
	}
	for _, t := range p.Taints {
		if t.Key == "" || !slices.Contains([]string{"NoSchedule", "PreferNoSchedule", "NoExecute"}, t.Effect) {
			errs = append(errs, errorReason{"Taints need a key and an effect of NoSchedule, PreferNoSchedule or NoExecute", prefix + "taints"})
			break
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &apiError{Errors: errs}
}

func validateAutoscaler(a poolAutoscaler, prefix string) *apiError {
	if a.Min < 1 || a.Max < a.Min || a.Max > maxNodesPerPool {
		return apiErr(fmt.Sprintf("min must be at least 1 and max between min and %d", maxNodesPerPool), prefix+"autoscaler")
	}
	return nil
}

func normTags(t []string) []string {
	out := slices.Clone(t)
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Server) newPoolLocked(o poolCreateOptions) *pool {
	s.nextPool++
	p := &pool{
		id: s.nextPool, typ: o.Type, count: *o.Count, disks: o.Disks, tags: normTags(o.Tags),
		labels: o.Labels, taints: o.Taints, label: o.Label, firewallID: o.FirewallID,
		autoscaler: poolAutoscaler{Min: *o.Count, Max: *o.Count},
	}
	if o.Autoscaler != nil {
		p.autoscaler = *o.Autoscaler
	}
	for range p.count {
		p.nodes = append(p.nodes, s.newNodeLocked(p.id))
	}
	return p
}

func (s *Server) newNodeLocked(poolID int) *node {
	for {
		id := fmt.Sprintf("%d-%08x", poolID, s.rng.Uint32())
		if !s.nodeIDs[id] {
			s.nodeIDs[id] = true
			return &node{id: id, created: s.now()}
		}
	}
}

func (s *Server) updateClusterLocked(w http.ResponseWriter, r *http.Request, c *cluster) {
	var o clusterUpdateOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Label != "" {
		if e := s.validateLabelLocked(o.Label, c.id); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
	}
	if o.K8sVersion != "" && o.K8sVersion != c.k8s {
		if !knownVersion(o.K8sVersion) {
			writeError(w, http.StatusBadRequest, apiErr(fmt.Sprintf("No Kubernetes version %q is available", o.K8sVersion), "k8s_version"))
			return
		}
		if versionLess(o.K8sVersion, c.k8s) {
			writeError(w, http.StatusBadRequest, apiErr("Kubernetes versions can only be upgraded, not downgraded", "k8s_version"))
			return
		}
	}
	if cp := o.ControlPlane; cp != nil && cp.ACL != nil {
		if e := validateACL(*cp.ACL, "control_plane.acl."); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
	}
	if cp := o.ControlPlane; cp != nil && cp.HighAvailability != nil && !*cp.HighAvailability && c.ha {
		writeError(w, http.StatusBadRequest, apiErr("High availability cannot be disabled once enabled", "control_plane.high_availability"))
		return
	}
	if o.Label != "" {
		c.label = o.Label
	}
	if o.K8sVersion != "" {
		c.k8s = o.K8sVersion
	}
	if o.Tags != nil {
		c.tags = normTags(*o.Tags)
	}
	if cp := o.ControlPlane; cp != nil {
		if cp.HighAvailability != nil && *cp.HighAvailability {
			c.ha = true
		}
		if cp.AuditLogsEnabled != nil {
			c.audit = *cp.AuditLogsEnabled
		}
		if cp.ACL != nil {
			s.applyACLLocked(c, *cp.ACL)
		}
	}
	c.updated = s.now()
	writeJSON(w, http.StatusOK, c.json(isBeta(r)))
}

// versionLess compares "major.minor" versions numerically.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

func (s *Server) deleteClusterLocked(c *cluster) {
	delete(s.clusters, c.id)
	for _, p := range c.pools {
		for _, n := range p.nodes {
			s.dropNodeLocked(c, n)
		}
	}
	s.stopProvisionLocked(c)
}

func (s *Server) poolsLocked(w http.ResponseWriter, r *http.Request, c *cluster, rest []string) {
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			var items []any
			for _, p := range c.pools {
				items = append(items, s.poolAnswer(r, p))
			}
			writeList(w, r, items, poolFields)
		case http.MethodPost:
			var o poolCreateOptions
			if e := decodeStrict(r, &o); e != nil {
				writeError(w, http.StatusBadRequest, e)
				return
			}
			if e := validatePool(o, ""); e != nil {
				writeError(w, http.StatusBadRequest, e)
				return
			}
			p := s.newPoolLocked(o)
			c.pools = append(c.pools, p)
			writeJSON(w, http.StatusOK, s.poolAnswer(r, p))
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
		return
	}
	id, err := strconv.Atoi(rest[0])
	idx := slices.IndexFunc(c.pools, func(p *pool) bool { return p.id == id })
	if err != nil || idx < 0 {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	p := c.pools[idx]
	if len(rest) == 2 && rest[1] == "recycle" {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.recyclePoolLocked(c, p)
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if len(rest) != 1 {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.poolAnswer(r, p))
	case http.MethodPut:
		var o poolUpdateOptions
		if e := decodeStrict(r, &o); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
		if o.Count != nil && (*o.Count < 1 || *o.Count > maxNodesPerPool) {
			writeError(w, http.StatusBadRequest, apiErr(fmt.Sprintf("Must be between 1 and %d", maxNodesPerPool), "count"))
			return
		}
		if o.Autoscaler != nil {
			if e := validateAutoscaler(*o.Autoscaler, ""); e != nil {
				writeError(w, http.StatusBadRequest, e)
				return
			}
		}
		if o.Count != nil {
			s.resizePoolLocked(c, p, *o.Count)
		}
		if o.Tags != nil {
			p.tags = normTags(*o.Tags)
		}
		if o.Labels != nil {
			p.labels = *o.Labels
		}
		if o.Taints != nil {
			p.taints = *o.Taints
		}
		if o.Label != nil {
			p.label = o.Label
		}
		if o.Autoscaler != nil {
			p.autoscaler = *o.Autoscaler
		}
		if o.FirewallID != nil {
			p.firewallID = o.FirewallID
		}
		writeJSON(w, http.StatusOK, s.poolAnswer(r, p))
	case http.MethodDelete:
		for _, n := range p.nodes {
			s.dropNodeLocked(c, n)
		}
		c.pools = slices.Delete(c.pools, idx, idx+1)
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
	}
}

func (s *Server) resizePoolLocked(c *cluster, p *pool, n int) {
	for len(p.nodes) < n {
		p.nodes = append(p.nodes, s.newNodeLocked(p.id))
	}
	for _, gone := range p.nodes[n:] {
		s.dropNodeLocked(c, gone)
	}
	p.nodes = p.nodes[:n]
	p.count = n
}

// recyclePoolLocked replaces every node of a pool with a fresh one, as LKE does.
func (s *Server) recyclePoolLocked(c *cluster, p *pool) {
	for i, old := range p.nodes {
		s.dropNodeLocked(c, old)
		p.nodes[i] = s.newNodeLocked(p.id)
	}
}

func (s *Server) nodeLocked(w http.ResponseWriter, r *http.Request, c *cluster, nodeID string, rest []string) {
	var p *pool
	idx := -1
	for _, cand := range c.pools {
		if i := slices.IndexFunc(cand.nodes, func(n *node) bool { return n.id == nodeID }); i >= 0 {
			p, idx = cand, i
		}
	}
	if p == nil || len(rest) > 1 || (len(rest) == 1 && rest[0] != "recycle") {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	if len(rest) == 1 {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.dropNodeLocked(c, p.nodes[idx])
		p.nodes[idx] = s.newNodeLocked(p.id)
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.nodeJSON(p.nodes[idx]))
	case http.MethodDelete:
		if len(p.nodes) == 1 {
			writeError(w, http.StatusBadRequest, apiErr("Cannot delete the last node of a pool; delete the pool instead", ""))
			return
		}
		s.dropNodeLocked(c, p.nodes[idx])
		p.nodes = slices.Delete(p.nodes, idx, idx+1)
		p.count = len(p.nodes)
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodDelete)
	}
}

// dropNodeLocked forgets a node that is going (deleted, recycled, or its pool or cluster
// deleted); its Linode instance goes with it, which the event log records.
func (s *Server) dropNodeLocked(c *cluster, n *node) {
	delete(s.nodeIDs, n.id)
	s.instanceGoneLocked(c, n)
}
