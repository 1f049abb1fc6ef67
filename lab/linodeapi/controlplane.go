package linodeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
)

// controlPlaneACL is who may reach a cluster's control plane. A new cluster has it
// disabled with no addresses, as LKE does when the create request names none.
type controlPlaneACL struct {
	enabled    bool
	revisionID string
	ipv4, ipv6 []string
}

type aclJSON struct {
	Enabled    bool             `json:"enabled"`
	RevisionID string           `json:"revision-id"`
	Addresses  aclAddressesJSON `json:"addresses"`
}

type aclAddressesJSON struct {
	IPv4 []string `json:"ipv4"`
	IPv6 []string `json:"ipv6"`
}

// aclOptions is the "acl" object of a control_plane on create and update, and of
// PUT control_plane_acl.
type aclOptions struct {
	Enabled    *bool  `json:"enabled"`
	RevisionID string `json:"revision-id"`
	Addresses  *struct {
		IPv4 *[]string `json:"ipv4"`
		IPv6 *[]string `json:"ipv6"`
	} `json:"addresses"`
}

func (a controlPlaneACL) json() aclJSON {
	return aclJSON{
		Enabled: a.enabled, RevisionID: a.revisionID,
		Addresses: aclAddressesJSON{IPv4: nonNil(a.ipv4), IPv6: nonNil(a.ipv6)},
	}
}

// validateACL checks every address is a host or a CIDR range of its family.
func validateACL(o aclOptions, prefix string) *apiError {
	if o.Addresses == nil {
		return nil
	}
	var errs []errorReason
	check := func(list *[]string, v4 bool, field string) {
		if list == nil {
			return
		}
		for _, a := range *list {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				ip, ipErr := netip.ParseAddr(a)
				if ipErr != nil {
					errs = append(errs, errorReason{fmt.Sprintf("%s is not a valid address or range", a), prefix + field})
					continue
				}
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
			if p.Addr().Is4() != v4 {
				errs = append(errs, errorReason{fmt.Sprintf("%s is not of the right address family", a), prefix + field})
			}
		}
	}
	check(o.Addresses.IPv4, true, "addresses.ipv4")
	check(o.Addresses.IPv6, false, "addresses.ipv6")
	if len(errs) == 0 {
		return nil
	}
	return &apiError{Errors: errs}
}

// applyACLLocked changes a cluster's ACL by the options given; a change without a
// revision-id of the caller's gets a new one.
func (s *Server) applyACLLocked(c *cluster, o aclOptions) {
	a := &c.acl
	if o.Enabled != nil {
		a.enabled = *o.Enabled
	}
	if ad := o.Addresses; ad != nil {
		if ad.IPv4 != nil {
			a.ipv4 = slices.Clone(*ad.IPv4)
		}
		if ad.IPv6 != nil {
			a.ipv6 = slices.Clone(*ad.IPv6)
		}
	}
	a.revisionID = o.RevisionID
	if a.revisionID == "" {
		a.revisionID = fmt.Sprintf("%08x", s.rng.Uint32())
	}
}

// controlPlaneACLLocked serves lke/clusters/{id}/control_plane_acl.
func (s *Server) controlPlaneACLLocked(w http.ResponseWriter, r *http.Request, c *cluster) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		var o struct {
			ACL *aclOptions `json:"acl"`
		}
		if e := decodeStrict(r, &o); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
		if o.ACL == nil {
			writeError(w, http.StatusBadRequest, apiErr("acl is required", "acl"))
			return
		}
		if e := validateACL(*o.ACL, "acl."); e != nil {
			writeError(w, http.StatusBadRequest, e)
			return
		}
		s.applyACLLocked(c, *o.ACL)
		c.updated = s.now()
	case http.MethodDelete:
		// Deleting the ACL opens the control plane to every address again.
		c.acl = controlPlaneACL{}
		c.updated = s.now()
		writeJSON(w, http.StatusOK, struct{}{})
		return
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
		return
	}
	writeJSON(w, http.StatusOK, map[string]aclJSON{"acl": c.acl.json()})
}

// dashboardURL is where LKE would serve the cluster's Kubernetes dashboard; the lab
// serves none, so the address is in a reserved domain that never resolves.
func dashboardURL(c *cluster) string {
	return fmt.Sprintf("https://lke%d-dashboard.lab.invalid", c.id)
}
