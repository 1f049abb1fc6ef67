package labworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

type xdsOptions struct {
	dir, fleet, stateDir, namespace string
	timeout                         time.Duration
	minEndpoints                    int
	json                            bool
}

// xdsUsage is what `reconcile-lab xds` accepts.
const xdsUsage = "xds <member> <host>:<port> (or xds:///<host>:<port>), -f fleet.yaml"

// xdsCommand is `reconcile-lab xds <member> <target>`: xds-probe, as a workload Pod of the
// member (its cluster id, network and mesh id from the fleet; a pod IP of its cluster's range),
// asks the member's istiod for the target and prints what it served.
func xdsCommand(ctx context.Context, o xdsOptions, args []string, out io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("want: %s; got %q", xdsUsage, args)
	}
	member, target := args[0], args[1]
	if !strings.HasPrefix(target, "xds:///") {
		target = "xds:///" + target
	}
	f, err := spec.Load(o.fleet)
	if err != nil {
		return err
	}
	network := ""
	if !isMember(f, member) {
		return fmt.Errorf("%q is not a member of fleet %s", member, f.Metadata.Name)
	}
	for _, m := range f.Members {
		if m.Name == member {
			network = m.Network
		}
	}
	if !f.MeshOn() {
		return fmt.Errorf("fleet %s has no mesh: no istiod to ask", f.Metadata.Name)
	}
	dir := o.stateDir
	if dir == "" {
		dir = state.DefaultStoreDir(f.Metadata.Name)
	}
	store, err := state.OpenStore(dir)
	if err != nil {
		return err
	}
	cfg, err := kube.Access{Store: store, Timeout: 10 * time.Second}.For(f).RESTConfig(member)
	if err != nil {
		return fmt.Errorf("member %s: %w", member, err)
	}
	lc, err := FindLabCluster(filepath.Join(o.dir, "clusters"), cfg.Host)
	if err != nil {
		return fmt.Errorf("member %s: %w", member, err)
	}
	bin, err := cluster.FindXDSProbe()
	if err != nil {
		return err
	}
	rep, err := ProbeClusterXDS(ctx, lc, XDSProbeOptions{
		Bin: bin, Target: target, ClusterID: member, Network: network, Namespace: o.namespace,
		Pod: "xds-probe-" + member, MeshID: f.Mesh.MeshID, IstioVersion: IstioVersion,
		Labels: map[string]string{"app": "xds-probe"}, Timeout: o.timeout, MinEndpoints: o.minEndpoints,
	})
	if rep != nil {
		if o.json {
			data, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Fprintf(out, "%s\n", data)
		} else {
			writeXDSReport(out, member, network, rep)
		}
	}
	return err
}

// writeXDSReport prints a report for people: the chain from the listener to the endpoints,
// per locality.
func writeXDSReport(w io.Writer, member, network string, r *XDSReport) {
	fmt.Fprintf(w, "%s (network %s) asked istiod %s for %s as %s\n", member, network, r.XDSServer, r.Target, r.Node)
	ms := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return (time.Duration(*p) * time.Millisecond).String()
	}
	fmt.Fprintf(w, "first Listener after %s, first EDS after %s; complete: %v", ms(r.FirstLDSMillis), ms(r.FirstEDSMillis), r.Complete)
	if r.Missing != "" {
		fmt.Fprintf(w, " (missing: %s)", r.Missing)
	}
	fmt.Fprintln(w)
	res := func(kind string, x XDSResource, extra string) {
		fmt.Fprintf(w, "%-9s %s  %s %s%s\n", kind, x.Name, x.Status, x.Version, extra)
		if x.Error != "" {
			fmt.Fprintf(w, "          rejected: %s\n", x.Error)
		}
	}
	for _, l := range r.Listeners {
		res("listener", l, "  -> route "+l.RouteConfig)
	}
	for _, rt := range r.Routes {
		res("route", rt, "  -> "+strings.Join(rt.Clusters, ", "))
	}
	for _, c := range r.Clusters {
		extra := "  " + c.Type + " " + c.LBPolicy
		if c.TLS {
			extra += " TLS"
		}
		res("cluster", c.XDSResource, extra)
	}
	for _, a := range r.Endpoints {
		res("endpoints", a.XDSResource, "")
		for _, l := range a.Localities {
			name := strings.Trim(strings.Join([]string{l.Region, l.Zone, l.SubZone}, "/"), "/")
			if name == "" {
				name = "(no locality)"
			}
			fmt.Fprintf(w, "  %s  weight %d, priority %d, %d endpoints\n", name, l.Weight, l.Priority, len(l.Endpoints))
			for _, e := range l.Endpoints {
				what := "cluster " + e.Cluster()
				if e.Workload() != "" {
					what += ", workload " + e.Workload()
				} else {
					what += ", its network's gateway"
				}
				if e.TLSMode() != "" {
					what += ", tlsMode " + e.TLSMode()
				}
				fmt.Fprintf(w, "    %-22s %-9s weight %d  (%s)\n", e.Address, e.Health, e.Weight, what)
			}
		}
	}
	fmt.Fprintf(w, "gRPC dialed %d endpoints (all: %v); xds-probe refuses every connection\n", len(r.Dialed), r.DialedAll)
}

// FindLabCluster finds, among the lab clusters under dir (a lab's Dir/clusters), the one whose
// API server is host (a rest.Config's Host: https://<address>:<port>), by its admin kubeconfig.
func FindLabCluster(dir, host string) (LabCluster, error) {
	want, err := url.Parse(host)
	if err != nil || want.Host == "" {
		return LabCluster{}, fmt.Errorf("API server %q: not a URL", host)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return LabCluster{}, fmt.Errorf("lab clusters: %w (is the lab's --dir right?)", err)
	}
	var seen []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cdir := filepath.Join(dir, e.Name())
		cfg, err := clientcmd.LoadFromFile(filepath.Join(cdir, "admin.kubeconfig"))
		if err != nil {
			continue
		}
		for _, c := range cfg.Clusters {
			u, err := url.Parse(c.Server)
			if err != nil {
				continue
			}
			seen = append(seen, u.Host)
			if u.Host == want.Host {
				addr, _, _ := net.SplitHostPort(u.Host)
				return LabCluster{Name: e.Name(), Address: addr, Dir: cdir}, nil
			}
		}
	}
	sort.Strings(seen)
	return LabCluster{}, errors.New("no lab cluster under " + dir + " serves " + want.Host + " (the lab's clusters: " + strings.Join(seen, ", ") + ")")
}
