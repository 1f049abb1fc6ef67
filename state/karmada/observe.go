package karmada

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	clusterv1alpha1 "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// probeTimeout bounds the observation of the Karmada API and of one member.
const probeTimeout = 15 * time.Second

// Observe implements state.Observer. It runs after the cluster observers: it reads the
// members' reachability from the World they filled. It fills
// World.Karmada when "karmada/kubeconfig" is stored (Reachable false when it does not answer),
// and PushJoin for every reachable member cluster.
func (d *Driver) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	access := d.cfg.Access.For(f)
	if !d.cfg.Store.Exists(kube.KarmadaKubeconfig) {
		d.recoverKubeconfig(ctx, f, w)
	}
	if d.cfg.Store.Exists(kube.KarmadaKubeconfig) {
		kc, err := d.karmada()
		if err != nil {
			return fmt.Errorf("observe karmada: %w", err)
		}
		if err := d.observeKarmada(ctx, kc, w); err != nil {
			return state.Transient(fmt.Errorf("observe karmada: %w", err), 0)
		}
	}
	pulls := map[string]bool{}
	for _, m := range f.Members {
		pulls[m.Name] = f.MemberJoinMode(m) == spec.Pull
	}
	var names []string
	for name, c := range w.Clusters {
		if name == f.Manager.Name || c == nil || !c.Reachable {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	type memberSide struct {
		pj    *world.PushJoin
		agent *world.AgentCredential
		// why names the read that failed.
		why string
	}
	state.EachCluster(ctx, names, 0, func(ctx context.Context, name string) (*memberSide, error) {
		mc, err := d.connect(access, name)
		if err != nil {
			return nil, nil // no kubeconfig: the kube observer would not have found it reachable
		}
		out := &memberSide{why: "karmada member side"}
		if out.pj, err = observePushJoin(ctx, mc.kube, name, f.Metadata.Name); err != nil {
			return out, err
		}
		if pulls[name] {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			out.why = "karmada agent credential"
			if out.agent, err = ObserveAgentCredential(ctx, mc.kube); err != nil {
				return out, err
			}
		}
		return out, nil
	}, func(name string, m *memberSide, err error) {
		switch {
		case err != nil:
			why := "karmada member side"
			if m != nil {
				why = m.why
			}
			// m is nil when the read never ran (the pass was cancelled before it started).
			w.MarkUnreadable(name, why+": "+err.Error())
		case m != nil:
			c := w.Clusters[name]
			c.PushJoin = m.pj
			if pulls[name] {
				c.Agent = m.agent
			}
		}
	})
	return ctx.Err()
}

func (d *Driver) observeKarmada(ctx context.Context, kc karmadaClients, w *world.World) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if w.Karmada == nil {
		w.Karmada = &world.Karmada{}
	}
	k := w.Karmada
	k.Reachable, k.APIServiceAvailable, k.Members = false, false, nil
	if _, err := kc.kube.Discovery().RESTClient().Get().AbsPath("/version").DoRaw(ctx); err != nil {
		return nil // not reachable: the planner fetches the kubeconfig again
	}
	k.Reachable = true
	ready, _ := controlPlaneReady(ctx, kc.kube)
	if !ready {
		return nil // Clusters are served by the aggregated API: nothing more to read
	}
	k.APIServiceAvailable = true
	list, err := kc.karmada.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list clusters: %w", err)
	}
	k.Members = map[string]*world.KarmadaMember{}
	for i := range list.Items {
		c := &list.Items[i]
		km := &world.KarmadaMember{Name: c.Name, SyncMode: string(c.Spec.SyncMode), APIEndpoint: c.Spec.APIEndpoint,
			ID: c.Spec.ID, Deleting: c.DeletionTimestamp != nil,
			Fleet: c.Labels[world.FleetLabel], ManagedBy: c.Labels[world.ManagedByLabel] == world.ManagedByValue}
		if cond := meta.FindStatusCondition(c.Status.Conditions, clusterv1alpha1.ClusterConditionReady); cond != nil {
			km.Ready, km.Reason, km.Message = string(cond.Status), cond.Reason, cond.Message
		}
		if ref := c.Spec.SecretRef; ref != nil {
			s, err := kc.kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case err == nil:
				km.SecretHash = CredentialHash(s.Data[clusterv1alpha1.SecretTokenKey], s.Data[clusterv1alpha1.SecretCADataKey])
			case !apierrors.IsNotFound(err):
				return fmt.Errorf("secret %s/%s: %w", ref.Namespace, ref.Name, err)
			}
		}
		if ref := c.Spec.ImpersonatorSecretRef; ref != nil {
			s, err := kc.kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case err == nil:
				km.ImpersonatorHash = CredentialHash(s.Data[clusterv1alpha1.SecretTokenKey], nil)
			case !apierrors.IsNotFound(err):
				return fmt.Errorf("secret %s/%s: %w", ref.Namespace, ref.Name, err)
			}
		}
		if c.Spec.SyncMode == clusterv1alpha1.Pull && world.OwnedBy(c.Labels, d.cfg.Fleet) {
			if km.AgentRBACMissing, err = d.observeAgentRBAC(ctx, kc.kube, c.Name); err != nil {
				return fmt.Errorf("the agent RBAC of %s: %w", c.Name, err)
			}
		}
		k.Members[c.Name] = km
	}
	return nil
}

// observePushJoin reads what a Push join leaves in the member; nil when karmada-cluster is absent.
func observePushJoin(ctx context.Context, kc kubernetes.Interface, name, fleet string) (*world.PushJoin, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ns, err := kc.CoreV1().Namespaces().Get(ctx, ClusterNamespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pj := &world.PushJoin{Namespace: true}
	rbac, err := rbacPresent(ctx, kc, name)
	if err != nil {
		return nil, err
	}
	pj.RBAC = rbac
	pj.TokensReady = true
	secrets, err := kc.CoreV1().Secrets(ClusterNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, sa := range []string{MemberSA(name), ImpersonatorSA} {
		toks := kube.SelectTokens(secrets.Items, sa, sa, fleet)
		cur := toks.Current()
		if cur == nil {
			pj.TokensReady = false
			continue
		}
		if sa == MemberSA(name) {
			pj.CredentialHash = CredentialHash(cur.Data[corev1.ServiceAccountTokenKey], cur.Data[corev1.ServiceAccountRootCAKey])
		} else {
			pj.ImpersonatorHash = CredentialHash(cur.Data[corev1.ServiceAccountTokenKey], nil)
		}
		pj.Tokens = append(pj.Tokens, cur.Name)
		if created := cur.CreationTimestamp.Time; !created.IsZero() && (pj.TokenCreated.IsZero() || created.Before(pj.TokenCreated)) {
			pj.TokenCreated = created.UTC()
		}
		pj.OldTokens = append(pj.OldTokens, toks.Older()...)
	}
	if !pj.TokensReady {
		pj.Tokens, pj.TokenCreated = nil, time.Time{}
	}
	sort.Strings(pj.Tokens)
	sort.Strings(pj.OldTokens)
	return pj, nil
}

func rbacPresent(ctx context.Context, kc kubernetes.Interface, name string) (bool, error) {
	for _, sa := range []string{MemberSA(name), ImpersonatorSA} {
		_, err := kc.CoreV1().ServiceAccounts(ClusterNamespace).Get(ctx, sa, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	cr, err := kc.RbacV1().ClusterRoles().Get(ctx, MemberRBAC(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !rulesEqual(cr.Rules, memberRules) {
		return false, nil
	}
	crb, err := kc.RbacV1().ClusterRoleBindings().Get(ctx, MemberRBAC(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: MemberSA(name), Namespace: ClusterNamespace}
	return crb.RoleRef.Kind == "ClusterRole" && crb.RoleRef.Name == MemberRBAC(name) &&
		len(crb.Subjects) == 1 && crb.Subjects[0] == want, nil
}

// recoverKubeconfig derives the Karmada kubeconfig a state without one lacks (a fresh
// runner's empty directory) from what the manager holds, exactly as the karmada-kubeconfig
// step would, so that Karmada's members are read in this very pass rather than planned as
// absent. A manager without Karmada (a cold start) leaves the store as it is.
func (d *Driver) recoverKubeconfig(ctx context.Context, f *spec.Fleet, w *world.World) {
	mgr := w.Clusters[f.Manager.Name]
	if mgr == nil || !mgr.Reachable {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ip := ""
	if len(mgr.NodeIPs) > 0 {
		ip = mgr.NodeIPs[0]
	} else if mc, err := d.member(f.Manager.Name); err == nil {
		if nodes, err := mc.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
			if ips := nodeIPs(nodes.Items); len(ips) > 0 {
				ip = ips[0]
			}
		}
	}
	if ip == "" {
		return
	}
	k := f.Manager.Karmada
	server := "https://" + net.JoinHostPort(ip, strconv.Itoa(k.APINodePort))
	data, err := d.externalKubeconfig(ctx, f.Manager.Name, k.Namespace, k.Release, server)
	if err != nil {
		d.log.Debug("no Karmada kubeconfig to recover from the manager", "err", err)
		return
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return
	}
	cfg.WrapTransport = d.wrap
	if err := answers(ctx, cfg); err != nil {
		d.log.Debug("the recovered Karmada kubeconfig does not answer", "server", cfg.Host, "err", err)
		return
	}
	if err := d.cfg.Store.WriteFile(kube.KarmadaKubeconfig, data); err != nil {
		d.log.Warn("storing the recovered Karmada kubeconfig", "err", err)
		return
	}
	d.log.Info("Karmada kubeconfig recovered from the manager into the state", "server", cfg.Host)
}
