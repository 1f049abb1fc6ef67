package linodeapi

import (
	"fmt"
	"net/http"
	"strconv"
)

// route dispatches a request below /v4.
func (s *Server) route(w http.ResponseWriter, r *http.Request, path []string) {
	switch path[0] {
	case "lke":
		s.routeLKE(w, r, path)
	case "domains":
		s.routeDomains(w, r, path)
	case "nodebalancers":
		s.routeNodeBalancers(w, r, path)
	case "regions":
		s.regions(w, r, path[1:])
	case "account":
		if len(path) >= 2 && path[1] == "events" {
			s.events(w, r, path[2:])
			return
		}
		writeError(w, http.StatusNotFound, notFound())
	case "profile":
		// Clients call it to check a token.
		if len(path) != 1 {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"uid": 1, "username": "lab", "email": "lab@example.com", "timezone": "UTC",
			"email_notifications": false, "ip_whitelist_enabled": false, "lish_auth_method": "keys_only",
			"authorized_keys": nil, "two_factor_auth": false, "restricted": false,
			"authentication_type": "password", "verified_phone_number": nil,
			"referrals": map[string]any{"total": 0, "completed": 0, "pending": 0, "credit": 0, "code": "", "url": ""},
		})
	case "linode":
		if len(path) >= 2 && path[1] == "types" {
			s.types(w, r, path[2:])
			return
		}
		if len(path) >= 2 && path[1] == "instances" {
			s.instances(w, r, path[2:])
			return
		}
		writeError(w, http.StatusNotFound, notFound())
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}

func (s *Server) regions(w http.ResponseWriter, r *http.Request, rest []string) {
	serveCatalog(w, r, rest, regions, findRegion, regionJSON,
		map[string]bool{"id": true, "label": true, "country": true, "site_type": true, "status": true, "capabilities": true})
}

func (s *Server) types(w http.ResponseWriter, r *http.Request, rest []string) {
	serveCatalog(w, r, rest, linodeTypes, findType, typeJSON,
		map[string]bool{"id": true, "label": true, "class": true, "vcpus": true, "memory": true, "disk": true})
}

// serveCatalog answers a read-only collection of the API's catalogue (regions, Linode types):
// GET of the list, with filters on the given fields and pagination, and GET of one item.
func serveCatalog[T any](w http.ResponseWriter, r *http.Request, rest []string, all []T,
	find func(string) (T, bool), toJSON func(T) map[string]any, filterable map[string]bool) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	switch len(rest) {
	case 0:
		var items []any
		for _, it := range all {
			items = append(items, toJSON(it))
		}
		writeList(w, r, items, filterable)
	case 1:
		it, ok := find(rest[0])
		if !ok {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		writeJSON(w, http.StatusOK, toJSON(it))
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}

// instanceJSON is the real Instance shape (as recorded for an LKE node).
type instanceJSON struct {
	ID                  int             `json:"id"`
	Label               string          `json:"label"`
	Group               string          `json:"group"`
	Status              string          `json:"status"`
	Created             string          `json:"created"`
	Updated             string          `json:"updated"`
	Type                string          `json:"type"`
	IPv4                []string        `json:"ipv4"`
	IPv6                string          `json:"ipv6"`
	Image               *string         `json:"image"`
	Region              string          `json:"region"`
	SiteType            string          `json:"site_type"`
	Specs               map[string]int  `json:"specs"`
	Alerts              map[string]int  `json:"alerts"`
	Backups             map[string]any  `json:"backups"`
	Hypervisor          string          `json:"hypervisor"`
	WatchdogEnabled     bool            `json:"watchdog_enabled"`
	Tags                []string        `json:"tags"`
	HostUUID            string          `json:"host_uuid"`
	HasUserData         bool            `json:"has_user_data"`
	PlacementGroup      *map[string]any `json:"placement_group"`
	DiskEncryption      string          `json:"disk_encryption"`
	LKEClusterID        int             `json:"lke_cluster_id"`
	Capabilities        []string        `json:"capabilities"`
	InterfaceGeneration string          `json:"interface_generation"`
	MaintenancePolicy   string          `json:"maintenance_policy"`
	Locks               []string        `json:"locks"`
}

var instanceFields = map[string]bool{
	"id": true, "label": true, "tags": true, "region": true, "type": true, "status": true,
	"lke_cluster_id": true, "group": true, "image": true,
}

type instanceRef struct {
	c *cluster
	p *pool
	n *node
}

// instancesLocked lists every node that has become an instance, in id order.
func (s *Server) instancesLocked() []instanceRef {
	var out []instanceRef
	for _, c := range s.sortedClustersLocked() {
		for _, p := range c.pools {
			for _, n := range p.nodes {
				if n.instanceID != 0 {
					out = append(out, instanceRef{c, p, n})
				}
			}
		}
	}
	return out
}

func (s *Server) instanceJSON(ref instanceRef) instanceJSON {
	t, _ := findType(ref.p.typ)
	status := "provisioning"
	if s.nodeReady(ref.n) {
		status = "running"
	}
	image := "linode/debian12-kube-" + ref.c.k8s
	return instanceJSON{
		ID: ref.n.instanceID, Label: instanceLabel(ref.c, ref.n), Status: status,
		Created: stamp(ref.n.assignedAt), Updated: stamp(ref.n.assignedAt), Type: ref.p.typ,
		IPv4: []string{ref.n.ip, ref.n.privateIP}, IPv6: "2001:db8::" + strconv.FormatInt(int64(ref.n.instanceID%0xffff), 16) + "/128",
		Image: &image, Region: ref.c.region, SiteType: "core",
		Specs:           map[string]int{"disk": t.DiskMB, "memory": t.MemoryMB, "vcpus": t.VCPUs, "gpus": 0, "transfer": t.Transfer, "accelerated_devices": 0},
		Alerts:          map[string]int{"cpu": 90 * t.VCPUs, "network_in": 10, "network_out": 10, "transfer_quota": 80, "io": 10000},
		Backups:         map[string]any{"enabled": false, "available": false, "schedule": map[string]any{"day": nil, "window": nil}, "last_successful": nil},
		Hypervisor:      "kvm",
		WatchdogEnabled: true, Tags: nonNil(ref.p.tags), HostUUID: fmt.Sprintf("%040x", ref.n.instanceID),
		DiskEncryption: "enabled", LKEClusterID: ref.c.id,
		Capabilities:        []string{"Block Storage Encryption", "SMTP Enabled"},
		InterfaceGeneration: "legacy_config", MaintenancePolicy: "linode/migrate", Locks: []string{},
	}
}

func (s *Server) instances(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	if len(rest) == 0 {
		var items []any
		for _, ref := range s.instancesLocked() {
			items = append(items, s.instanceJSON(ref))
		}
		writeList(w, r, items, instanceFields)
		return
	}
	id, err := strconv.Atoi(rest[0])
	var found *instanceRef
	for _, ref := range s.instancesLocked() {
		if ref.n.instanceID == id {
			found = &ref
		}
	}
	if err != nil || found == nil || len(rest) > 2 || (len(rest) == 2 && rest[1] != "ips") {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	if len(rest) == 1 {
		writeJSON(w, http.StatusOK, s.instanceJSON(*found))
		return
	}
	writeJSON(w, http.StatusOK, ipsJSON(*found))
}

func ipsJSON(ref instanceRef) map[string]any {
	id, region := ref.n.instanceID, ref.c.region
	v4 := func(addr, gw, mask string, prefix int, public bool) map[string]any {
		return map[string]any{
			"address": addr, "gateway": gw, "subnet_mask": mask, "prefix": prefix, "type": "ipv4",
			"public": public, "rdns": nil, "linode_id": id, "interface_id": nil, "region": region,
			"vpc_nat_1_1": nil, "reserved": false,
		}
	}
	v6 := func(addr string, public bool) map[string]any {
		return map[string]any{
			"address": addr, "gateway": "fe80::1", "subnet_mask": "ffff:ffff:ffff:ffff::", "prefix": 64,
			"type": "ipv6", "rdns": nil, "linode_id": id, "region": region, "public": public,
		}
	}
	var private any = v4(ref.n.privateIP, "", "255.255.128.0", 17, false)
	private.(map[string]any)["gateway"] = nil
	return map[string]any{
		"ipv4": map[string]any{
			"public":   []any{v4(ref.n.ip, gatewayOf(ref.n.ip), "255.255.255.0", 24, true)},
			"private":  []any{private},
			"shared":   []any{},
			"reserved": []any{},
			"vpc":      []any{},
		},
		"ipv6": map[string]any{
			"slaac":      v6(fmt.Sprintf("2001:db8::%x", id%0xffff), true),
			"link_local": v6(fmt.Sprintf("fe80::%x", id%0xffff), false),
			"global":     []any{},
			"vpc":        []any{},
		},
	}
}
