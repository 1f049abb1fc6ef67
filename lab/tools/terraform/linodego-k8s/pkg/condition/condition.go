// Package condition is the lab's own ClusterHasReadyNode, the one function of
// github.com/linode/linodego/k8s that Linode's Terraform provider calls (see ../../go.mod).
package condition

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ClusterHasReadyNode is a linodego.ClusterConditionFunc: true once the cluster that the
// LKE kubeconfig points at lists a Node whose Ready condition is True.
func ClusterHasReadyNode(ctx context.Context, opts linodego.ClusterConditionOptions) (bool, error) {
	if opts.LKEClusterKubeconfig == nil {
		return false, fmt.Errorf("no kubeconfig")
	}
	raw, err := base64.StdEncoding.DecodeString(opts.LKEClusterKubeconfig.KubeConfig)
	if err != nil {
		return false, fmt.Errorf("decode kubeconfig: %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return false, fmt.Errorf("parse kubeconfig: %w", err)
	}
	if opts.TransportWrapper != nil {
		cfg.Wrap(opts.TransportWrapper)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
	}
	return false, nil
}
