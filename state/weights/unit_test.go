package weights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

func TestPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    *world.Policy
	}{
		{"namespaced", &world.Policy{Namespace: "demo", Name: "web",
			Resources: []world.ResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				{APIVersion: "v1", Kind: "Service", LabelSelector: map[string]string{"app": "web"}}},
			Clusters: []string{"ap", "eu", "us"}, Weights: map[string]int64{"ap": 1, "eu": 2, "us": 2}, Divided: true}},
		{"cluster-scoped", &world.Policy{Name: "ns", ClusterScoped: true,
			Resources: []world.ResourceRef{{APIVersion: "v1", Kind: "Namespace", Name: "ns"}},
			Clusters:  []string{"eu"}, Weights: map[string]int64{"eu": 5}, Divided: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := policyObject(tt.p)
			// As the API returns it: through JSON.
			js, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back := &unstructured.Unstructured{}
			if err := back.UnmarshalJSON(js); err != nil {
				t.Fatal(err)
			}
			if got := parsePolicy(back); !reflect.DeepEqual(got, tt.p) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.p)
			}
			if !upToDate(back, u) {
				t.Error("a policy read back is not up to date with itself")
			}
		})
	}
}

func TestParsePolicyReadsLikeTheScheduler(t *testing.T) {
	t.Parallel()
	u := &unstructured.Unstructured{Object: map[string]any{
		"kind":     "PropagationPolicy",
		"metadata": map[string]any{"name": "web", "namespace": "demo"},
		"spec": map[string]any{
			"placement": map[string]any{
				"clusterAffinity": map[string]any{"clusterNames": []any{"eu", "ap"}},
				"replicaScheduling": map[string]any{
					"replicaSchedulingType":     "Divided",
					"replicaDivisionPreference": "Aggregated",
					"weightPreference": map[string]any{"staticWeightList": []any{
						map[string]any{"targetCluster": map[string]any{"clusterNames": []any{"eu", "ap"}}, "weight": int64(1)},
						map[string]any{"targetCluster": map[string]any{"clusterNames": []any{"eu"}}, "weight": int64(3)},
					}},
				},
			},
		},
	}}
	p := parsePolicy(u)
	if p.Divided {
		t.Error("Aggregated is not weighted division")
	}
	if want := map[string]int64{"eu": 3, "ap": 1}; !maps.Equal(p.Weights, want) {
		t.Errorf("weights = %v, want the largest matching rule per cluster %v", p.Weights, want)
	}
}

func TestContains(t *testing.T) {
	t.Parallel()
	want := map[string]any{"a": "x", "list": []any{map[string]any{"w": int64(2)}}}
	tests := []struct {
		name string
		have any
		ok   bool
	}{
		{"equal", map[string]any{"a": "x", "list": []any{map[string]any{"w": int64(2)}}}, true},
		{"defaulted fields", map[string]any{"a": "x", "b": "y", "list": []any{map[string]any{"w": int64(2), "d": true}}}, true},
		{"float from JSON", map[string]any{"a": "x", "list": []any{map[string]any{"w": float64(2)}}}, true},
		{"changed value", map[string]any{"a": "z", "list": []any{map[string]any{"w": int64(2)}}}, false},
		{"changed number", map[string]any{"a": "x", "list": []any{map[string]any{"w": int64(3)}}}, false},
		{"entry added", map[string]any{"a": "x", "list": []any{map[string]any{"w": int64(2)}, map[string]any{"w": int64(1)}}}, false},
		{"field missing", map[string]any{"list": []any{map[string]any{"w": int64(2)}}}, false},
		{"wrong type", map[string]any{"a": "x", "list": "no"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := contains(tt.have, want); got != tt.ok {
				t.Errorf("contains = %t, want %t", got, tt.ok)
			}
		})
	}
}

func TestBindingName(t *testing.T) {
	t.Parallel()
	tests := []struct{ kind, name, want string }{
		{"Deployment", "hello", "hello-deployment"},
		{"StatefulSet", "Web", "web-statefulset"},
		{"ClusterRole", "system:reader", "system.reader-clusterrole"},
	}
	for _, tt := range tests {
		if got := BindingName(tt.kind, tt.name); got != tt.want {
			t.Errorf("BindingName(%s, %s) = %s, want %s", tt.kind, tt.name, got, tt.want)
		}
	}
}

func TestBindingSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clusters any
		want     map[string]int32
	}{
		{"none yet", nil, nil},
		{"split", []any{
			map[string]any{"name": "eu", "replicas": int64(4)},
			map[string]any{"name": "ap", "replicas": int64(2)},
		}, map[string]int32{"eu": 4, "ap": 2}},
		{"duplicated (no replicas)", []any{map[string]any{"name": "eu"}}, map[string]int32{"eu": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := map[string]any{}
			if tt.clusters != nil {
				spec["clusters"] = tt.clusters
			}
			got := bindingSplit(&unstructured.Unstructured{Object: map[string]any{"spec": spec}})
			if !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("split = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestApplyOrder(t *testing.T) {
	t.Parallel()
	obj := func(apiVersion, kind, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetName(name)
		return u
	}
	objs := []*unstructured.Unstructured{
		obj("apps/v1", "Deployment", "a"),
		obj("v1", "Namespace", "ns"),
		obj("example.com/v1", "Widget", "w"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
		obj("v1", "Service", "b"),
	}
	applyOrder(objs)
	var got []string
	for _, u := range objs {
		got = append(got, u.GetName())
	}
	if want := []string{"widgets.example.com", "ns", "a", "w", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestClassify: kube.Classify, plus a kind not served yet (a CRD not established) as transient.
func TestClassify(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Group: "policy.karmada.io", Resource: "propagationpolicies"}
	tests := []struct {
		name      string
		err       error
		retryable bool
		after     time.Duration
	}{
		{"conflict", apierrors.NewConflict(gr, "web", errors.New("changed")), true, 0},
		{"throttled", apierrors.NewTooManyRequests("slow down", 3), true, 3 * time.Second},
		{"unavailable", apierrors.NewServiceUnavailable("starting"), true, 0},
		{"kind not served yet", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "policy.karmada.io", Kind: "PropagationPolicy"}}, true, 0},
		{"network", fmt.Errorf("apply: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true, 0},
		{"CRD not established in time", fmt.Errorf("CRD x not established within 1s: %w", context.DeadlineExceeded), true, 0},
		{"invalid", apierrors.NewBadRequest("bad"), false, 0},
		{"forbidden", apierrors.NewForbidden(gr, "web", errors.New("no")), false, 0},
		{"not found", apierrors.NewNotFound(gr, "web"), false, 0},
		{"plain", errors.New("workload x is not in the fleet"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := classify(tt.err)
			if retry, after := executor.Retryable(err); retry != tt.retryable || after != tt.after {
				t.Errorf("executor.Retryable = %t, %s; want %t, %s (%v)", retry, after, tt.retryable, tt.after, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("classify lost the cause: %v", err)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// A policy payload becomes exactly this PropagationPolicy, and a cluster-scoped one exactly
// this ClusterPropagationPolicy.
func TestPolicyPayloadBecomesPolicyObject(t *testing.T) {
	t.Parallel()
	labels := map[string]any{ManagedByLabel: ManagedByValue, WorkloadLabel: "web"}
	weight := func(c string, w int64) any {
		return map[string]any{"targetCluster": map[string]any{"clusterNames": []any{c}}, "weight": w}
	}
	tests := []struct {
		name string
		p    plan.Policy
		want map[string]any
	}{
		{"namespaced, divided", plan.Policy{Namespace: "demo", Name: "web",
			Resources: []plan.ResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				{APIVersion: "v1", Kind: "Service", LabelSelector: map[string]string{"app": "web"}}},
			Clusters: []string{"us", "eu", "ap"}, Weights: map[string]int64{"ap": 1, "eu": 2, "us": 2}, Divided: true},
			map[string]any{
				"apiVersion": "policy.karmada.io/v1alpha1",
				"kind":       "PropagationPolicy",
				"metadata":   map[string]any{"name": "web", "namespace": "demo", "labels": labels},
				"spec": map[string]any{
					"resourceSelectors": []any{
						map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
						map[string]any{"apiVersion": "v1", "kind": "Service", "namespace": "demo",
							"labelSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}},
					},
					"placement": map[string]any{
						"clusterAffinity": map[string]any{"clusterNames": []any{"ap", "eu", "us"}},
						"replicaScheduling": map[string]any{
							"replicaSchedulingType":     "Divided",
							"replicaDivisionPreference": "Weighted",
							"weightPreference": map[string]any{"staticWeightList": []any{
								weight("ap", 1), weight("eu", 2), weight("us", 2)}},
						},
					},
				},
			}},
		{"cluster-scoped, duplicated", plan.Policy{Namespace: "ignored", Name: "web", ClusterScoped: true,
			Resources: []plan.ResourceRef{{APIVersion: "v1", Kind: "Namespace", Name: "web"}},
			Clusters:  []string{"eu"}, Weights: map[string]int64{"eu": 5}},
			map[string]any{
				"apiVersion": "policy.karmada.io/v1alpha1",
				"kind":       "ClusterPropagationPolicy",
				"metadata":   map[string]any{"name": "web", "labels": labels},
				"spec": map[string]any{
					"resourceSelectors": []any{map[string]any{"apiVersion": "v1", "kind": "Namespace", "name": "web"}},
					"placement": map[string]any{
						"clusterAffinity":   map[string]any{"clusterNames": []any{"eu"}},
						"replicaScheduling": map[string]any{"replicaSchedulingType": "Duplicated"},
					},
				},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before, _ := json.Marshal(tt.p)
			got := policyObject(worldPolicy(&tt.p)).Object
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.MarshalIndent(got, "", "  ")
				wj, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("object:\n%s\nwant:\n%s", gj, wj)
			}
			if after, _ := json.Marshal(tt.p); string(after) != string(before) {
				t.Errorf("building the object changed the payload: %s -> %s", before, after)
			}
		})
	}
}

// Steps the driver cannot apply fail before it connects to anything.
func TestApplyRefusesStepsItCannotApply(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := New(Config{Access: kube.Access{Store: store}})
	pol := &plan.Policy{Namespace: "demo", Name: "web"}
	tests := []struct {
		name string
		s    plan.Step
		want string
	}{
		{"no manifests payload", plan.Step{Address: "a", Kind: plan.KindManifests, Action: plan.Create}, "no manifests payload"},
		{"no policy payload", plan.Step{Address: "a", Kind: plan.KindPolicy, Action: plan.Create}, "no policy payload"},
		{"manifests without objects", plan.Step{Address: "a", Kind: plan.KindManifests, Action: plan.Create, Workload: "web",
			Payload: plan.Payload{Manifests: &plan.Manifests{Namespace: "demo", Digest: "abc"}}}, "carries no objects"},
		{"manifests delete", plan.Step{Address: "a", Kind: plan.KindManifests, Action: plan.Delete,
			Payload: plan.Payload{Manifests: &plan.Manifests{Digest: "abc", Objects: []json.RawMessage{[]byte(`{}`)}}}}, "not supported"},
		{"policy replace", plan.Step{Address: "a", Kind: plan.KindPolicy, Action: plan.Replace, Payload: plan.Payload{Policy: pol}}, "not supported"},
		{"policy delete without a name", plan.Step{Address: "a", Kind: plan.KindPolicy, Action: plan.Delete, Workload: "web",
			Payload: plan.Payload{Policy: &plan.Policy{Namespace: "demo"}}}, "names no policy"},
		{"other kind", plan.Step{Address: "a", Kind: plan.KindJoin, Action: plan.Create}, "not the weights driver's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := d.Apply(t.Context(), tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
