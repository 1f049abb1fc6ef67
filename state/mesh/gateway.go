package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// GatewayResource is Istio's networking.istio.io/v1 Gateway.
var GatewayResource = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}

// gatewaySpec is the cross-network Gateway of Istio's multi-network samples: the east-west
// gateway passes mTLS for *.local services through on 15443.
func gatewaySpec() map[string]any {
	return map[string]any{
		"selector": map[string]any{"istio": "eastwestgateway"},
		"servers": []any{map[string]any{
			"port":  map[string]any{"number": int64(15443), "name": "tls", "protocol": "TLS"},
			"tls":   map[string]any{"mode": "AUTO_PASSTHROUGH"},
			"hosts": []any{"*.local"},
		}},
	}
}

func gatewayObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GatewayResource.GroupVersion().String(),
		"kind":       "Gateway",
		"metadata": map[string]any{
			"name":      GatewayName,
			"namespace": planner.MeshNamespace,
			"labels":    map[string]any{ManagedByLabel: ManagedBy},
		},
		"spec": gatewaySpec(),
	}}
	return u
}

// gatewayMatches compares the Gateway's spec with the expected one, in JSON terms.
func gatewayMatches(u *unstructured.Unstructured) bool {
	have, ok := u.Object["spec"]
	if !ok {
		return false
	}
	return reflect.DeepEqual(jsonNormal(have), jsonNormal(gatewaySpec()))
}

func jsonNormal(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}

// getGateway returns the cross-network Gateway, nil when it (or its CRD) is not there.
func getGateway(ctx context.Context, dyn dynamic.Interface) (*unstructured.Unstructured, error) {
	u, err := dyn.Resource(GatewayResource).Namespace(planner.MeshNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil
	}
	return u, err
}

// EnsureGateway applies the cross-network Gateway (the base chart brings its CRD).
func (d *Driver) EnsureGateway(ctx context.Context, f *spec.Fleet, member string) error {
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	u, err := getGateway(ctx, c.dyn)
	if err != nil {
		return fmt.Errorf("cluster %s: gateway: %w", member, err)
	}
	if u != nil && gatewayMatches(u) {
		return nil
	}
	_, err = c.dyn.Resource(GatewayResource).Namespace(planner.MeshNamespace).Apply(ctx, GatewayName, gatewayObject(), applyOpts())
	if apierrors.IsNotFound(err) {
		// The CRD is missing: the base chart has not run, or the API server has not served it yet.
		return state.Transient(fmt.Errorf("cluster %s: no %s API (installed by the Istio base chart): %w", member, GatewayResource.GroupResource(), err), 5*time.Second)
	}
	if err != nil {
		return fmt.Errorf("cluster %s: gateway %s: %w", member, GatewayName, err)
	}
	return nil
}
