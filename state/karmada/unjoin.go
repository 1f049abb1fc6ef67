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
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// clearFinalizers is a merge patch that empties metadata.finalizers.
var clearFinalizers = []byte(`{"metadata":{"finalizers":null}}`)

// unjoin removes a member that left the fleet: it deletes the Cluster and waits until it is
// gone (stripping finalizers when the member is unreachable and the payload says Force), then
// removes the Pull agent's RBAC from Karmada and what the join left in the member (RBAC,
// service accounts, karmada-cluster, and for Pull the agent release).
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
	case !world.OwnedBy(c.Labels, d.cfg.Fleet):
		return terminalf("unjoin %s: karmada cluster %s is not fleet %s's (%s=%q): it is left alone", name, name, d.cfg.Fleet,
			world.FleetLabel, c.Labels[world.FleetLabel])
	default:
		mode = c.Spec.SyncMode
		if err := d.deleteCluster(ctx, kc, name, reachable, u.Force); err != nil {
			return fmt.Errorf("unjoin %s: %w", name, err)
		}
	}
	// A Pull agent's identity is revoked in Karmada whether or not its cluster answers: its
	// certificate then opens nothing, and it is never renewed.
	if err := d.removeAgentRBAC(ctx, kc.kube, name); err != nil {
		return fmt.Errorf("unjoin %s: karmada: %w", name, err)
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
	if u.Forget {
		if err := kube.ForgetExisting(d.cfg.Store, name); err != nil {
			return fmt.Errorf("unjoin %s: forget its kubeconfig: %w", name, err)
		}
	}
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
		// A Pull agent keeps its Work RBAC until it has cleaned up every Work.
		if err := d.releaseWhenWorksGone(ctx, kc, name); err != nil {
			return false, err
		}
		return false, fmt.Errorf("cluster still there, finalizers %v", c.Finalizers)
	}
	err := poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "cluster "+name+" to be deleted", gone)
	if err == nil || memberReachable || !force {
		if err != nil && !memberReachable {
			err = fmt.Errorf("%w (the member is unreachable, so Karmada cannot clean up its Works; a forced unjoin strips their finalizers)", err)
		}
		return err
	}
	d.log.Warn("member unreachable: forcing the unjoin by stripping finalizers; resources may be left in the member", "cluster", name)
	if err := d.forceRemove(ctx, kc, name); err != nil {
		return err
	}
	return poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "cluster "+name+" to be deleted after stripping finalizers", gone)
}

// forceRemove strips the finalizers of the member's Works, of its execution namespace and of
// the Cluster, as `karmadactl unjoin --force` does.
func (d *Driver) forceRemove(ctx context.Context, kc karmadaClients, name string) error {
	ns := ExecutionNamespace(name)
	if err := d.releaseWorkRBAC(ctx, kc.kube, name); err != nil {
		return err
	}
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
	// Only what carries the fleet's mark is deleted, and only the very object that was read
	// with it (a UID precondition): a namespace or binding of the same name that someone else
	// made stays.
	owned := func(m metav1.Object, err error) *metav1.Preconditions {
		if err != nil {
			ignore(err)
			return nil
		}
		if !world.OwnedBy(m.GetLabels(), d.cfg.Fleet) {
			d.log.Info("left in the member: not the fleet's", "cluster", name, "object", m.GetName())
			return nil
		}
		uid := m.GetUID()
		return &metav1.Preconditions{UID: &uid}
	}
	del := func(pre *metav1.Preconditions, delete func(metav1.DeleteOptions) error) {
		if pre != nil {
			ignore(delete(metav1.DeleteOptions{Preconditions: pre}))
		}
	}
	crb, err := kc.RbacV1().ClusterRoleBindings().Get(ctx, MemberRBAC(name), metav1.GetOptions{})
	del(owned(crb, err), func(o metav1.DeleteOptions) error {
		return kc.RbacV1().ClusterRoleBindings().Delete(ctx, MemberRBAC(name), o)
	})
	cr, err := kc.RbacV1().ClusterRoles().Get(ctx, MemberRBAC(name), metav1.GetOptions{})
	del(owned(cr, err), func(o metav1.DeleteOptions) error { return kc.RbacV1().ClusterRoles().Delete(ctx, MemberRBAC(name), o) })
	for _, sa := range []string{MemberSA(name), ImpersonatorSA} {
		got, err := kc.CoreV1().ServiceAccounts(ClusterNamespace).Get(ctx, sa, metav1.GetOptions{})
		del(owned(got, err), func(o metav1.DeleteOptions) error {
			return kc.CoreV1().ServiceAccounts(ClusterNamespace).Delete(ctx, sa, o)
		})
	}
	ns, err := kc.CoreV1().Namespaces().Get(ctx, ClusterNamespace, metav1.GetOptions{})
	nsPre := owned(ns, err)
	del(nsPre, func(o metav1.DeleteOptions) error { return kc.CoreV1().Namespaces().Delete(ctx, ClusterNamespace, o) })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if nsPre == nil {
		return nil
	}
	return poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "namespace "+ClusterNamespace+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().Namespaces().Get(ctx, ClusterNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}
