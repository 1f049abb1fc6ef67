package linodeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NodeBalancers, as LKE's cloud controller manager makes them for a Service of type
// LoadBalancer: the lab creates them through CreateNodeBalancer (its stand-in for the
// CCM), clients list, read, update and delete them through the API. Their configs
// (ports and backends) are not modelled: a NodeBalancer's configs are an empty list.

type nodeBalancer struct {
	id       int
	label    string
	region   string
	ipv4     string
	ipv6     string
	hostname string
	tags     []string
	throttle int
	udp      int
	created  time.Time
	updated  time.Time
}

type nodeBalancerJSON struct {
	ID                    int                  `json:"id"`
	Label                 string               `json:"label"`
	Region                string               `json:"region"`
	Hostname              string               `json:"hostname"`
	IPv4                  string               `json:"ipv4"`
	IPv6                  string               `json:"ipv6"`
	ClientConnThrottle    int                  `json:"client_conn_throttle"`
	ClientUDPSessThrottle int                  `json:"client_udp_sess_throttle"`
	Transfer              nodeBalancerTransfer `json:"transfer"`
	Type                  string               `json:"type"`
	Tags                  []string             `json:"tags"`
	Locks                 *[]string            `json:"locks,omitempty"` // v4beta only (linodego's note)
	Created               string               `json:"created"`
	Updated               string               `json:"updated"`
}

type nodeBalancerTransfer struct {
	In    *float64 `json:"in"`
	Out   *float64 `json:"out"`
	Total *float64 `json:"total"`
}

// nodeBalancerOptions is every field linodego v1.69.1 sends to create or update one.
type nodeBalancerOptions struct {
	Label                 *string   `json:"label"`
	Region                *string   `json:"region"`
	ClientConnThrottle    *int      `json:"client_conn_throttle"`
	ClientUDPSessThrottle *int      `json:"client_udp_sess_throttle"`
	Configs               []any     `json:"configs"`
	Tags                  *[]string `json:"tags"`
	FirewallID            *int      `json:"firewall_id"`
	Type                  *string   `json:"type"`
	VPCs                  []any     `json:"vpcs"`
	IPv4                  *string   `json:"ipv4"`
}

var nodeBalancerFields = map[string]bool{"id": true, "label": true, "region": true, "tags": true, "ipv4": true, "hostname": true}

// nodeBalancerLabelRE: 3 to 32 letters, digits, "-" and "_", no two of "-_" in a row.
var nodeBalancerLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9]|[-_][A-Za-z0-9]){2,31}$`)

// NodeBalancerSpec is what the lab asks for when a LoadBalancer Service appears.
type NodeBalancerSpec struct {
	Region string
	// Label defaults to "nodebalancer<ID>", as on the real API.
	Label string
	Tags  []string
	// IPv4, when set, is the address to give it (the lab gives one it can serve on);
	// otherwise it gets the next address of its region's pool (nodeBalancerAddr).
	IPv4 string
}

// NodeBalancer is one NodeBalancer as the lab sees it.
type NodeBalancer struct {
	ID       int
	Label    string
	Region   string
	Hostname string
	IPv4     string
	IPv6     string
	Tags     []string
}

// CreateNodeBalancer makes a NodeBalancer as LKE's cloud controller manager would for
// a LoadBalancer Service, and returns it.
func (s *Server) CreateNodeBalancer(spec NodeBalancerSpec) (NodeBalancer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nb, e := s.newNodeBalancerLocked(spec)
	if e != nil {
		return NodeBalancer{}, fmt.Errorf("create nodebalancer: %s: %s", e.Errors[0].Field, e.Errors[0].Reason)
	}
	return nb.info(), nil
}

// DeleteNodeBalancer removes a NodeBalancer, as the CCM does when its Service goes;
// it reports whether there was one.
func (s *Server) DeleteNodeBalancer(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.nodeBalancers[id]
	delete(s.nodeBalancers, id)
	return ok
}

// NodeBalancers returns every NodeBalancer, in id order.
func (s *Server) NodeBalancers() []NodeBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []NodeBalancer
	for _, nb := range s.sortedNodeBalancersLocked() {
		out = append(out, nb.info())
	}
	return out
}

func (nb *nodeBalancer) info() NodeBalancer {
	return NodeBalancer{ID: nb.id, Label: nb.label, Region: nb.region, Hostname: nb.hostname,
		IPv4: nb.ipv4, IPv6: nb.ipv6, Tags: slices.Clone(nb.tags)}
}

func (s *Server) newNodeBalancerLocked(spec NodeBalancerSpec) (*nodeBalancer, *apiError) {
	ri := slices.IndexFunc(regions, func(r region) bool { return r.ID == spec.Region })
	if ri < 0 {
		return nil, apiErr("region is not valid", "region")
	}
	if spec.Label != "" {
		if e := s.validateNodeBalancerLabelLocked(spec.Label, 0); e != nil {
			return nil, e
		}
	}
	ipv4 := spec.IPv4
	if ipv4 != "" {
		if a, err := netip.ParseAddr(ipv4); err != nil || !a.Is4() {
			return nil, apiErr("Must be a valid IPv4 address", "ipv4")
		}
		if slices.ContainsFunc(s.sortedNodeBalancersLocked(), func(x *nodeBalancer) bool { return x.ipv4 == ipv4 }) {
			return nil, apiErr("Address "+ipv4+" is already assigned", "ipv4")
		}
	}
	n := s.nbAddrs[spec.Region] + 1
	if ipv4 == "" {
		var ok bool
		if ipv4, ok = nodeBalancerAddr(ri, n); !ok {
			return nil, apiErr("No addresses left in region "+spec.Region, "region")
		}
	}
	s.nbAddrs[spec.Region] = n
	s.nextNB++
	now := s.now()
	nb := &nodeBalancer{
		id: s.nextNB, label: spec.Label, region: spec.Region, ipv4: ipv4,
		ipv6:     fmt.Sprintf("2001:db8:%x::%x", 0x100+ri, n),
		hostname: fmt.Sprintf("nb-%s.%s.nodebalancer.linode.com", strings.ReplaceAll(ipv4, ".", "-"), citySlug(regions[ri])),
		tags:     normTags(spec.Tags), created: now, updated: now,
	}
	if nb.label == "" {
		nb.label = "nodebalancer" + strconv.Itoa(nb.id)
	}
	s.nodeBalancers[nb.id] = nb
	return nb, nil
}

// nodeBalancerAddr is the n-th (1-based) address of a region's pool. The pools are
// cut from 198.18.0.0/15 (RFC 2544, never routed): region i has 198.18.i.1-254, then
// 198.19.i.1-254.
func nodeBalancerAddr(regionIndex, n int) (string, bool) {
	if n < 1 || n > 508 || regionIndex > 255 {
		return "", false
	}
	if n <= 254 {
		return fmt.Sprintf("198.18.%d.%d", regionIndex, n), true
	}
	return fmt.Sprintf("198.19.%d.%d", regionIndex, n-254), true
}

// citySlug is the city part of a real NodeBalancer hostname ("London, UK" -> london,
// "Tokyo 2, JP" -> tokyo2).
func citySlug(r region) string {
	city, _, _ := strings.Cut(r.Label, ",")
	return strings.ToLower(strings.ReplaceAll(city, " ", ""))
}

func (s *Server) validateNodeBalancerLabelLocked(label string, self int) *apiError {
	if len(label) > 32 || !nodeBalancerLabelRE.MatchString(label) {
		return apiErr("Label must be 3-32 characters: letters, digits, - and _, no two of - and _ in a row", "label")
	}
	for _, nb := range s.nodeBalancers {
		if nb.label == label && nb.id != self {
			return apiErr("Label must be unique among your NodeBalancers", "label")
		}
	}
	return nil
}

func (s *Server) sortedNodeBalancersLocked() []*nodeBalancer {
	out := make([]*nodeBalancer, 0, len(s.nodeBalancers))
	for _, nb := range s.nodeBalancers {
		out = append(out, nb)
	}
	slices.SortFunc(out, func(a, b *nodeBalancer) int { return a.id - b.id })
	return out
}

func (nb *nodeBalancer) json(beta bool) nodeBalancerJSON {
	j := nodeBalancerJSON{
		ID: nb.id, Label: nb.label, Region: nb.region, Hostname: nb.hostname, IPv4: nb.ipv4, IPv6: nb.ipv6,
		ClientConnThrottle: nb.throttle, ClientUDPSessThrottle: nb.udp, Type: "common", Tags: nonNil(nb.tags),
		Created: stamp(nb.created), Updated: stamp(nb.updated),
	}
	if beta {
		j.Locks = &[]string{}
	}
	return j
}

// routeNodeBalancers serves nodebalancers/... ; path[0] == "nodebalancers".
func (s *Server) routeNodeBalancers(w http.ResponseWriter, r *http.Request, path []string) {
	if len(path) >= 2 && path[1] == "types" {
		if len(path) != 2 {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeList(w, r, nodeBalancerTypesJSON(), map[string]bool{"id": true, "label": true})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(path) == 1 {
		switch r.Method {
		case http.MethodGet:
			var items []any
			for _, nb := range s.sortedNodeBalancersLocked() {
				items = append(items, nb.json(isBeta(r)))
			}
			writeList(w, r, items, nodeBalancerFields)
		case http.MethodPost:
			s.createNodeBalancerLocked(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
		return
	}
	id, err := strconv.Atoi(path[1])
	nb := s.nodeBalancers[id]
	if err != nil || nb == nil {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	rest := path[2:]
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, nb.json(isBeta(r)))
		case http.MethodPut:
			s.updateNodeBalancerLocked(w, r, nb)
		case http.MethodDelete:
			delete(s.nodeBalancers, nb.id)
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case rest[0] == "configs" && len(rest) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeList(w, r, nil, map[string]bool{"id": true, "port": true, "protocol": true})
	default:
		// A config of one, its nodes, stats, firewalls: none is modelled.
		writeError(w, http.StatusNotFound, notFound())
	}
}

func (s *Server) createNodeBalancerLocked(w http.ResponseWriter, r *http.Request) {
	var o nodeBalancerOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if e := unsupportedNodeBalancerOptions(o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Region == nil || *o.Region == "" {
		writeError(w, http.StatusBadRequest, apiErr("region is required", "region"))
		return
	}
	spec := NodeBalancerSpec{Region: *o.Region}
	if o.Label != nil {
		spec.Label = *o.Label
	}
	if o.Tags != nil {
		spec.Tags = *o.Tags
	}
	if e := validateThrottles(o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	nb, e := s.newNodeBalancerLocked(spec)
	if e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	applyThrottles(nb, o)
	writeJSON(w, http.StatusOK, nb.json(isBeta(r)))
}

func (s *Server) updateNodeBalancerLocked(w http.ResponseWriter, r *http.Request, nb *nodeBalancer) {
	var o nodeBalancerOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Region != nil || o.Configs != nil || o.FirewallID != nil || o.Type != nil || o.VPCs != nil || o.IPv4 != nil {
		writeError(w, http.StatusBadRequest, apiErr("Only label, tags and throttles can be updated", ""))
		return
	}
	if o.Label != nil {
		if e := s.validateNodeBalancerLabelLocked(*o.Label, nb.id); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
	}
	if e := validateThrottles(o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Label != nil {
		nb.label = *o.Label
	}
	if o.Tags != nil {
		nb.tags = normTags(*o.Tags)
	}
	applyThrottles(nb, o)
	nb.updated = s.now()
	writeJSON(w, http.StatusOK, nb.json(isBeta(r)))
}

// unsupportedNodeBalancerOptions refuses what the lab does not model rather than
// answering as if it had applied it.
func unsupportedNodeBalancerOptions(o nodeBalancerOptions) *apiError {
	switch {
	case len(o.Configs) > 0:
		return apiErr("The lab does not model NodeBalancer configs", "configs")
	case len(o.VPCs) > 0:
		return apiErr("The lab does not model VPCs", "vpcs")
	case o.FirewallID != nil:
		return apiErr("The lab does not model firewalls", "firewall_id")
	case o.IPv4 != nil:
		return apiErr("The lab does not model reserved IPv4 addresses", "ipv4")
	case o.Type != nil && *o.Type != "common":
		return apiErr("Only the common type is available", "type")
	}
	return nil
}

func validateThrottles(o nodeBalancerOptions) *apiError {
	if t := o.ClientConnThrottle; t != nil && (*t < 0 || *t > 20) {
		return apiErr("Must be between 0 and 20", "client_conn_throttle")
	}
	if t := o.ClientUDPSessThrottle; t != nil && (*t < 0 || *t > 20) {
		return apiErr("Must be between 0 and 20", "client_udp_sess_throttle")
	}
	return nil
}

func applyThrottles(nb *nodeBalancer, o nodeBalancerOptions) {
	if o.ClientConnThrottle != nil {
		nb.throttle = *o.ClientConnThrottle
	}
	if o.ClientUDPSessThrottle != nil {
		nb.udp = *o.ClientUDPSessThrottle
	}
}
