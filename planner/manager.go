package planner

import (
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

func (b *builder) managerNodeIP() string {
	if c := b.cluster(b.f.Manager.Name); c != nil && len(c.NodeIPs) > 0 {
		return c.NodeIPs[0]
	}
	return ""
}

func (b *builder) manager() {
	mgr := b.f.Manager.Name
	b.lkeCluster(mgr, b.f.Manager.Cluster, plan.Managers)
	relName, ns := KarmadaRelease(b.f)
	var rel *world.Release
	if c := b.cluster(mgr); c != nil {
		rel = c.Releases[ReleaseKey(ns, relName)]
	}
	values := KarmadaValues(b.f, b.managerNodeIP())
	version := b.f.Manager.Karmada.Chart.Version
	deps := b.nearest(addrKubeconfig(mgr), addrCluster(mgr))
	step := plan.Step{Address: AddrKarmadaRelease, Layer: plan.Managers, Kind: plan.KindKarmadaRelease,
		Cluster: mgr, DependsOn: deps}
	switch {
	case rel == nil:
		step.Action, step.Reason = plan.Create, "no release "+ReleaseKey(ns, relName)+" on "+mgr
		step.Changes = append([]plan.Change{{Field: "chart", After: chartText(b.f.Manager.Karmada.Chart, "karmada")}},
			diffValues("values", nil, values)...)
	case rel.Status != "deployed":
		step.Action = plan.Replace
		step.Reason = "release " + ReleaseKey(ns, relName) + " is " + statusText(rel.Status) + ": reinstalled to recover"
		step.Changes = append([]plan.Change{{Field: "status", Before: statusText(rel.Status), After: "deployed"}},
			releaseChanges(rel, version, values)...)
	default:
		step.Changes = releaseChanges(rel, version, values)
		step.Action, step.Reason = plan.Update, "release "+ReleaseKey(ns, relName)+" differs from fleet.yaml"
	}
	if len(step.Changes) > 0 {
		b.add(step)
	}
	k := b.w.Karmada
	switch {
	case b.has(AddrKarmadaRelease):
		b.add(plan.Step{Address: AddrKarmadaKubeconfig, Layer: plan.Managers, Kind: plan.KindKarmadaKubeconfig, Action: plan.Create,
			Cluster: mgr, Reason: "the release writes a new " + relName + "-kubeconfig", DependsOn: []string{AddrKarmadaRelease}})
	case k == nil || !k.Reachable:
		b.add(plan.Step{Address: AddrKarmadaKubeconfig, Layer: plan.Managers, Kind: plan.KindKarmadaKubeconfig, Action: plan.Create,
			Cluster: mgr, Reason: "the Karmada API was not reachable with the stored kubeconfig", DependsOn: deps})
	}
	var why string
	switch {
	case b.has(AddrKarmadaKubeconfig):
		why = "Karmada must answer before members join"
	case k == nil || !k.Reachable:
		why = "the Karmada API did not answer"
	case !k.APIServiceAvailable:
		why = "APIService v1alpha1.cluster.karmada.io is not Available"
	}
	if why != "" {
		b.add(plan.Step{Address: AddrKarmadaReady, Layer: plan.Managers, Kind: plan.KindKarmadaReady, Action: plan.Wait,
			Cluster: mgr, Reason: why, DependsOn: b.present(AddrKarmadaKubeconfig)})
	}
}

func releaseChanges(rel *world.Release, version string, values map[string]any) []plan.Change {
	var out []plan.Change
	if version != "" && strings.TrimPrefix(version, "v") != strings.TrimPrefix(rel.ChartVersion, "v") {
		out = append(out, plan.Change{Field: "version", Before: rel.ChartVersion, After: version})
	}
	have := rel.Values
	if have == nil {
		have = map[string]any{}
	}
	return append(out, diffValues("values", have, values)...)
}

func statusText(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

func chartText(c spec.ChartSource, defaultName string) string {
	var s string
	switch {
	case c.OCI != "":
		s = c.OCI
	case c.Path != "":
		s = c.Path
	default:
		name := c.Name
		if name == "" {
			name = defaultName
		}
		s = name
		if c.Repo != "" {
			s = c.Repo + " " + name
		}
	}
	if c.Version != "" {
		s += " " + c.Version
	}
	return s
}
