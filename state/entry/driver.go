package entry

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// Config configures a Driver.
type Config struct {
	DNS    DNS
	Access kube.Access
	Log    *slog.Logger
	// PollInterval and WaitTimeout bound the wait for an ingress address (defaults 1s, 10m).
	PollInterval, WaitTimeout time.Duration
}

// Driver applies the entry's steps: the zone, the wait for each member's ingress address and
// the records.
type Driver struct{ cfg Config }

// New builds a Driver.
func New(cfg Config) *Driver {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg}
}

// Apply implements executor.Driver.
func (d *Driver) Apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	p := s.Payload
	switch s.Kind {
	case plan.KindDNSZone:
		if p.DNSZone == nil || d.cfg.DNS == nil {
			return nil, fmt.Errorf("%s: no zone payload or no Linode API", s.Address)
		}
		return nil, d.cfg.DNS.CreateZone(ctx, p.DNSZone.Domain, p.DNSZone.SOAEmail, p.DNSZone.Tags)
	case plan.KindIngressAddress:
		if p.Ingress == nil {
			return nil, fmt.Errorf("%s: no ingress payload", s.Address)
		}
		ips, err := d.awaitAddress(ctx, s.Cluster, p.Ingress.Namespace, p.Ingress.Name)
		if err != nil {
			return nil, err
		}
		return plan.Outputs{plan.OutputIngressIPs: joinAddrs(ips)}, nil
	case plan.KindDNSRecord:
		r := p.DNSRecord
		if r == nil || d.cfg.DNS == nil {
			return nil, fmt.Errorf("%s: no record payload or no Linode API", s.Address)
		}
		var addrs []string
		seen := map[string]bool{}
		for _, v := range r.Addresses {
			if v.From != nil {
				return nil, fmt.Errorf("%s: address %s was not resolved", s.Address, v.From)
			}
			for _, a := range splitAddrs(v.Value) {
				if !seen[a] {
					seen[a] = true
					addrs = append(addrs, a)
				}
			}
		}
		sort.Strings(addrs)
		return nil, d.cfg.DNS.SetRecords(ctx, r.Domain, r.Name, r.TTL, addrs, r.Owner, s.Action == plan.Delete)
	}
	return nil, fmt.Errorf("entry driver: unknown step kind %q", s.Kind)
}

// awaitAddress waits until the member's Service has a LoadBalancer address.
func (d *Driver) awaitAddress(ctx context.Context, member, ns, name string) ([]string, error) {
	cfg, err := d.cfg.Access.RESTConfig(member)
	if err != nil {
		return nil, err
	}
	cs, err := kube.Clientset(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WaitTimeout)
	defer cancel()
	what := "service " + ns + "/" + name + " in " + member
	wait := progress.Start(ctx, d.cfg.Log, "a LoadBalancer address of "+what, d.cfg.WaitTimeout)
	defer wait.End()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	last := "not found"
	for {
		s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			if ips := Addresses(s); len(ips) > 0 {
				return ips, nil
			}
			last = "no address in status.loadBalancer yet"
		case apierrors.IsNotFound(err):
			last = "not found"
		default:
			last = err.Error()
		}
		wait.Set(last)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s has no LoadBalancer address after %s (%s)", what, d.cfg.WaitTimeout, last)
		case <-tick.C:
		}
	}
}
