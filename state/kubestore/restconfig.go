package kubestore

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/spec"
)

// RESTConfig is the client configuration for the state cluster: from the kubeconfig at
// k.Kubeconfig (already resolved against the fleet file's directory by the caller) and its
// context k.Context (default: its current context), or in-cluster credentials when no
// kubeconfig is named. The string describes it for people (Config.Where).
func RESTConfig(k *spec.KubernetesStateBackend) (*rest.Config, string, error) {
	if k == nil {
		return nil, "", fmt.Errorf("state.kubernetes: missing")
	}
	if k.Kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("state.kubernetes.kubeconfig: none given and not running in a cluster: %w", err)
		}
		return cfg, "in-cluster", nil
	}
	where := k.Kubeconfig
	if k.Context != "" {
		where += " (context " + k.Context + ")"
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: k.Context})
	cfg, err := loader.ClientConfig()
	if err != nil {
		field := "state.kubernetes.kubeconfig"
		if k.Context != "" {
			field = "state.kubernetes.context"
		}
		return nil, "", fmt.Errorf("%s: %s: %w", field, where, err)
	}
	return cfg, where, nil
}
