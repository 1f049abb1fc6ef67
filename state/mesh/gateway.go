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

	"github.com/reconcile-dev/reconcile/plan"
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

func gatewayObject(namespace, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GatewayResource.GroupVersion().String(),
		"kind":       "Gateway",
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespace,
			"labels":    toAnyMap(labels),
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

// getGateway returns the cross-network Gateway namespace/name, nil when it (or its CRD) is not there.
func getGateway(ctx context.Context, dyn dynamic.Interface, namespace, name string) (*unstructured.Unstructured, error) {
	u, err := dyn.Resource(GatewayResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil
	}
	return u, err
}

// gateway applies the cross-network Gateway of the payload (the base chart brings its CRD);
// it writes nothing when the Gateway is there with the expected spec.
func (d *Driver) gateway(ctx context.Context, s plan.Step) error {
	p := s.Payload.Gateway
	if p == nil {
		return noPayload(s)
	}
	ns, name := namespaceOr(p.Namespace), p.Name
	if name == "" {
		name = GatewayName
	}
	c, err := d.connect(s.Cluster)
	if err != nil {
		return err
	}
	u, err := getGateway(ctx, c.dyn, ns, name)
	if err != nil {
		return fmt.Errorf("cluster %s: gateway: %w", s.Cluster, err)
	}
	if u != nil && gatewayMatches(u) {
		return nil
	}
	_, err = c.dyn.Resource(GatewayResource).Namespace(ns).Apply(ctx, name, gatewayObject(ns, name, d.labels(nil)), applyOpts())
	if apierrors.IsNotFound(err) {
		// The CRD is missing: the base chart has not run, or the API server has not served it yet.
		return state.Transient(fmt.Errorf("cluster %s: no %s API (installed by the Istio base chart): %w", s.Cluster, GatewayResource.GroupResource(), err), 5*time.Second)
	}
	if err != nil {
		return fmt.Errorf("cluster %s: gateway %s: %w", s.Cluster, name, err)
	}
	return nil
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
