package weights

import (
	"errors"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/reconcile-dev/reconcile/plan"
)

func TestGateShortfall(t *testing.T) {
	t.Parallel()
	g := &plan.RolloutGate{Split: map[string]int32{"ap": 3, "eu": 4, "us": 3}, Available: map[string]int32{"eu": 4}}
	for _, tc := range []struct {
		scheduled, available map[string]int32
		want                 string
	}{
		{map[string]int32{"ap": 4, "eu": 3, "us": 3}, nil, "Karmada divides ap 4, eu 3, us 3, not yet ap 3, eu 4, us 3"},
		{map[string]int32{"ap": 3, "eu": 4, "us": 3}, map[string]int32{"eu": 3}, "eu reports 3 of 4 available"},
		{map[string]int32{"ap": 3, "eu": 4, "us": 3}, map[string]int32{"eu": 4, "ap": 0}, ""},
	} {
		if got := GateShortfall(g, tc.scheduled, tc.available); got != tc.want {
			t.Errorf("GateShortfall(%v, %v) = %q, want %q", tc.scheduled, tc.available, got, tc.want)
		}
	}
}

// TestRolloutStageAndGate: a stage step writes the policy and records the stage in the store;
// its gate holds once the binding shows the split and the gaining member reports its replicas
// available, and records the stage as good; a gate that does not hold within its timeout
// fails with GateTimeoutError; the last stage's gate ends the rollout.
func TestRolloutStageAndGate(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "rollout"
	f := helloFleet(t, ns, "us: 1, ap: 1, eu: 1")
	applyBoth(t, ctx, h.driver, f, "hello", helloPolicy(ns, map[string]int64{"us": 1, "ap": 1, "eu": 1}))

	one := map[string]int64{"ap": 1, "eu": 1, "us": 1}
	stage1 := map[string]int64{"ap": 3, "eu": 4, "us": 3}
	target := map[string]int64{"ap": 1, "eu": 2, "us": 2}
	split1 := map[string]int32{"ap": 3, "eu": 4, "us": 3}
	p := helloPolicy(ns, stage1)
	p.Rollout = &plan.Rollout{Resource: ns + "/Deployment/hello", Replicas: 10, From: one, Target: target, Stage: 1, Stages: 2,
		Weights: stage1, Split: split1, LastGood: one}
	if err := apply(ctx, h.driver, policyStep(plan.Update, "hello", p)); err != nil {
		t.Fatal(err)
	}
	w := observe(t, ctx, h.driver, f)
	rec := w.Rollouts["hello"]
	if rec == nil || rec.Stage != 1 || rec.GateHeld || !maps.Equal(rec.Weights, stage1) || rec.Started.IsZero() {
		t.Fatalf("recorded rollout = %+v", rec)
	}
	if got := w.Karmada.Policies[ns+"/hello"].Weights; !maps.Equal(got, stage1) {
		t.Errorf("policy weights = %v, want stage 1's %v", got, stage1)
	}

	// Karmada's part, written by hand: the binding with the stage's split, eu reporting 3.
	dep, err := h.dyn.Resource(deploymentGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	binding := func(split, available map[string]int32) {
		t.Helper()
		var clusters, agg []any
		for _, m := range sortedMembers(split) {
			clusters = append(clusters, map[string]any{"name": m, "replicas": int64(split[m])})
			agg = append(agg, map[string]any{"clusterName": m, "applied": true,
				"status": map[string]any{"replicas": int64(split[m]), "availableReplicas": int64(available[m])}})
		}
		ri := h.dyn.Resource(bindingGVR).Namespace(ns)
		rb, err := ri.Get(ctx, BindingName("Deployment", "hello"), metav1.GetOptions{})
		if err != nil {
			rb = &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
				"metadata": map[string]any{"name": BindingName("Deployment", "hello"), "namespace": ns},
				"spec": map[string]any{"resource": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
					"namespace": ns, "name": "hello", "uid": string(dep.GetUID())}, "replicas": int64(10)},
			}}
			if rb, err = ri.Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		_ = unstructured.SetNestedSlice(rb.Object, clusters, "spec", "clusters")
		if rb, err = ri.Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedSlice(rb.Object, agg, "status", "aggregatedStatus")
		if _, err = ri.UpdateStatus(ctx, rb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding(split1, map[string]int32{"ap": 3, "eu": 3, "us": 3})
	gate := plan.Step{Address: "workload/hello/rollout/gate", Kind: plan.KindRolloutGate, Action: plan.Wait, Workload: "hello",
		Namespace: ns, Payload: plan.Payload{Gate: &plan.RolloutGate{Namespace: ns, Kind: "Deployment", Name: "hello",
			Stage: 1, Stages: 2, Available: map[string]int32{"eu": 4}, Split: split1, Timeout: "1s"}}}
	err = apply(ctx, h.driver, gate)
	var timedOut *GateTimeoutError
	if !errors.As(err, &timedOut) || !strings.Contains(err.Error(), "eu reports 3 of 4 available") {
		t.Fatalf("gate with eu short: want a GateTimeoutError naming eu, got %v", err)
	}
	if avail := observe(t, ctx, h.driver, f).Karmada.Workloads[ns+"/Deployment/hello"].Available; avail["eu"] != 3 {
		t.Errorf("observed available = %v, want eu 3", avail)
	}

	binding(split1, map[string]int32{"ap": 3, "eu": 4, "us": 3})
	gate.Payload.Gate.Timeout = "1m"
	if err := apply(ctx, h.driver, gate); err != nil {
		t.Fatalf("gate with eu available: %v", err)
	}
	rec = observe(t, ctx, h.driver, f).Rollouts["hello"]
	if rec == nil || !rec.GateHeld || rec.LastGoodStage != 1 || !maps.Equal(rec.LastGood, stage1) {
		t.Fatalf("after the gate held: %+v", rec)
	}

	// The last stage: its gate holding ends the rollout.
	split2 := map[string]int32{"ap": 2, "eu": 4, "us": 4}
	p2 := helloPolicy(ns, target)
	p2.Rollout = &plan.Rollout{Resource: rec.Resource, Replicas: 10, From: one, Target: target, Stage: 2, Stages: 2,
		Weights: target, Split: split2, LastGood: stage1, LastGoodStage: 1}
	if err := apply(ctx, h.driver, policyStep(plan.Update, "hello", p2)); err != nil {
		t.Fatal(err)
	}
	binding(split2, split2)
	gate.Payload.Gate = &plan.RolloutGate{Namespace: ns, Kind: "Deployment", Name: "hello", Stage: 2, Stages: 2,
		Available: map[string]int32{"us": 4}, Split: split2, Timeout: "1m"}
	if err := apply(ctx, h.driver, gate); err != nil {
		t.Fatalf("last gate: %v", err)
	}
	if rec := observe(t, ctx, h.driver, f).Rollouts["hello"]; rec != nil {
		t.Errorf("the rollout is still recorded after its last gate held: %+v", rec)
	}
}
