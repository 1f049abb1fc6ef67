package weights

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// applyOrder puts CRDs first and Namespaces second, so the objects after them can be served
// and placed; the rest keep the order of the manifests.
func applyOrder(objs []*unstructured.Unstructured) {
	rank := func(u *unstructured.Unstructured) int {
		gk := u.GroupVersionKind().GroupKind()
		switch {
		case gk.Group == "apiextensions.k8s.io" && gk.Kind == "CustomResourceDefinition":
			return 0
		case gk.Group == "" && gk.Kind == "Namespace":
			return 1
		}
		return 2
	}
	sort.SliceStable(objs, func(i, j int) bool { return rank(objs[i]) < rank(objs[j]) })
}

// decodeObjects decodes the payload's objects (JSON, their namespace already defaulted).
func decodeObjects(workload string, raws []json.RawMessage) ([]*unstructured.Unstructured, error) {
	objs := make([]*unstructured.Unstructured, 0, len(raws))
	for i, raw := range raws {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("workload %s: object %d of the manifests: %w", workload, i, err)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

func objectName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

// applyManifests server-side applies the payload's objects into Karmada, each annotated with
// the payload's digest so the observer can tell they were applied. An object the apply would
// not change (checked with a server-side dry run) is not written.
func (d *Driver) applyManifests(ctx context.Context, workload string, m *plan.Manifests) error {
	if len(m.Objects) == 0 {
		// The objects are not in a plan's JSON: a step without them was not attached its
		// manifests, and applying nothing would leave the digest unrecorded.
		return fmt.Errorf("weights: manifests of workload %s: the step carries no objects", workload)
	}
	if m.Digest == "" {
		return fmt.Errorf("weights: manifests of workload %s: the step carries no digest", workload)
	}
	objs, err := decodeObjects(workload, m.Objects)
	if err != nil {
		return err
	}
	applyOrder(objs)
	c, err := d.connect()
	if err != nil {
		return err
	}
	crdsPending := false
	for _, u := range objs {
		if crdsPending && !isCRD(u) {
			// The kinds the CRDs define are served once they are Established; only then
			// can discovery map them.
			if err := d.waitEstablished(ctx, c, objs); err != nil {
				return err
			}
			c.mapper.Reset()
			crdsPending = false
		}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[DigestAnnotation] = m.Digest
		u.SetAnnotations(ann)
		written, err := d.applyObject(ctx, c, u)
		if err != nil {
			return classify(fmt.Errorf("workload %s: apply %s: %w", workload, objectName(u), err))
		}
		if written {
			d.log.Info("manifest applied", "workload", workload, "object", objectName(u))
		}
		if written && isCRD(u) {
			crdsPending = true
		}
	}
	return nil
}

func isCRD(u *unstructured.Unstructured) bool {
	gk := u.GroupVersionKind().GroupKind()
	return gk.Group == "apiextensions.k8s.io" && gk.Kind == "CustomResourceDefinition"
}

// applyObject applies u unless a dry run shows the live object would stay the same.
func (d *Driver) applyObject(ctx context.Context, c *clients, u *unstructured.Unstructured) (bool, error) {
	ri, namespaced, err := c.resource(u.GroupVersionKind(), u.GetNamespace())
	if err != nil {
		return false, err
	}
	if !namespaced {
		u.SetNamespace("")
	} else if u.GetNamespace() == "" {
		return false, fmt.Errorf("namespaced object without a namespace")
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err == nil {
		dry := opts
		dry.DryRun = []string{metav1.DryRunAll}
		after, err := ri.Apply(ctx, u.GetName(), u, dry)
		if err != nil {
			return false, err
		}
		if sameObject(live, after) {
			return false, nil
		}
	}
	_, err = ri.Apply(ctx, u.GetName(), u, opts)
	return err == nil, err
}

// sameObject compares what an apply can change: labels, annotations and everything outside
// metadata and status.
func sameObject(a, b *unstructured.Unstructured) bool {
	if !reflect.DeepEqual(a.GetLabels(), b.GetLabels()) || !reflect.DeepEqual(a.GetAnnotations(), b.GetAnnotations()) {
		return false
	}
	strip := func(u *unstructured.Unstructured) map[string]any {
		m := map[string]any{}
		for k, v := range u.Object {
			if k != "metadata" && k != "status" {
				m[k] = v
			}
		}
		return m
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// waitEstablished waits (bounded) until every CRD among objs is Established.
func (d *Driver) waitEstablished(ctx context.Context, c *clients, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		if !isCRD(u) {
			continue
		}
		name := u.GetName()
		w := progress.Start(ctx, d.log, "CRD "+name+" to be established", d.establishTimeout)
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d.establishTimeout, true, func(ctx context.Context) (bool, error) {
			crd, err := c.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		w.End()
		if err != nil {
			return classify(fmt.Errorf("CRD %s not established within %s: %w", name, d.establishTimeout, err))
		}
	}
	return nil
}
