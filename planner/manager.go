package planner

import (
	"path/filepath"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// managerNodeIP is the manager node the Karmada API is reached on: the first observed Ready
// node, else a reference to the node-address step, which is then planned.
func (b *builder) managerNodeIP() plan.Value {
	v := b.peekNodeIP()
	if v.From != nil && !b.has(AddrNodeAddress) {
		mgr := b.f.Manager.Name
		b.add(plan.Step{Address: AddrNodeAddress, Layer: plan.Managers, Kind: plan.KindNodeAddress, Action: plan.Wait,
			Cluster: mgr, Reason: "the address of a Ready node of " + mgr + " is not known yet",
			DependsOn: b.nearest(addrKubeconfig(mgr), addrCluster(mgr))})
	}
	return v
}

// refSteps are the steps a payload's references point at.
func refSteps(refs []plan.ValueRef, values ...plan.Value) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.From.Step)
	}
	for _, v := range values {
		if v.From != nil {
			out = append(out, v.From.Step)
		}
	}
	return out
}

func (b *builder) manager() {
	mgr := b.f.Manager.Name
	k := &b.f.Manager.Karmada
	b.lkeCluster(mgr, b.f.Manager.Cluster, plan.Managers)
	relName, ns := k.Release, k.Namespace
	var rel *world.Release
	if c := b.cluster(mgr); c != nil {
		rel = c.Releases[ReleaseKey(ns, relName)]
	}
	values, refs, shown := splitValues(KarmadaValues(b.f, b.peekNodeIP()))
	version := k.Chart.Version
	deps := b.nearest(addrKubeconfig(mgr), addrCluster(mgr))
	step := plan.Step{Address: AddrKarmadaRelease, Layer: plan.Managers, Kind: plan.KindKarmadaRelease,
		Cluster: mgr, DependsOn: deps}
	switch {
	case rel == nil:
		step.Action, step.Reason = plan.Create, "no release "+ReleaseKey(ns, relName)+" on "+mgr
		step.Changes = append([]plan.Change{{Field: "chart", After: chartText(k.Chart, spec.DefaultKarmadaChartName)}},
			diffValues("values", nil, shown)...)
	case rel.Status != "deployed":
		step.Action = plan.Replace
		step.Reason = "release " + ReleaseKey(ns, relName) + " is " + statusText(rel.Status) + ": reinstalled to recover"
		step.Changes = append([]plan.Change{{Field: "status", Before: statusText(rel.Status), After: "deployed"}},
			releaseChanges(rel, version, shown)...)
	default:
		step.Changes = releaseChanges(rel, version, shown)
		step.Action, step.Reason = plan.Update, "release "+ReleaseKey(ns, relName)+" differs from fleet.yaml"
	}
	if len(step.Changes) > 0 && b.held(mgr) {
		if why := b.unobserved(mgr); why != "" {
			b.hold(step, why)
		}
	} else if len(step.Changes) > 0 {
		if len(refs) > 0 {
			b.managerNodeIP() // the node-address step exists only for a plan that needs it
		}
		step.DependsOn = append(step.DependsOn, refSteps(refs)...)
		step.Payload.Release = &plan.Release{Name: relName, Namespace: ns, Chart: k.Chart,
			ChartName: spec.DefaultKarmadaChartName, Values: values, Refs: refs, Timeout: k.Timeout,
			Wait: true, WaitForJobs: true, CreateNamespace: true}
		b.add(step)
	}
	kk := b.w.Karmada
	kubeconfig := func(reason string, deps []string) {
		server := KarmadaServer(b.f, b.managerNodeIP())
		p := &plan.KarmadaKubeconfig{Release: relName, Namespace: ns, Server: server}
		if b.f.KubeconfigDir != "" {
			p.CopyTo = filepath.Join(b.f.KubeconfigDir, KarmadaKubeconfigFile)
		}
		b.add(plan.Step{Address: AddrKarmadaKubeconfig, Layer: plan.Managers, Kind: plan.KindKarmadaKubeconfig, Action: plan.Create,
			Cluster: mgr, Reason: reason, DependsOn: append(deps, refSteps(nil, server)...),
			Payload: plan.Payload{KarmadaKubeconfig: p}})
	}
	switch {
	case b.has(AddrKarmadaRelease):
		kubeconfig("the release writes a new "+relName+"-kubeconfig", []string{AddrKarmadaRelease})
	case kk == nil || !kk.Reachable:
		kubeconfig("the Karmada API was not reachable with the stored kubeconfig", deps)
	}
	var why string
	switch {
	case b.has(AddrKarmadaKubeconfig):
		why = "Karmada must answer before members join"
	case kk == nil || !kk.Reachable:
		why = "the Karmada API did not answer"
	case !kk.APIServiceAvailable:
		why = "APIService v1alpha1.cluster.karmada.io is not Available"
	}
	if why != "" {
		b.add(plan.Step{Address: AddrKarmadaReady, Layer: plan.Managers, Kind: plan.KindKarmadaReady, Action: plan.Wait,
			Cluster: mgr, Reason: why, DependsOn: b.present(AddrKarmadaKubeconfig)})
	}
}

// peekNodeIP is managerNodeIP without planning the node-address step: for comparing what
// is installed with what would be, before knowing whether anything is planned.
func (b *builder) peekNodeIP() plan.Value {
	if c := b.cluster(b.f.Manager.Name); c != nil && len(c.NodeIPs) > 0 {
		return plan.Known(c.NodeIPs[0])
	}
	return plan.Value{From: &plan.Ref{Step: AddrNodeAddress, Output: plan.OutputNodeIP}}
}
