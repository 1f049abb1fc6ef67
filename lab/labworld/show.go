package labworld

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linode/linodego"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

type showOptions struct {
	dir, fleet, stateDir string
	wait                 time.Duration
}

var karmadaClusters = schema.GroupVersionResource{Group: "cluster.karmada.io", Version: "v1alpha1", Resource: "clusters"}

// show prints what a fleet became in the lab: its LKE clusters as the Linode API lists them,
// the Karmada members with their Ready condition, the mesh as each member's istiod sees it
// (its /debug/clusterz), and each workload's replicas per member.
// What cannot be read yet is printed as such, not as an error: show runs mid-convergence too.
func show(ctx context.Context, o showOptions, out io.Writer) error {
	f, err := spec.Load(o.fleet)
	if err != nil {
		return err
	}
	s, err := ReadState(o.dir)
	if err != nil {
		return fmt.Errorf("the lab does not run here (%w); start it with `reconcile-lab up`", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute+o.wait)
	defer cancel()

	lc := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	if _, err := lc.UseURL(s.LinodeURL); err != nil {
		return err
	}
	lc.SetToken(s.Token)
	clusters, err := lc.ListLKEClusters(ctx, nil)
	if err != nil {
		return fmt.Errorf("list LKE clusters: %w", err)
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Label < clusters[j].Label })
	fmt.Fprintf(out, "LKE clusters (%s):\n", s.LinodeURL)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  LABEL\tID\tREGION\tK8S\tSTATUS\tAPI")
	for _, c := range clusters {
		api := "-"
		if eps, err := lc.ListLKEClusterAPIEndpoints(ctx, c.ID, nil); err == nil && len(eps) > 0 {
			api = eps[0].Endpoint
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\n", c.Label, c.ID, c.Region, c.K8sVersion, c.Status, api)
	}
	tw.Flush()
	showNodeBalancers(ctx, &lc, out)
	fmt.Fprintf(out, "\nLab DNS (the Linode API's zones, UDP and TCP): %s=%s\n", DNSEnv, s.DNS)
	if e := f.Entry; e != nil {
		names := []string{e.FQDN()}
		if e.PerMemberNames {
			for _, m := range f.Members {
				names = append(names, e.MemberName(m.Name)+"."+e.Domain)
			}
		}
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tANSWER (A, AAAA)")
		for _, n := range names {
			answer := "-"
			switch ips, err := Resolve(s.DNS, n); {
			case err != nil:
				answer = "no answer: " + err.Error()
			case len(ips) > 0:
				answer = strings.Join(ips, ", ")
			}
			fmt.Fprintf(tw, "  %s\t%s\n", n, answer)
		}
		tw.Flush()
	}

	dir := o.stateDir
	if dir == "" {
		dir = state.DefaultStoreDir(f.Metadata.Name)
	}
	store, err := state.OpenStore(dir)
	if err != nil {
		return err
	}
	access := kube.Access{Store: store, Timeout: 10 * time.Second}

	fmt.Fprintf(out, "\nKarmada members (manager %s):\n", f.Manager.Name)
	if cfg, err := access.KarmadaRESTConfig(); err != nil {
		fmt.Fprintf(out, "  not reachable yet: %v\n", err)
	} else if dc, err := dynamic.NewForConfig(cfg); err != nil {
		return err
	} else if list, err := dc.Resource(karmadaClusters).List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(out, "  not readable yet: %v\n", err)
	} else {
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tMODE\tREADY\tREASON")
		for _, m := range list.Items {
			mode, _, _ := unstructured.NestedString(m.Object, "spec", "syncMode")
			ready, reason := readyCondition(m)
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.GetName(), mode, ready, reason)
		}
		tw.Flush()
	}

	if f.Mesh.On() {
		ShowMesh(ctx, f, access, o.dir, out)
	}

	if o.wait > 0 {
		waitPropagated(ctx, f, access, o.wait)
	}
	for _, w := range f.Workloads {
		fmt.Fprintf(out, "\nWorkload %s (namespace %s):\n", w.Name, w.Namespace)
		members := make([]string, 0, len(w.Weights))
		for m := range w.Weights {
			members = append(members, m)
		}
		sort.Strings(members)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tWEIGHT\tKIND/NAME\tREPLICAS\tREADY")
		for _, m := range members {
			cfg, err := access.For(f).RESTConfig(m)
			if err != nil {
				fmt.Fprintf(tw, "  %s\t%d\t-\tunreachable: %v\t\n", m, w.Weights[m], err)
				continue
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			for _, r := range w.Resources {
				if r.Kind != "Deployment" || r.Name == "" {
					continue
				}
				d, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
				if err != nil {
					fmt.Fprintf(tw, "  %s\t%d\tDeployment/%s\t%v\t\n", m, w.Weights[m], r.Name, err)
					continue
				}
				fmt.Fprintf(tw, "  %s\t%d\tDeployment/%s\t%d\t%d\n", m, w.Weights[m], r.Name, replicas(d.Spec.Replicas), d.Status.ReadyReplicas)
			}
		}
		tw.Flush()
	}
	return nil
}

// waitPropagated waits (bounded) until every weighted member has every Deployment its
// workload selects: right after a pass, Karmada's scheduler may not have placed them yet.
// Whatever is still missing when the wait ends is printed as such by show.
func waitPropagated(ctx context.Context, f *spec.Fleet, access kube.Access, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		if propagated(ctx, f, access) || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func propagated(ctx context.Context, f *spec.Fleet, access kube.Access) bool {
	for _, w := range f.Workloads {
		for m := range w.Weights {
			cfg, err := access.For(f).RESTConfig(m)
			if err != nil {
				return false
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return false
			}
			for _, r := range w.Resources {
				if r.Kind != "Deployment" || r.Name == "" {
					continue
				}
				if _, err := client.AppsV1().Deployments(w.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); err != nil {
					return false
				}
			}
		}
	}
	return true
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func readyCondition(u unstructured.Unstructured) (status, reason string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		return s, r
	}
	return "Unknown", "no Ready condition"
}
