package linodeapi

import (
	"context"
	"net/http"
)

// KubeconfigRenewer is a Backend that can issue a cluster new credentials. When a
// kubeconfig is regenerated on a Backend that is not one, the same kubeconfig is
// served again once the regeneration is over.
type KubeconfigRenewer interface {
	RenewKubeconfig(ctx context.Context, clusterID int) ([]byte, error)
}

// renewKubeconfigLocked regenerates a provisioned cluster's kubeconfig in the
// background: until the Backend has issued the new one, the kubeconfig endpoint
// answers 503 as it does while provisioning, and the old one is never served again.
func (s *Server) renewKubeconfigLocked(c *cluster) {
	if !c.provisioned || c.renewing || s.closed {
		return
	}
	old := c.kubeconfig
	c.renewing, c.kubeconfig = true, nil
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		kc := old
		if r, ok := s.backend.(KubeconfigRenewer); ok {
			if k, err := r.RenewKubeconfig(s.ctx, c.id); err == nil {
				kc = k
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		c.kubeconfig, c.renewing = kc, false
	}()
}

// kubeconfigLocked serves lke/clusters/{id}/kubeconfig: GET, and DELETE, which
// regenerates it.
func (s *Server) kubeconfigLocked(w http.ResponseWriter, r *http.Request, c *cluster) {
	switch r.Method {
	case http.MethodGet:
		if !c.provisioned || c.renewing {
			s.notYet(w, c, "Cluster kubeconfig is not yet available. Please try again later.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kubeconfig": encodeBase64(c.kubeconfig)})
	case http.MethodDelete:
		s.renewKubeconfigLocked(c)
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodDelete)
	}
}

// serviceTokenLocked serves DELETE lke/clusters/{id}/servicetoken. The lab's
// kubeconfig carries the cluster's only token, so a new service token is a new
// kubeconfig.
func (s *Server) serviceTokenLocked(w http.ResponseWriter, r *http.Request, c *cluster) {
	if r.Method != http.MethodDelete {
		methodNotAllowed(w, http.MethodDelete)
		return
	}
	s.renewKubeconfigLocked(c)
	writeJSON(w, http.StatusOK, struct{}{})
}

// regenerateLocked serves POST lke/clusters/{id}/regenerate.
func (s *Server) regenerateLocked(w http.ResponseWriter, r *http.Request, c *cluster) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	var o struct {
		Kubeconfig   bool `json:"kubeconfig"`
		ServiceToken bool `json:"servicetoken"`
	}
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Kubeconfig || o.ServiceToken {
		s.renewKubeconfigLocked(c)
	}
	writeJSON(w, http.StatusOK, c.json(isBeta(r)))
}

// RenewKubeconfig gives a fresh token for the same nowhere server.
func (b nowhereBackend) RenewKubeconfig(ctx context.Context, clusterID int) ([]byte, error) {
	p, err := b.Provision(ctx, ClusterInfo{ID: clusterID})
	return p.Kubeconfig, err
}
