package labworld

import (
	"context"

	"github.com/reconcile-dev/reconcile/lab/karmadalab"
)

// karmadaPlayer runs the karmadalab Player in a lab cluster: the Karmada chart's Jobs, its
// control plane in host mode, karmada-agent in agent mode.
type karmadaPlayer struct {
	p *karmadalab.Player
}

func (k karmadaPlayer) Serve(ctx context.Context, c LabCluster) error {
	return k.p.Serve(ctx, karmadalab.ClusterRef{Name: c.Name, Address: c.Address, RESTConfig: c.RESTConfig})
}
