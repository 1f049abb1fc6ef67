// Package entry observes and converges the fleet's DNS entry: the zone and records in Linode's
// DNS Manager, each member's ingress address, and the members' health as the daemon's checks
// decide it (health.go).
package entry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// DNS is the DNS Manager part of the Linode API (*linode.Driver is one).
type DNS interface {
	Zone(ctx context.Context, domain string, wanted, owned func(string) bool) (*world.DNSZone, map[string]*world.DNSName, error)
	CreateZone(ctx context.Context, domain, soaEmail string, tags []string) error
	SetRecords(ctx context.Context, domain, name string, ttl int, addrs []string, owner string, remove bool) error
}

// Observer fills World.Entry: the zone and the names the fleet wants or owns, every reachable
// member's entry Service addresses, and the health the state store keeps. It runs after the
// cluster observer, whose Reachable flags it reads. A zone that cannot be read is recorded as
// unobserved (the planner holds the records), never as absent.
type Observer struct {
	DNS    DNS
	Access kube.Access
	Store  kube.Files
	// Retry retries a read of a member's Service that failed with a retryable error.
	Retry state.Retry
}

// Observe implements state.Observer.
func (o Observer) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	e := f.Entry
	if e == nil {
		return nil
	}
	out := &world.Entry{}
	w.Entry = out
	health, err := LoadHealth(o.Store)
	if err != nil {
		return fmt.Errorf("entry health: %w", err)
	}
	for _, m := range f.Members {
		if h := health[m.Name]; h != nil {
			if out.Health == nil {
				out.Health = map[string]*world.MemberHealth{}
			}
			out.Health[m.Name] = h
		}
	}
	var names []string
	for _, m := range f.Members {
		if c := w.Clusters[m.Name]; c != nil && c.Reachable {
			names = append(names, m.Name)
		}
	}
	ns, svc := e.ServiceRef()
	state.EachCluster(ctx, names, 0, func(ctx context.Context, name string) ([]string, error) {
		var ips []string
		err := o.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			ips, err = o.ingress(ctx, f, name, ns, svc)
			return kube.Classify(err)
		})
		return ips, err
	}, func(name string, ips []string, err error) {
		switch {
		case errors.Is(err, errNoService):
		case err != nil:
			w.MarkUnreadable(name, "entry service "+e.Service+": "+err.Error())
		default:
			if out.Ingress == nil {
				out.Ingress = map[string][]string{}
			}
			out.Ingress[name] = ips
		}
	})
	if o.DNS == nil {
		out.Unobserved = "no Linode API client (provider.linode)"
		return ctx.Err()
	}
	wanted := map[string]bool{e.Hostname: true}
	if e.PerMemberNames {
		for _, m := range f.Members {
			wanted[e.MemberName(m.Name)] = true
		}
	}
	owner := planner.OwnerRecord(f.Metadata.Name)
	zone, recs, err := o.DNS.Zone(ctx, e.Domain, func(n string) bool { return wanted[n] }, func(txt string) bool { return txt == owner })
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		out.Unobserved = err.Error()
		return nil
	}
	out.Zone, out.Names = zone, recs
	return nil
}

var errNoService = errors.New("no such service")

// ingress reads the addresses of the member's entry Service: errNoService when it does not
// exist, an empty list while it has no LoadBalancer address.
func (o Observer) ingress(ctx context.Context, f *spec.Fleet, member, ns, name string) ([]string, error) {
	cfg, err := o.Access.For(f).RESTConfig(member)
	if err != nil {
		return nil, err
	}
	cs, err := kube.Clientset(cfg)
	if err != nil {
		return nil, err
	}
	s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errNoService
	}
	if err != nil {
		return nil, err
	}
	return Addresses(s), nil
}

// Addresses are a LoadBalancer Service's ingress IPs, sorted ([] when it has none).
func Addresses(s *corev1.Service) []string {
	out := []string{}
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return out
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if ip := net.ParseIP(in.IP); ip != nil {
			out = append(out, ip.String())
		}
	}
	sort.Strings(out)
	return out
}

// joinAddrs and splitAddrs carry a list of addresses in one step output.
func joinAddrs(a []string) string { return strings.Join(a, ",") }

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
