package weights

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// policyObject is the (Cluster)PropagationPolicy that carries p: the listed members, each
// with its static weight, replicas divided by weight.
func policyObject(p *world.Policy) *unstructured.Unstructured {
	kind := "PropagationPolicy"
	if p.ClusterScoped {
		kind = "ClusterPropagationPolicy"
	}
	selectors := []any{}
	for _, r := range p.Resources {
		s := map[string]any{"apiVersion": r.APIVersion, "kind": r.Kind}
		if !p.ClusterScoped {
			// Karmada's webhook would default it to the policy's namespace; say it ourselves
			// so a Karmada without the webhook selects the same resources.
			s["namespace"] = p.Namespace
		}
		if r.Name != "" {
			s["name"] = r.Name
		}
		if len(r.LabelSelector) > 0 {
			ml := map[string]any{}
			for k, v := range r.LabelSelector {
				ml[k] = v
			}
			s["labelSelector"] = map[string]any{"matchLabels": ml}
		}
		selectors = append(selectors, s)
	}
	clusters := append([]string(nil), p.Clusters...)
	sort.Strings(clusters)
	names, weights := []any{}, []any{}
	for _, c := range clusters {
		names = append(names, c)
		weights = append(weights, map[string]any{
			"targetCluster": map[string]any{"clusterNames": []any{c}},
			"weight":        p.Weights[c],
		})
	}
	scheduling := map[string]any{"replicaSchedulingType": "Duplicated"}
	if p.Divided {
		scheduling = map[string]any{
			"replicaSchedulingType":     "Divided",
			"replicaDivisionPreference": "Weighted",
			"weightPreference":          map[string]any{"staticWeightList": weights},
		}
	}
	md := map[string]any{
		"name":   p.Name,
		"labels": map[string]any{ManagedByLabel: ManagedByValue, WorkloadLabel: p.Name},
	}
	if !p.ClusterScoped {
		md["namespace"] = p.Namespace
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.karmada.io/v1alpha1",
		"kind":       kind,
		"metadata":   md,
		"spec": map[string]any{
			"resourceSelectors": selectors,
			"placement": map[string]any{
				"clusterAffinity":   map[string]any{"clusterNames": names},
				"replicaScheduling": scheduling,
			},
		},
	}}
}

// parsePolicy reads a live (Cluster)PropagationPolicy into the world's form. A static weight
// rule that names several clusters gives each of them its weight, the larger one winning, as
// Karmada's scheduler reads it.
func parsePolicy(u *unstructured.Unstructured) *world.Policy {
	p := &world.Policy{Name: u.GetName(), Namespace: u.GetNamespace(),
		ClusterScoped: u.GetKind() == "ClusterPropagationPolicy"}
	sels, _, _ := unstructured.NestedSlice(u.Object, "spec", "resourceSelectors")
	for _, s := range sels {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		r := world.ResourceRef{}
		r.APIVersion, _, _ = unstructured.NestedString(m, "apiVersion")
		r.Kind, _, _ = unstructured.NestedString(m, "kind")
		r.Name, _, _ = unstructured.NestedString(m, "name")
		if ml, found, _ := unstructured.NestedStringMap(m, "labelSelector", "matchLabels"); found && len(ml) > 0 {
			r.LabelSelector = ml
		}
		p.Resources = append(p.Resources, r)
	}
	p.Clusters, _, _ = unstructured.NestedStringSlice(u.Object, "spec", "placement", "clusterAffinity", "clusterNames")
	typ, _, _ := unstructured.NestedString(u.Object, "spec", "placement", "replicaScheduling", "replicaSchedulingType")
	pref, _, _ := unstructured.NestedString(u.Object, "spec", "placement", "replicaScheduling", "replicaDivisionPreference")
	p.Divided = typ == "Divided" && pref == "Weighted"
	p.Weights = map[string]int64{}
	list, _, _ := unstructured.NestedSlice(u.Object, "spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList")
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		w, _, _ := unstructured.NestedInt64(m, "weight")
		names, _, _ := unstructured.NestedStringSlice(m, "targetCluster", "clusterNames")
		for _, n := range names {
			if w > p.Weights[n] {
				p.Weights[n] = w
			}
		}
	}
	return p
}

// contains reports whether every field of want is in have with the same value. Lists must
// match element by element, so an entry added by hand is a difference; fields the API server
// or Karmada's webhook default in are not.
func contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok || !contains(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !contains(h[i], w[i]) {
				return false
			}
		}
		return true
	case int64:
		switch h := have.(type) {
		case int64:
			return h == w
		case float64:
			return h == float64(w)
		}
		return false
	}
	return reflect.DeepEqual(have, want)
}

// upToDate reports whether the live policy already carries the desired labels and spec.
func upToDate(live, desired *unstructured.Unstructured) bool {
	return contains(live.Object["spec"], desired.Object["spec"]) &&
		contains(map[string]any(toAny(live.GetLabels())), map[string]any(toAny(desired.GetLabels())))
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (c *clients) policies(clusterScoped bool, ns string) dynamic.ResourceInterface {
	if clusterScoped {
		return c.dyn.Resource(clusterPolicyGVR)
	}
	return c.dyn.Resource(policyGVR).Namespace(ns)
}

// worldPolicy is the policy a payload describes, in the form the observer reads policies
// back in: what is applied is compared with what is observed field for field.
func worldPolicy(p *plan.Policy) *world.Policy {
	out := &world.Policy{Namespace: p.Namespace, Name: p.Name, ClusterScoped: p.ClusterScoped,
		Clusters: slices.Clone(p.Clusters), Weights: maps.Clone(p.Weights), Divided: p.Divided}
	if p.ClusterScoped {
		out.Namespace = ""
	}
	for _, r := range p.Resources {
		out.Resources = append(out.Resources, world.ResourceRef{APIVersion: r.APIVersion, Kind: r.Kind,
			Name: r.Name, LabelSelector: maps.Clone(r.LabelSelector)})
	}
	return out
}

// applyPolicy writes the payload's (Cluster)PropagationPolicy by server-side apply, forcing
// conflicts: a hand edit of what reconcile owns is drift, corrected here. A policy that
// already matches is left alone, so a converged pass writes nothing.
func (d *Driver) applyPolicy(ctx context.Context, workload string, payload *plan.Policy) error {
	want := worldPolicy(payload)
	obj := policyObject(want)
	d.mark(obj)
	c, err := d.connect()
	if err != nil {
		return err
	}
	ri := c.policies(want.ClusterScoped, want.Namespace)
	live, err := ri.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return classify(fmt.Errorf("read %s: %w", policyName(want), err))
	case !world.OwnedBy(live.GetLabels(), d.fleet):
		return fmt.Errorf("%s exists and is not fleet %s's (labels %v): it is left alone; rename the workload or remove that policy",
			policyName(want), d.fleet, live.GetLabels())
	case upToDate(live, obj):
		d.log.Debug("policy up to date", "workload", workload, "policy", policyName(want))
		return nil
	}
	if _, err := ri.Apply(ctx, want.Name, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return classify(fmt.Errorf("apply %s: %w", policyName(want), err))
	}
	if live == nil {
		d.log.Info("policy created", "workload", workload, "policy", policyName(want))
		return nil
	}
	d.log.Info("policy drift corrected", "workload", workload, "policy", policyName(want),
		"before", describe(parsePolicy(live)), "after", describe(want))
	return nil
}

// deletePolicy deletes the payload's policy (that of a workload that left the fleet) and
// returns once it is gone (Karmada's finalizer lets it go after cleaning up). A policy
// without our label is refused: reconcile deletes only what it wrote.
func (d *Driver) deletePolicy(ctx context.Context, workload string, payload *plan.Policy) error {
	p := &world.Policy{Namespace: payload.Namespace, Name: payload.Name, ClusterScoped: payload.ClusterScoped}
	if p.ClusterScoped {
		p.Namespace = ""
	}
	if p.Name == "" {
		return fmt.Errorf("weights: delete policy of workload %s: the step names no policy", workload)
	}
	c, err := d.connect()
	if err != nil {
		return err
	}
	ri := c.policies(p.ClusterScoped, p.Namespace)
	live, err := ri.Get(ctx, p.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(fmt.Errorf("read %s: %w", policyName(p), err))
	}
	if !world.OwnedBy(live.GetLabels(), d.fleet) {
		return fmt.Errorf("%s is not fleet %s's (labels %v): not deleting it", policyName(p), d.fleet, live.GetLabels())
	}
	if live.GetDeletionTimestamp() == nil {
		uid := live.GetUID()
		err := ri.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return classify(fmt.Errorf("delete %s: %w", policyName(p), err))
		}
		d.log.Info("policy deleted", "workload", workload, "policy", policyName(p))
	}
	w := progress.Start(ctx, d.log, policyName(p)+" to be deleted", d.deleteTimeout)
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, d.deleteTimeout, true, func(ctx context.Context) (bool, error) {
		still, err := ri.Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			w.Set(fmt.Sprintf("finalizers %v", still.GetFinalizers()))
		}
		return false, nil // still there, or the API hiccuped: ask again until the bound
	})
	w.End()
	if err != nil {
		return state.Transient(fmt.Errorf("%s still exists %s after its deletion (finalizers %v?): %w",
			policyName(p), d.deleteTimeout, live.GetFinalizers(), err), 0)
	}
	return nil
}

func policyName(p *world.Policy) string {
	if p.ClusterScoped {
		return "ClusterPropagationPolicy " + p.Name
	}
	return "PropagationPolicy " + p.Namespace + "/" + p.Name
}

// describe is a one-line form of a policy's placement for logs.
func describe(p *world.Policy) string {
	names := make([]string, 0, len(p.Weights))
	for n := range p.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	s := fmt.Sprintf("clusters=%v divided=%t weights=", p.Clusters, p.Divided)
	for i, n := range names {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s:%d", n, p.Weights[n])
	}
	return s
}
