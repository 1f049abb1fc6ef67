package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// nodeCapacity is what every lab node reports, so schedulers and Karmada's resource summary see
// room for work.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("4"),
	corev1.ResourceMemory: resource.MustParse("8Gi"),
	corev1.ResourcePods:   resource.MustParse("110"),
}

// createNodes creates each Node and sets its status: Ready, with its addresses and capacity.
func createNodes(ctx context.Context, client kubernetes.Interface, nodes []NodeSpec) error {
	for _, n := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			corev1.LabelHostname: n.Name,
			corev1.LabelOSStable: "linux",
		}}}
		for k, v := range n.Labels {
			node.Labels[k] = v
		}
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		internal := n.InternalIP
		if internal == "" {
			internal = n.ExternalIP
		}
		// The node lifecycle controller may touch a new node at once (taints), hence the retry.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			current, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			now := metav1.Now()
			current.Status.Capacity = nodeCapacity
			current.Status.Allocatable = nodeCapacity
			current.Status.Addresses = []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: internal},
				{Type: corev1.NodeExternalIP, Address: n.ExternalIP},
				{Type: corev1.NodeHostName, Address: n.Name},
			}
			current.Status.Conditions = []corev1.NodeCondition{{
				Type:               corev1.NodeReady,
				Status:             corev1.ConditionTrue,
				Reason:             "LabHeartbeat",
				Message:            "no kubelet runs in the lab; the lab keeps this node Ready",
				LastHeartbeatTime:  now,
				LastTransitionTime: now,
			}}
			_, err = client.CoreV1().Nodes().UpdateStatus(ctx, current, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("node %s status: %w", n.Name, err)
		}
	}
	return nil
}

// heartbeat refreshes each node's Ready condition every interval until ctx ends, as a kubelet
// would, so the node lifecycle controller never marks them NotReady. A failed beat is retried at
// the next tick.
func heartbeat(ctx context.Context, client kubernetes.Interface, nodes []NodeSpec, interval time.Duration) {
	if len(nodes) == 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for _, n := range nodes {
			_ = beat(ctx, client, n.Name)
		}
	}
}

func beat(ctx context.Context, client kubernetes.Interface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		found := false
		for i := range node.Status.Conditions {
			cond := &node.Status.Conditions[i]
			if cond.Type != corev1.NodeReady {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionTrue {
				cond.Status = corev1.ConditionTrue
				cond.LastTransitionTime = now
			}
			cond.Reason = "LabHeartbeat"
			cond.LastHeartbeatTime = now
		}
		if !found {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LabHeartbeat",
				LastHeartbeatTime: now, LastTransitionTime: now,
			})
		}
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}
