package weights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Observe fills World.Rollouts from the state store, and World.Karmada's Policies (ours only), Workloads (what they select that has
// replicas, with the split from its binding) and ManifestHashes. It adds to what the Karmada
// observer found and does nothing when there is no Karmada kubeconfig or the API does not answer.
func (d *Driver) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	if err := ObserveRollouts(d.store, f, w); err != nil {
		return err
	}
	if !d.access.Store.Exists(kube.KarmadaKubeconfig) {
		return nil
	}
	c, err := d.connect()
	if err != nil {
		return nil // an unusable kubeconfig: Karmada stays unobserved, its steps come first
	}
	sel := labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedByValue}).String()
	var found []*unstructured.Unstructured
	for _, gvr := range []schema.GroupVersionResource{policyGVR, clusterPolicyGVR} {
		list, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
		switch {
		case apierrors.IsNotFound(err):
			continue // the policy CRDs are not installed yet: no policies
		case err != nil && gvr == policyGVR && !isAPIError(err):
			return nil // the Karmada API does not answer
		case err != nil:
			return fmt.Errorf("karmada: list %s: %w", gvr.Resource, err)
		}
		for i := range list.Items {
			if world.OwnedBy(list.Items[i].GetLabels(), d.fleet) { // another fleet's policies are not ours to see
				found = append(found, &list.Items[i])
			}
		}
	}
	k := w.Karmada
	if k == nil {
		k = &world.Karmada{Reachable: true}
		w.Karmada = k
	}
	for _, u := range found {
		p := parsePolicy(u)
		if k.Policies == nil {
			k.Policies = map[string]*world.Policy{}
		}
		k.Policies[p.Namespace+"/"+p.Name] = p
		if err := d.observeSelected(ctx, c, p, k); err != nil {
			return err
		}
	}
	for i := range f.Workloads {
		wl := &f.Workloads[i]
		if len(wl.Objects) == 0 {
			continue
		}
		digest, err := d.appliedDigest(ctx, c, wl)
		if err != nil {
			return err
		}
		if digest != "" {
			if k.ManifestHashes == nil {
				k.ManifestHashes = map[string]string{}
			}
			k.ManifestHashes[wl.Name] = digest
		}
	}
	return nil
}

func isAPIError(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status)
}

// observeSelected records every resource the policy selects that has spec.replicas.
func (d *Driver) observeSelected(ctx context.Context, c *clients, p *world.Policy, k *world.Karmada) error {
	for _, r := range p.Resources {
		gv, err := schema.ParseGroupVersion(r.APIVersion)
		if err != nil {
			continue // a selector Karmada would not match either
		}
		ns := p.Namespace // a namespaced policy selects in its own namespace
		ri, namespaced, err := c.resource(gv.WithKind(r.Kind), ns)
		if meta.IsNoMatchError(err) {
			continue // the kind is not served (yet): nothing selected
		}
		if err != nil {
			return fmt.Errorf("karmada: %s: %w", r.Kind, err)
		}
		var objs []unstructured.Unstructured
		if r.Name != "" && (!namespaced || ns != "") {
			u, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("karmada: read %s %s: %w", r.Kind, r.Name, err)
			}
			if matches(u, r.LabelSelector) {
				objs = append(objs, *u)
			}
		} else {
			opts := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(r.LabelSelector).String()}
			if r.Name != "" {
				opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.Name).String()
			}
			list, err := ri.List(ctx, opts)
			if err != nil {
				return fmt.Errorf("karmada: list %s: %w", r.Kind, err)
			}
			objs = list.Items
		}
		for i := range objs {
			u := &objs[i]
			replicas, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas")
			if !found || err != nil {
				continue // not a workload Karmada divides
			}
			wl := &world.Workload{UID: string(u.GetUID()), Replicas: int32(replicas)}
			if wl.Scheduled, wl.Available, err = d.scheduled(ctx, c, u, namespaced); err != nil {
				return err
			}
			if k.Workloads == nil {
				k.Workloads = map[string]*world.Workload{}
			}
			k.Workloads[u.GetNamespace()+"/"+u.GetKind()+"/"+u.GetName()] = wl
		}
	}
	return nil
}

func matches(u *unstructured.Unstructured, sel map[string]string) bool {
	return labels.SelectorFromSet(sel).Matches(labels.Set(u.GetLabels()))
}

// BindingName is the name Karmada gives the (Cluster)ResourceBinding of a resource.
func BindingName(kind, name string) string {
	// Karmada replaces ':' (allowed in RBAC names, not in CRD object names) with '.'.
	return strings.ToLower(strings.ReplaceAll(name, ":", ".") + "-" + kind)
}

// scheduled is the split Karmada's scheduler wrote into the resource's binding (replicas by
// member) and what each member reports available through its aggregated status. Nil when
// there is no binding yet.
func (d *Driver) scheduled(ctx context.Context, c *clients, u *unstructured.Unstructured, namespaced bool) (map[string]int32, map[string]int32, error) {
	var ri dynamic.ResourceInterface = c.dyn.Resource(clusterBindingGVR)
	if namespaced {
		ri = c.dyn.Resource(bindingGVR).Namespace(u.GetNamespace())
	}
	b, err := ri.Get(ctx, BindingName(u.GetKind(), u.GetName()), metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("karmada: binding of %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return bindingSplit(b), BindingAvailable(b), nil
}

// BindingAvailable reads status.aggregatedStatus[] of a (Cluster)ResourceBinding: the
// availableReplicas each member's copy reports (the rollout gate), by member; nil when none.
func BindingAvailable(b *unstructured.Unstructured) map[string]int32 {
	list, _, _ := unstructured.NestedSlice(b.Object, "status", "aggregatedStatus")
	var out map[string]int32
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(m, "clusterName")
		n, found, _ := unstructured.NestedInt64(m, "status", "availableReplicas")
		if name == "" || !found {
			continue
		}
		if out == nil {
			out = map[string]int32{}
		}
		out[name] = int32(n)
	}
	return out
}

// bindingSplit reads spec.clusters[] of a (Cluster)ResourceBinding.
func bindingSplit(b *unstructured.Unstructured) map[string]int32 {
	list, _, _ := unstructured.NestedSlice(b.Object, "spec", "clusters")
	if len(list) == 0 {
		return nil
	}
	out := map[string]int32{}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(m, "name")
		n, _, _ := unstructured.NestedInt64(m, "replicas")
		if name != "" {
			out[name] = int32(n)
		}
	}
	return out
}

// appliedDigest is the workload's manifest digest when every one of its objects carries the
// same one; "" when any object is missing or unmarked. Objects carrying an older digest make
// the manifests read as changed, not as never applied.
func (d *Driver) appliedDigest(ctx context.Context, c *clients, w *spec.Workload) (string, error) {
	raws := make([]json.RawMessage, len(w.Objects))
	for i, o := range w.Objects {
		raws[i] = o.Raw
	}
	objs, err := decodeObjects(w.Name, raws)
	if err != nil {
		return "", nil // the planner reports the manifests; nothing to observe
	}
	digest := ""
	for i, u := range objs {
		ri, _, err := c.resource(u.GroupVersionKind(), u.GetNamespace())
		if meta.IsNoMatchError(err) {
			return "", nil // its kind (a CRD of the manifests) is not there yet
		}
		if err != nil {
			return "", fmt.Errorf("karmada: %s: %w", objectName(u), err)
		}
		live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("karmada: read %s: %w", objectName(u), err)
		}
		got := live.GetAnnotations()[DigestAnnotation]
		if got == "" || (i > 0 && got != digest) {
			return "", nil
		}
		digest = got
	}
	return digest, nil
}
