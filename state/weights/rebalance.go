package weights

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/progress"
	"github.com/reconcile-dev/reconcile/state/world"
)

var rebalancerGVR = schema.GroupVersionResource{Group: "apps.karmada.io", Version: "v1alpha1", Resource: "workloadrebalancers"}

// rebalanceTTL is how long Karmada keeps a finished WorkloadRebalancer before deleting it.
const rebalanceTTL = int32(600)

// rebalance has Karmada schedule the policy's named resources afresh with a
// WorkloadRebalancer (Karmada's own API for it), and waits until Karmada reports the result
// for every one. A resource selected by labels alone is not named, so not rebalanced.
func (d *Driver) rebalance(ctx context.Context, workload string, p *plan.Policy) error {
	var refs []any
	for _, r := range p.Resources {
		if r.Name == "" {
			continue
		}
		ref := map[string]any{"apiVersion": r.APIVersion, "kind": r.Kind, "name": r.Name}
		if !p.ClusterScoped && p.Namespace != "" {
			ref["namespace"] = p.Namespace
		}
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		d.log.Info("nothing named to rebalance: the policy selects by labels", "workload", workload)
		return nil
	}
	c, err := d.connect()
	if err != nil {
		return err
	}
	labels := map[string]any{ManagedByLabel: ManagedByValue, WorkloadLabel: workload}
	if d.fleet != "" {
		labels[world.FleetLabel] = d.fleet
	}
	name := "reconcile-" + workload + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
		"metadata": map[string]any{"name": name, "labels": labels},
		"spec":     map[string]any{"workloads": refs, "ttlSecondsAfterFinished": int64(rebalanceTTL)},
	}}
	ri := c.dyn.Resource(rebalancerGVR)
	if _, err := ri.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return classify(fmt.Errorf("create WorkloadRebalancer %s: %w", name, err))
	}
	d.log.Info("rebalance requested", "workload", workload, "rebalancer", name)
	var last string
	w := progress.Start(ctx, d.log, "WorkloadRebalancer "+name+" to reschedule workload "+workload, d.deleteTimeout)
	defer w.End()
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, d.deleteTimeout, true, func(ctx context.Context) (bool, error) {
		defer func() { w.Set(last) }()
		got, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		observed, _, _ := unstructured.NestedSlice(got.Object, "status", "observedWorkloads")
		done := 0
		for _, o := range observed {
			m, _ := o.(map[string]any)
			switch m["result"] {
			case "Successful":
				done++
			case "Failed":
				return false, fmt.Errorf("WorkloadRebalancer %s: %v failed: %v", name, m["workload"], m["reason"])
			}
		}
		last = fmt.Sprintf("%d of %d workloads rescheduled", done, len(refs))
		return done == len(refs), nil
	})
	if err != nil {
		return fmt.Errorf("rebalance %s: %s: %w", workload, last, err)
	}
	return nil
}
