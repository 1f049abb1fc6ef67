package karmada

import (
	"context"
	"errors"
	"fmt"

	clusterv1alpha1 "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/plan"
)

// clearFinalizers is a merge patch that empties metadata.finalizers.
var clearFinalizers = []byte(`{"metadata":{"finalizers":null}}`)

// unjoin removes a member that left the fleet: it deletes the Cluster and waits until it is
// gone (stripping finalizers when the member is unreachable and the payload says Force), then
// removes what the join left in the member (RBAC, service accounts, karmada-cluster, and for
// Pull the agent release).
func (d *Driver) unjoin(ctx context.Context, name string, u plan.Unjoin) error {
	kc, err := d.karmada()
	if err != nil {
		return fmt.Errorf("unjoin %s: %w", name, err)
	}
	mc, memberErr := d.member(name)
	reachable := memberErr == nil
	if reachable {
		if _, err := kubeSystemUID(ctx, mc.kube); err != nil {
			reachable, memberErr = false, err
		}
	}
	var mode clusterv1alpha1.ClusterSyncMode
	c, err := kc.karmada.ClusterV1alpha1().Clusters().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("unjoin %s: %w", name, err)
	default:
		mode = c.Spec.SyncMode
		if err := d.deleteCluster(ctx, kc, name, reachable, u.Force); err != nil {
			return fmt.Errorf("unjoin %s: %w", name, err)
		}
	}
	if !reachable {
		d.log.Warn("member unreachable: its karmada-cluster namespace and RBAC are left in place", "cluster", name, "error", memberErr)
		return nil
	}
	if mode == clusterv1alpha1.Pull || (mode == "" && agentInstalled(ctx, mc.kube)) {
		hc, err := d.cfg.Helm(mc.rest)
		if err != nil {
			return fmt.Errorf("unjoin %s: %w", name, err)
		}
		if err := hc.Uninstall(ctx, AgentRelease, AgentNamespace, d.cfg.JoinTimeout); err != nil {
			return fmt.Errorf("unjoin %s: uninstall %s: %w", name, releaseKey(AgentNamespace, AgentRelease), err)
		}
	}
	if err := d.removeMemberSide(ctx, mc.kube, name); err != nil {
		return fmt.Errorf("unjoin %s: member: %w", name, err)
	}
	d.log.Info("member unjoined", "cluster", name)
	return nil
}

func agentInstalled(ctx context.Context, kc kubernetes.Interface) bool {
	_, err := kc.AppsV1().Deployments(AgentNamespace).Get(ctx, AgentRelease, metav1.GetOptions{})
	return err == nil
}

func (d *Driver) deleteCluster(ctx context.Context, kc karmadaClients, name string, memberReachable, force bool) error {
	clusters := kc.karmada.ClusterV1alpha1().Clusters()
	if err := clusters.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete cluster: %w", err)
	}
	gone := func(ctx context.Context) (bool, error) {
		c, err := clusters.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, fmt.Errorf("cluster still there, finalizers %v", c.Finalizers)
	}
	err := poll(ctx, d.cfg.JoinTimeout, "cluster "+name+" to be deleted", gone)
	if err == nil || memberReachable || !force {
		if err != nil && !memberReachable {
			err = fmt.Errorf("%w (the member is unreachable, so Karmada cannot clean up its Works; a forced unjoin strips their finalizers)", err)
		}
		return err
	}
	d.log.Warn("member unreachable: forcing the unjoin by stripping finalizers; resources may be left in the member", "cluster", name)
	if err := forceRemove(ctx, kc, name); err != nil {
		return err
	}
	return poll(ctx, d.cfg.JoinTimeout, "cluster "+name+" to be deleted after stripping finalizers", gone)
}

// forceRemove strips the finalizers of the member's Works, of its execution namespace and of
// the Cluster, as `karmadactl unjoin --force` does.
func forceRemove(ctx context.Context, kc karmadaClients, name string) error {
	ns := ExecutionNamespace(name)
	works, err := kc.karmada.WorkV1alpha1().Works(ns).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("list works in %s: %w", ns, err)
	}
	if err == nil {
		for _, w := range works.Items {
			if len(w.Finalizers) == 0 {
				continue
			}
			_, err := kc.karmada.WorkV1alpha1().Works(ns).Patch(ctx, w.Name, types.MergePatchType, clearFinalizers, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("strip finalizers of work %s/%s: %w", ns, w.Name, err)
			}
		}
	}
	_, err = kc.kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, clearFinalizers, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("strip finalizers of namespace %s: %w", ns, err)
	}
	_, err = kc.karmada.ClusterV1alpha1().Clusters().Patch(ctx, name, types.MergePatchType, clearFinalizers, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("strip finalizers of cluster %s: %w", name, err)
	}
	return nil
}

// removeMemberSide deletes the RBAC, service accounts and namespace of the join and waits
// until the namespace is gone.
func (d *Driver) removeMemberSide(ctx context.Context, kc kubernetes.Interface, name string) error {
	var errs []error
	ignore := func(err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	ignore(kc.RbacV1().ClusterRoleBindings().Delete(ctx, MemberRBAC(name), metav1.DeleteOptions{}))
	ignore(kc.RbacV1().ClusterRoles().Delete(ctx, MemberRBAC(name), metav1.DeleteOptions{}))
	for _, sa := range []string{MemberSA(name), ImpersonatorSA} {
		ignore(kc.CoreV1().ServiceAccounts(ClusterNamespace).Delete(ctx, sa, metav1.DeleteOptions{}))
	}
	ignore(kc.CoreV1().Namespaces().Delete(ctx, ClusterNamespace, metav1.DeleteOptions{}))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return poll(ctx, d.cfg.JoinTimeout, "namespace "+ClusterNamespace+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().Namespaces().Get(ctx, ClusterNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}
