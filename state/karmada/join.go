package karmada

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clusterv1alpha1 "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	clusterac "github.com/karmada-io/karmada/pkg/generated/applyconfigurations/cluster/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

var applyOpts = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// join makes cluster a Karmada member as the payload says: Push writes the member-side RBAC
// and the credentials and Cluster into Karmada, Pull installs karmada-agent in the member.
// Objects that already match are not written.
func (d *Driver) join(ctx context.Context, name string, j plan.Join) error {
	if j.Replaces != "" {
		if err := d.removeStale(ctx, name, j.Replaces); err != nil {
			return fmt.Errorf("join %s: %w", name, err)
		}
	}
	switch j.Mode {
	case spec.Push:
		endpoint, err := known("join "+name+": apiEndpoint", j.APIEndpoint)
		if err != nil {
			return err
		}
		mc, err := d.member(name)
		if err != nil {
			return fmt.Errorf("join %s: %w", name, err)
		}
		kc, err := d.karmada()
		if err != nil {
			return fmt.Errorf("join %s: %w", name, err)
		}
		if err := d.joinPush(ctx, name, endpoint, j, mc, kc); err != nil {
			return fmt.Errorf("join %s (Push): %w", name, err)
		}
		return nil
	case spec.Pull:
		if err := d.joinPull(ctx, name, j); err != nil {
			return fmt.Errorf("join %s (Pull): %w", name, err)
		}
		return nil
	}
	return terminalf("join %s: unknown join mode %q", name, j.Mode)
}

// joinPush joins the member as `karmadactl join` does; j.RemoveAgent first uninstalls the
// karmada-agent an earlier Pull join left. Karmada's secrets are written from the newest
// token of each service account (a new generation first for those j.RotateTokens names), and
// only then are the token Secrets j.RetireTokens names deleted.
func (d *Driver) joinPush(ctx context.Context, name, endpoint string, j plan.Join, mc clients, kc karmadaClients) error {
	removeAgent, adopt := j.RemoveAgent, j.Adopt
	id, err := kubeSystemUID(ctx, mc.kube)
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if err := checkRegistration(ctx, kc, name, id); err != nil {
		return err
	}
	if removeAgent {
		// The member was joined in Pull mode: its agent goes before Karmada reaches it directly.
		hc, err := d.cfg.Helm(mc.rest)
		if err != nil {
			return err
		}
		if err := hc.Uninstall(ctx, AgentRelease, AgentNamespace, d.cfg.JoinTimeout); err != nil {
			return fmt.Errorf("member: uninstall the agent of the Pull join: %w", err)
		}
		d.log.Info("karmada agent uninstalled: the member switches to Push", "cluster", name)
		if err := d.removeAgentRBAC(ctx, kc.kube, name); err != nil {
			return fmt.Errorf("karmada: %w", err)
		}
	}
	member, impersonator, err := d.memberSide(ctx, mc.kube, name, j.RotateTokens)
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if err := d.ensureNamespace(ctx, kc.kube, ClusterNamespace, nil); err != nil {
		return fmt.Errorf("karmada: %w", err)
	}
	cluster, err := d.ensureCluster(ctx, kc, name, desiredClusterSpec(name, endpoint, id, mc.rest.Insecure), adopt)
	if err != nil {
		return fmt.Errorf("karmada: %w", err)
	}
	owner := metav1ac.OwnerReference().WithAPIVersion(clusterv1alpha1.SchemeGroupVersion.String()).
		WithKind("Cluster").WithName(cluster.Name).WithUID(cluster.UID).WithController(true)
	err = d.ensureSecret(ctx, kc.kube, ClusterNamespace, name, map[string][]byte{
		clusterv1alpha1.SecretTokenKey:  member.Data[corev1.ServiceAccountTokenKey],
		clusterv1alpha1.SecretCADataKey: member.Data[corev1.ServiceAccountRootCAKey],
	}, owner)
	if err != nil {
		return fmt.Errorf("karmada: %w", err)
	}
	err = d.ensureSecret(ctx, kc.kube, ClusterNamespace, ImpersonatorSecret(name), map[string][]byte{
		clusterv1alpha1.SecretTokenKey: impersonator.Data[corev1.ServiceAccountTokenKey],
	}, owner)
	if err != nil {
		return fmt.Errorf("karmada: %w", err)
	}
	// Both of Karmada's secrets hold the newest tokens now: the older ones can go.
	if err := d.retireTokens(ctx, mc.kube, name, j.RetireTokens, member.Name, impersonator.Name); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

// retireTokens deletes the token Secrets named, each only when it is one of the fleet's
// tokens of the member's service accounts and not one Karmada was just given (keep), and
// waits until they are gone: their tokens stop working then.
func (d *Driver) retireTokens(ctx context.Context, kc kubernetes.Interface, name string, retire []string, keep ...string) error {
	if len(retire) == 0 {
		return nil
	}
	secrets := kc.CoreV1().Secrets(ClusterNamespace)
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list secrets in %s: %w", ClusterNamespace, err)
	}
	ours := map[string]corev1.Secret{}
	for _, sa := range []string{MemberSA(name), ImpersonatorSA} {
		for _, s := range kube.SelectTokens(list.Items, sa, sa, d.cfg.Fleet).Secrets {
			ours[s.Name] = s
		}
	}
	for _, r := range retire {
		s, ok := ours[r]
		switch {
		case slices.Contains(keep, r):
			return terminalf("token secret %s/%s is the one Karmada now holds: it is not retired", ClusterNamespace, r)
		case !ok:
			continue // gone already, or not the fleet's token: left alone
		}
		uid := s.UID
		err := secrets.Delete(ctx, r, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete token secret %s/%s: %w", ClusterNamespace, r, err)
		}
		err = poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "token secret "+ClusterNamespace+"/"+r+" to be deleted", func(ctx context.Context) (bool, error) {
			got, err := secrets.Get(ctx, r, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && got.UID != uid) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			return err
		}
		d.log.Info("old token retired", "cluster", name, "secret", ClusterNamespace+"/"+r)
	}
	return nil
}

// checkRegistration refuses to take over a Cluster name that another cluster (another
// kube-system UID) holds, or to register a cluster that is a member under another name.
func checkRegistration(ctx context.Context, kc karmadaClients, name, id string) error {
	list, err := kc.karmada.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("karmada: list clusters: %w", err)
	}
	for _, c := range list.Items {
		switch {
		case c.Name == name && c.Spec.ID != "" && c.Spec.ID != id:
			return fmt.Errorf("karmada already has a cluster %s with id %s, but this member's kube-system UID is %s: "+
				"another cluster holds the name (unjoin it first)", name, c.Spec.ID, id)
		case c.Name != name && c.Spec.ID == id:
			return fmt.Errorf("this member (kube-system UID %s) is already registered in Karmada as %s", id, c.Name)
		}
	}
	return nil
}

// memberSide writes the namespace, service accounts, RBAC and token secrets into the member
// and waits until the newest token secret of both accounts is filled; it returns those. A
// service account whose newest token secret rotate names gets a new generation first.
func (d *Driver) memberSide(ctx context.Context, kc kubernetes.Interface, name string, rotate []string) (member, impersonator *corev1.Secret, err error) {
	if err := d.ensureNamespace(ctx, kc, ClusterNamespace, map[string]string{systemLabel: "true"}); err != nil {
		return nil, nil, err
	}
	for _, sa := range []string{ImpersonatorSA, MemberSA(name)} {
		if err := d.ensureServiceAccount(ctx, kc, ClusterNamespace, sa); err != nil {
			return nil, nil, err
		}
	}
	if err := d.ensureClusterRole(ctx, kc, MemberRBAC(name)); err != nil {
		return nil, nil, err
	}
	if err := d.ensureClusterRoleBinding(ctx, kc, MemberRBAC(name), MemberSA(name)); err != nil {
		return nil, nil, err
	}
	for _, sa := range []string{ImpersonatorSA, MemberSA(name)} {
		if err := d.ensureToken(ctx, kc, sa, rotate); err != nil {
			return nil, nil, err
		}
	}
	if member, err = d.waitToken(ctx, kc, MemberSA(name)); err != nil {
		return nil, nil, err
	}
	if impersonator, err = d.waitToken(ctx, kc, ImpersonatorSA); err != nil {
		return nil, nil, err
	}
	return member, impersonator, nil
}

// ensureToken makes sure sa has a token secret of the fleet's: the first one is named like
// the account; when rotate names the newest one, the next generation is made (a retried
// rotation finds its new generation newest and makes no other).
func (d *Driver) ensureToken(ctx context.Context, kc kubernetes.Interface, sa string, rotate []string) error {
	toks, err := kube.ListTokens(ctx, kc, ClusterNamespace, sa, sa, d.cfg.Fleet)
	if err != nil {
		return err
	}
	newest := toks.Newest()
	switch {
	case newest == nil:
		return d.ensureTokenSecret(ctx, kc, ClusterNamespace, sa, sa)
	case slices.Contains(rotate, newest.Name):
		next := toks.Next()
		if err := d.ensureTokenSecret(ctx, kc, ClusterNamespace, next, sa); err != nil {
			return err
		}
		d.log.Info("new token generation", "secret", ClusterNamespace+"/"+next, "replaces", newest.Name)
	}
	return nil
}

// waitToken waits until the newest token secret of the fleet's for sa is filled.
func (d *Driver) waitToken(ctx context.Context, kc kubernetes.Interface, sa string) (*corev1.Secret, error) {
	var s *corev1.Secret
	err := poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "token and ca.crt in the newest token secret of "+ClusterNamespace+"/"+sa, func(ctx context.Context) (bool, error) {
		toks, err := kube.ListTokens(ctx, kc, ClusterNamespace, sa, sa, d.cfg.Fleet)
		if err != nil {
			return false, err
		}
		s = toks.Newest()
		return s != nil && kube.TokenFilled(s), nil
	})
	return s, err
}

// ensureNamespace creates the namespace, or adds the labels it lacks.
func (d *Driver) ensureNamespace(ctx context.Context, kc kubernetes.Interface, name string, labels map[string]string) error {
	want := d.labels(labels)
	ns, err := kc.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && ns.DeletionTimestamp != nil:
		return fmt.Errorf("namespace %s is being deleted", name)
	case err == nil && hasAll(ns.Labels, want):
		return nil
	case err == nil && ns.Labels[world.FleetLabel] != "" && ns.Labels[world.FleetLabel] != d.cfg.Fleet:
		return terminalf("namespace %s is fleet %s's, not %s's", name, ns.Labels[world.FleetLabel], d.cfg.Fleet)
	case err == nil:
		// An existing namespace of the join's name (made by the agent, or by a join by hand
		// of this very cluster): the fleet takes it, adding only the labels.
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	_, err = kc.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(name).WithLabels(want), applyOpts)
	if err != nil {
		return fmt.Errorf("apply namespace %s: %w", name, err)
	}
	return nil
}

func (d *Driver) ensureServiceAccount(ctx context.Context, kc kubernetes.Interface, ns, name string) error {
	sa, err := kc.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil && hasAll(sa.Labels, d.labels(nil)) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("service account %s/%s: %w", ns, name, err)
	}
	_, err = kc.CoreV1().ServiceAccounts(ns).Apply(ctx, corev1ac.ServiceAccount(name, ns).WithLabels(d.labels(nil)), applyOpts)
	if err != nil {
		return fmt.Errorf("apply service account %s/%s: %w", ns, name, err)
	}
	return nil
}

// memberRules are the rights Karmada's controller-manager gets in a member, as karmadactl grants.
var memberRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
	{NonResourceURLs: []string{"*"}, Verbs: []string{"get"}},
}

func (d *Driver) ensureClusterRole(ctx context.Context, kc kubernetes.Interface, name string) error {
	cr, err := kc.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
	if err == nil && hasAll(cr.Labels, d.labels(nil)) && rulesEqual(cr.Rules, memberRules) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster role %s: %w", name, err)
	}
	ac := rbacv1ac.ClusterRole(name).WithLabels(d.labels(nil))
	for _, r := range memberRules {
		ac.WithRules(rbacv1ac.PolicyRule().WithAPIGroups(r.APIGroups...).WithResources(r.Resources...).
			WithVerbs(r.Verbs...).WithNonResourceURLs(r.NonResourceURLs...))
	}
	if _, err := kc.RbacV1().ClusterRoles().Apply(ctx, ac, applyOpts); err != nil {
		return fmt.Errorf("apply cluster role %s: %w", name, err)
	}
	return nil
}

func rulesEqual(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.NonResourceURLs, y.NonResourceURLs) &&
			slices.Equal(x.ResourceNames, y.ResourceNames)
	})
}

func (d *Driver) ensureClusterRoleBinding(ctx context.Context, kc kubernetes.Interface, name, sa string) error {
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ClusterNamespace}
	crb, err := kc.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	if err == nil && hasAll(crb.Labels, d.labels(nil)) && crb.RoleRef.Kind == "ClusterRole" && crb.RoleRef.Name == name &&
		len(crb.Subjects) == 1 && crb.Subjects[0] == want {
		return nil
	}
	switch {
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("cluster role binding %s: %w", name, err)
	case err == nil && (crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != name):
		// roleRef cannot change: replace the binding.
		if err := kc.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace cluster role binding %s: %w", name, err)
		}
	}
	ac := rbacv1ac.ClusterRoleBinding(name).WithLabels(d.labels(nil)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(name)).
		WithSubjects(rbacv1ac.Subject().WithKind(want.Kind).WithName(want.Name).WithNamespace(want.Namespace))
	if _, err := kc.RbacV1().ClusterRoleBindings().Apply(ctx, ac, applyOpts); err != nil {
		return fmt.Errorf("apply cluster role binding %s: %w", name, err)
	}
	return nil
}

// ensureTokenSecret makes the long-lived token Secret name of a service account, which the
// token controller fills (Kubernetes ≥ 1.24 creates none by itself).
func (d *Driver) ensureTokenSecret(ctx context.Context, kc kubernetes.Interface, ns, name, sa string) error {
	s, err := kc.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && s.Type != corev1.SecretTypeServiceAccountToken:
		return fmt.Errorf("secret %s/%s exists with type %s, not %s", ns, name, s.Type, corev1.SecretTypeServiceAccountToken)
	case err == nil && s.Annotations[corev1.ServiceAccountNameKey] == sa && hasAll(s.Labels, d.labels(nil)):
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	ac := corev1ac.Secret(name, ns).WithType(corev1.SecretTypeServiceAccountToken).WithLabels(d.labels(nil)).
		WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: sa})
	if _, err := kc.CoreV1().Secrets(ns).Apply(ctx, ac, applyOpts); err != nil {
		return fmt.Errorf("apply secret %s/%s: %w", ns, name, err)
	}
	return nil
}

func desiredClusterSpec(name, endpoint, id string, insecure bool) clusterv1alpha1.ClusterSpec {
	return clusterv1alpha1.ClusterSpec{
		ID:                          id,
		SyncMode:                    clusterv1alpha1.Push,
		APIEndpoint:                 endpoint,
		SecretRef:                   &clusterv1alpha1.LocalSecretReference{Namespace: ClusterNamespace, Name: name},
		ImpersonatorSecretRef:       &clusterv1alpha1.LocalSecretReference{Namespace: ClusterNamespace, Name: ImpersonatorSecret(name)},
		InsecureSkipTLSVerification: insecure,
	}
}

func (d *Driver) clusterMatches(c *clusterv1alpha1.Cluster, want clusterv1alpha1.ClusterSpec) bool {
	s := c.Spec
	return hasAll(c.Labels, d.labels(nil)) && c.Annotations[world.IdentityAnnotation] == want.ID && s.ID == want.ID && s.SyncMode == want.SyncMode &&
		s.APIEndpoint == want.APIEndpoint && s.InsecureSkipTLSVerification == want.InsecureSkipTLSVerification &&
		s.SecretRef != nil && *s.SecretRef == *want.SecretRef &&
		s.ImpersonatorSecretRef != nil && *s.ImpersonatorSecretRef == *want.ImpersonatorSecretRef
}

func (d *Driver) ensureCluster(ctx context.Context, kc karmadaClients, name string, want clusterv1alpha1.ClusterSpec, adopt bool) (*clusterv1alpha1.Cluster, error) {
	c, err := kc.karmada.ClusterV1alpha1().Clusters().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && c.DeletionTimestamp != nil:
		return nil, fmt.Errorf("cluster %s is being deleted; join again once it is gone", name)
	case err == nil && !world.OwnedBy(c.Labels, d.cfg.Fleet) && !(adopt && c.Spec.ID == want.ID):
		return nil, terminalf("karmada cluster %s is not fleet %s's (labels %s=%q): it was joined by someone else and is left alone",
			name, d.cfg.Fleet, world.FleetLabel, c.Labels[world.FleetLabel])
	case err == nil && d.clusterMatches(c, want):
		return c, nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	ac := clusterac.Cluster(name).WithLabels(d.labels(nil)).WithAnnotations(map[string]string{world.IdentityAnnotation: want.ID}).WithSpec(clusterac.ClusterSpec().
		WithID(want.ID).WithSyncMode(want.SyncMode).WithAPIEndpoint(want.APIEndpoint).
		WithInsecureSkipTLSVerification(want.InsecureSkipTLSVerification).
		WithSecretRef(clusterac.LocalSecretReference().WithNamespace(want.SecretRef.Namespace).WithName(want.SecretRef.Name)).
		WithImpersonatorSecretRef(clusterac.LocalSecretReference().WithNamespace(want.ImpersonatorSecretRef.Namespace).
			WithName(want.ImpersonatorSecretRef.Name)))
	out, err := kc.karmada.ClusterV1alpha1().Clusters().Apply(ctx, ac, applyOpts)
	if err != nil {
		return nil, fmt.Errorf("apply cluster %s: %w", name, err)
	}
	d.log.Info("karmada cluster applied", "cluster", name, "syncMode", string(want.SyncMode), "apiEndpoint", want.APIEndpoint)
	return out, nil
}

// ensureSecret writes an Opaque secret owned by the Cluster; data is compared, never logged.
func (d *Driver) ensureSecret(ctx context.Context, kc kubernetes.Interface, ns, name string, data map[string][]byte,
	owner *metav1ac.OwnerReferenceApplyConfiguration) error {
	s, err := kc.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil && hasAll(s.Labels, d.labels(nil)) && dataEqual(s.Data, data) && ownedBy(s.OwnerReferences, *owner.UID) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	ac := corev1ac.Secret(name, ns).WithType(corev1.SecretTypeOpaque).WithLabels(d.labels(nil)).
		WithData(data).WithOwnerReferences(owner)
	if _, err := kc.CoreV1().Secrets(ns).Apply(ctx, ac, applyOpts); err != nil {
		return fmt.Errorf("apply secret %s/%s: %w", ns, name, err)
	}
	return nil
}

func dataEqual(have, want map[string][]byte) bool {
	return maps.EqualFunc(have, want, bytes.Equal)
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// joinPull installs karmada-agent in the member; the agent registers the Cluster itself. The
// agent gets its own identity (see agent.go): its RBAC in Karmada first, then its certificate
// (kept while reusable, else issued anew), put with Karmada's CA (read from the manager's
// certificate secret) into a copy of the payload's values (agent.kubeconfig.caCrt, crt and
// key, and a pod annotation that restarts the agent when the certificate changes); the step
// keeps none of them.
func (d *Driver) joinPull(ctx context.Context, name string, j plan.Join) error {
	if j.Agent == nil {
		return terminalf("the payload carries no agent release")
	}
	key := releaseKey(j.Agent.Namespace, j.Agent.Name)
	if err := checkRelease("release "+key, j.Agent); err != nil {
		return err
	}
	ns, secret, ok := strings.Cut(j.CertSecret, "/")
	if j.Manager == "" || !ok || ns == "" || secret == "" {
		return terminalf("the payload names no manager or no certificate secret namespace/name (%q on %q)", j.CertSecret, j.Manager)
	}
	mc, err := d.member(name)
	if err != nil {
		return err
	}
	mgr, err := d.member(j.Manager)
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	certs, err := mgr.kube.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("manager %s: read the Karmada CA from %s: %w", j.Manager, j.CertSecret, err)
	}
	ca := certs.Data["server-ca.crt"]
	if len(ca) == 0 {
		return fmt.Errorf("manager %s: secret %s lacks server-ca.crt", j.Manager, j.CertSecret)
	}
	kc, err := d.karmada()
	if err != nil {
		return err
	}
	if err := d.ensureAgentRBAC(ctx, kc.kube, name); err != nil {
		return fmt.Errorf("karmada: the agent's RBAC: %w", err)
	}
	var lifetime time.Duration
	if j.AgentCertLifetime != nil {
		lifetime = j.AgentCertLifetime.Duration
	}
	if lifetime <= 0 {
		lifetime = spec.Credentials{TokenRotation: spec.Duration{Duration: spec.DefaultTokenRotation}}.AgentCertificateLifetime()
	}
	crt, keyPEM, err := d.agentCertificate(ctx, kc, mc, name, ca, lifetime, j.RenewAgentCert)
	if err != nil {
		return err
	}
	values, err := withAgentCredentials(j.Agent.Values, string(ca), string(crt), string(keyPEM))
	if err != nil {
		return terminalf("release %s: %w", key, err)
	}
	if err := d.ensureRelease(ctx, mc, *j.Agent, values); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return d.markPulled(ctx, mc, name, j.Adopt)
}

// markPulled puts the fleet's mark and the member's identity on the Cluster the agent
// registered (karmada-agent creates it, so the join cannot write it with the mark), once it
// is there. A Cluster of that name that is another's is refused, as for Push.
func (d *Driver) markPulled(ctx context.Context, mc clients, name string, adopt bool) error {
	id, err := kubeSystemUID(ctx, mc.kube)
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	kc, err := d.karmada()
	if err != nil {
		return err
	}
	var c *clusterv1alpha1.Cluster
	err = poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "the agent to register cluster "+name, func(ctx context.Context) (bool, error) {
		got, err := kc.karmada.ClusterV1alpha1().Clusters().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		c = got
		return true, nil
	})
	if err != nil {
		return err
	}
	switch {
	case c.Spec.ID != "" && c.Spec.ID != id:
		return terminalf("karmada cluster %s has id %s, but this member's kube-system UID is %s: another cluster holds the name", name, c.Spec.ID, id)
	case hasAll(c.Labels, d.labels(nil)) && c.Annotations[world.IdentityAnnotation] == id:
		return nil
	case !world.OwnedBy(c.Labels, d.cfg.Fleet) && !adopt && c.Labels[world.FleetLabel] != "":
		return terminalf("karmada cluster %s is another fleet's (%s=%q)", name, world.FleetLabel, c.Labels[world.FleetLabel])
	}
	ac := clusterac.Cluster(name).WithLabels(d.labels(nil)).WithAnnotations(map[string]string{world.IdentityAnnotation: id})
	if _, err := kc.karmada.ClusterV1alpha1().Clusters().Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager + "-mark", Force: true}); err != nil {
		return fmt.Errorf("mark cluster %s as the fleet's: %w", name, err)
	}
	return nil
}

// withAgentCredentials is a deep copy of values with the agent's kubeconfig credentials at
// agent.kubeconfig.caCrt, crt and key; values itself is left as it is.
func withAgentCredentials(values map[string]any, ca, crt, key string) (map[string]any, error) {
	out := plan.DeepCopyValues(values)
	if out == nil {
		out = map[string]any{}
	}
	cur := out
	for _, k := range []string{"agent", "kubeconfig"} {
		next, ok := cur[k]
		if !ok || next == nil {
			next = map[string]any{}
			cur[k] = next
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("value %s is a %T, not a map", k, next)
		}
		cur = m
	}
	cur["caCrt"], cur["crt"], cur["key"] = ca, crt, key
	agent := out["agent"].(map[string]any)
	ann, ok := agent["podAnnotations"].(map[string]any)
	if !ok || ann == nil {
		if v, set := agent["podAnnotations"]; set && v != nil {
			return nil, fmt.Errorf("value agent.podAnnotations is a %T, not a map", v)
		}
		ann = map[string]any{}
		agent["podAnnotations"] = ann
	}
	ann[AgentCredentialAnnotation] = agentCredentialFingerprint([]byte(crt))
	return out, nil
}

// waitMemberReady waits (bounded by ReadyTimeout) for the member's Cluster to be Ready=True.
func (d *Driver) waitMemberReady(ctx context.Context, name string) error {
	kc, err := d.karmada()
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	var last string
	err = poll(ctx, d.cfg.Log, d.cfg.ReadyTimeout, "cluster "+name+" Ready", func(ctx context.Context) (bool, error) {
		c, err := kc.karmada.ClusterV1alpha1().Clusters().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, clusterv1alpha1.ClusterConditionReady)
		if cond == nil {
			last = "no Ready condition yet"
			return false, fmt.Errorf("%s", last)
		}
		if cond.Status == metav1.ConditionTrue {
			return true, nil
		}
		last = fmt.Sprintf("Ready=%s reason %s: %s", cond.Status, cond.Reason, cond.Message)
		return false, fmt.Errorf("%s", last)
	})
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	return nil
}

// staleGrace is how long Karmada gets to delete a stale Cluster by itself before its
// finalizers are stripped: the cluster it stood for is gone, so its Works cannot be cleaned.
const staleGrace = 20 * time.Second

// removeStale removes Karmada's Cluster name when it is the fleet's and stands for the
// replaced cluster id (a region rebuilt): deleted, and forced if Karmada cannot finish
// because the old cluster is gone. A Cluster that already stands for the member as it is now
// (a retried step) is left for the join, and one that is not the fleet's is refused.
func (d *Driver) removeStale(ctx context.Context, name, staleID string) error {
	kc, err := d.karmada()
	if err != nil {
		return err
	}
	c, err := kc.karmada.ClusterV1alpha1().Clusters().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("karmada: cluster %s: %w", name, err)
	case c.Spec.ID != staleID:
		return nil // not the stale one (already replaced by an earlier attempt)
	case !world.OwnedBy(c.Labels, d.cfg.Fleet):
		return terminalf("karmada cluster %s is not fleet %s's: it is left alone", name, d.cfg.Fleet)
	}
	d.log.Info("removing the Karmada Cluster of a replaced cluster", "cluster", name, "staleID", staleID)
	clusters := kc.karmada.ClusterV1alpha1().Clusters()
	uid := c.UID
	if err := clusters.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("karmada: delete stale cluster %s: %w", name, err)
	}
	gone := func(ctx context.Context) (bool, error) {
		_, err := clusters.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, d.releaseWhenWorksGone(ctx, kc, name)
	}
	if err := poll(ctx, d.cfg.Log, staleGrace, "stale cluster "+name+" to be deleted", gone); err != nil {
		d.log.Warn("the replaced cluster is gone, so Karmada cannot clean up its Works: stripping finalizers", "cluster", name)
		if err := d.forceRemove(ctx, kc, name); err != nil {
			return err
		}
		if err := poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "stale cluster "+name+" to be deleted after stripping finalizers", gone); err != nil {
			return err
		}
	}
	// The new Cluster gets the same execution namespace: the old one must be gone first, or
	// Karmada cannot put the new member's Works anywhere.
	ns := ExecutionNamespace(name)
	nsGone := func(ctx context.Context) (bool, error) {
		_, err := kc.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, d.releaseWhenWorksGone(ctx, kc, name)
	}
	if err := poll(ctx, d.cfg.Log, staleGrace, "execution namespace "+ns+" to be deleted", nsGone); err == nil {
		return nil
	}
	if err := d.forceRemove(ctx, kc, name); err != nil {
		return err
	}
	return poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "execution namespace "+ns+" to be deleted after stripping finalizers", nsGone)
}
