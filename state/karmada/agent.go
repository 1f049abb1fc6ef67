package karmada

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/state/world"
)

// A Pull member's agent has its own identity in Karmada, as `karmadactl register` gives it:
// a client certificate for world.AgentUser(member) in world.AgentGroup, requested through a
// CSR that a short-lived bootstrap token authenticates and that Karmada's signer issues, and
// RBAC for that member's Cluster, secrets and Works only. Unjoin removes the RBAC, so the
// certificate, which is never renewed after that, opens nothing.
const (
	// AgentKubeconfigSecret is where the Karmada chart in agent mode keeps the agent's
	// kubeconfig (<release>-kubeconfig in the release's namespace), key "kubeconfig".
	AgentKubeconfigSecret = AgentRelease + "-kubeconfig"
	// AgentCredentialAnnotation, a pod annotation of the agent, fingerprints its certificate so
	// the agent restarts when the certificate is replaced (it reads its kubeconfig once).
	AgentCredentialAnnotation = "reconcile.dev/agent-credential"
	// agentSigner is Karmada's kube-controller-manager signer of client certificates.
	agentSigner = certificatesv1.KubeAPIServerClientSignerName
	// bootstrapTokenTTL bounds a bootstrap token's life: it only has to outlive one CSR.
	bootstrapTokenTTL = 15 * time.Minute
	// nodeBootstrapper is kube-apiserver's built-in role for creating CSRs.
	nodeBootstrapper = "system:node-bootstrapper"
	// workRBACFinalizer keeps the agent's Role and RoleBinding in its execution namespace
	// while Karmada deletes that namespace on unjoin: the agent must still be allowed to take
	// the finalizers off its Works, or the namespace, and the Cluster, would never go. Unjoin
	// releases it once no Work is left.
	workRBACFinalizer = "reconcile.dev/agent-work-rbac"
)

// AgentRBAC names the ClusterRole and ClusterRoleBinding of member's agent in Karmada; the
// Roles and RoleBindings are AgentRBAC(member)+"-secret" (in karmada-cluster) and +"-work"
// (in the member's execution namespace). The names are karmadactl register's.
func AgentRBAC(member string) string { return "system:karmada:" + member + ":agent" }

// bootstrapGroup is the group the fleet's bootstrap tokens authenticate as.
func (d *Driver) bootstrapGroup() string { return "system:bootstrappers:reconcile:" + d.fleetName() }

func (d *Driver) fleetName() string {
	if d.cfg.Fleet == "" {
		return "default"
	}
	return d.cfg.Fleet
}

// agentRBACObject is one of the Karmada RBAC objects of an agent: a (Cluster)Role with its rules
// and the (Cluster)RoleBinding of the same name for the agent's user.
type agentRBACObject struct {
	namespace, name string // namespace "" for the cluster-scoped pair
	rules           []rbacv1.PolicyRule
	// finalizer is workRBACFinalizer for the pair in the execution namespace.
	finalizer string
}

func agentRBACObjects(member string) []agentRBACObject {
	name := AgentRBAC(member)
	return []agentRBACObject{
		{name: name, rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"cluster.karmada.io"}, Resources: []string{"clusters"}, ResourceNames: []string{member}, Verbs: []string{"get", "delete"}},
			{APIGroups: []string{"cluster.karmada.io"}, Resources: []string{"clusters"}, Verbs: []string{"create", "list", "watch"}},
			{APIGroups: []string{"cluster.karmada.io"}, Resources: []string{"clusters/status"}, ResourceNames: []string{member}, Verbs: []string{"update"}},
			{APIGroups: []string{"config.karmada.io"}, Resources: []string{"resourceinterpreterwebhookconfigurations", "resourceinterpretercustomizations"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "create"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"patch", "create", "update"}},
		}},
		{namespace: ClusterNamespace, name: name + "-secret", rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{member, ImpersonatorSecret(member)}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		}},
		{namespace: ExecutionNamespace(member), name: name + "-work", finalizer: workRBACFinalizer, rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"work.karmada.io"}, Resources: []string{"works"}, Verbs: []string{"get", "create", "list", "watch", "update", "delete"}},
			{APIGroups: []string{"work.karmada.io"}, Resources: []string{"works/status"}, Verbs: []string{"patch", "update"}},
		}},
	}
}

func (o agentRBACObject) String() string {
	if o.namespace == "" {
		return "ClusterRole/ClusterRoleBinding " + o.name
	}
	return "Role/RoleBinding " + o.namespace + "/" + o.name
}

func userSubject(user string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}
}

// roleOK and bindingOK say whether a role or binding read from Karmada is exactly the one the
// fleet wants (rules, subject, its mark).
func (d *Driver) roleOK(labels map[string]string, rules, want []rbacv1.PolicyRule) bool {
	return hasAll(labels, d.labels(nil)) && rulesEqual(rules, want)
}

func (d *Driver) bindingOK(labels map[string]string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, kind, name string, want rbacv1.Subject) bool {
	return hasAll(labels, d.labels(nil)) && ref.Kind == kind && ref.Name == name && len(subjects) == 1 && subjects[0] == want
}

// observeAgentRBAC lists the agent RBAC objects of member that are absent, differ or lack the
// fleet's mark.
func (d *Driver) observeAgentRBAC(ctx context.Context, kc kubernetes.Interface, member string) ([]string, error) {
	var missing []string
	subject := userSubject(world.AgentUser(member))
	rbac := kc.RbacV1()
	for _, o := range agentRBACObjects(member) {
		ok := true
		if o.namespace == "" {
			cr, err := rbac.ClusterRoles().Get(ctx, o.name, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
			ok = err == nil && d.roleOK(cr.Labels, cr.Rules, o.rules)
			if ok {
				crb, err := rbac.ClusterRoleBindings().Get(ctx, o.name, metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return nil, err
				}
				ok = err == nil && d.bindingOK(crb.Labels, crb.RoleRef, crb.Subjects, "ClusterRole", o.name, subject)
			}
		} else {
			r, err := rbac.Roles(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
			ok = err == nil && d.roleOK(r.Labels, r.Rules, o.rules) && hasFinalizer(r.Finalizers, o.finalizer)
			if ok {
				rb, err := rbac.RoleBindings(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return nil, err
				}
				ok = err == nil && d.bindingOK(rb.Labels, rb.RoleRef, rb.Subjects, "Role", o.name, subject) && hasFinalizer(rb.Finalizers, o.finalizer)
			}
		}
		if !ok {
			missing = append(missing, o.String())
		}
	}
	return missing, nil
}

// ensureAgentRBAC writes the agent RBAC of member into Karmada (and the execution namespace
// its Works live in, which Karmada would otherwise make only once the Cluster exists). Objects
// that already match are not written; another fleet's are refused.
func (d *Driver) ensureAgentRBAC(ctx context.Context, kc kubernetes.Interface, member string) error {
	if err := d.ensureNamespace(ctx, kc, ExecutionNamespace(member), map[string]string{systemLabel: "true"}); err != nil {
		return err
	}
	if err := d.ensureNamespace(ctx, kc, ClusterNamespace, map[string]string{systemLabel: "true"}); err != nil {
		return err
	}
	subject := userSubject(world.AgentUser(member))
	rbac := kc.RbacV1()
	foreign := func(what string, labels map[string]string) error {
		if v := labels[world.FleetLabel]; v != "" && v != d.cfg.Fleet {
			return terminalf("%s is fleet %s's, not %s's", what, v, d.cfg.Fleet)
		}
		return nil
	}
	ruleACs := func(rules []rbacv1.PolicyRule) []*rbacv1ac.PolicyRuleApplyConfiguration {
		var out []*rbacv1ac.PolicyRuleApplyConfiguration
		for _, r := range rules {
			out = append(out, rbacv1ac.PolicyRule().WithAPIGroups(r.APIGroups...).WithResources(r.Resources...).
				WithResourceNames(r.ResourceNames...).WithVerbs(r.Verbs...))
		}
		return out
	}
	subjectAC := rbacv1ac.Subject().WithAPIGroup(subject.APIGroup).WithKind(subject.Kind).WithName(subject.Name)
	for _, o := range agentRBACObjects(member) {
		what := o.String()
		if o.namespace == "" {
			cr, err := rbac.ClusterRoles().Get(ctx, o.name, metav1.GetOptions{})
			switch {
			case err != nil && !apierrors.IsNotFound(err):
				return fmt.Errorf("%s: %w", what, err)
			case err == nil && d.roleOK(cr.Labels, cr.Rules, o.rules):
			case err == nil && foreign(what, cr.Labels) != nil:
				return foreign(what, cr.Labels)
			default:
				ac := rbacv1ac.ClusterRole(o.name).WithLabels(d.labels(nil)).WithRules(ruleACs(o.rules)...)
				if _, err := rbac.ClusterRoles().Apply(ctx, ac, applyOpts); err != nil {
					return fmt.Errorf("apply cluster role %s: %w", o.name, err)
				}
			}
			crb, err := rbac.ClusterRoleBindings().Get(ctx, o.name, metav1.GetOptions{})
			switch {
			case err != nil && !apierrors.IsNotFound(err):
				return fmt.Errorf("%s: %w", what, err)
			case err == nil && d.bindingOK(crb.Labels, crb.RoleRef, crb.Subjects, "ClusterRole", o.name, subject):
				continue
			case err == nil && foreign(what, crb.Labels) != nil:
				return foreign(what, crb.Labels)
			case err == nil && (crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != o.name):
				uid := crb.UID
				if err := rbac.ClusterRoleBindings().Delete(ctx, o.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("replace cluster role binding %s: %w", o.name, err)
				}
			}
			ac := rbacv1ac.ClusterRoleBinding(o.name).WithLabels(d.labels(nil)).WithSubjects(subjectAC).
				WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(o.name))
			if _, err := rbac.ClusterRoleBindings().Apply(ctx, ac, applyOpts); err != nil {
				return fmt.Errorf("apply cluster role binding %s: %w", o.name, err)
			}
			continue
		}
		r, err := rbac.Roles(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		switch {
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("%s: %w", what, err)
		case err == nil && d.roleOK(r.Labels, r.Rules, o.rules) && hasFinalizer(r.Finalizers, o.finalizer):
		case err == nil && foreign(what, r.Labels) != nil:
			return foreign(what, r.Labels)
		default:
			ac := rbacv1ac.Role(o.name, o.namespace).WithLabels(d.labels(nil)).WithRules(ruleACs(o.rules)...)
			if o.finalizer != "" {
				ac.WithFinalizers(o.finalizer)
			}
			if _, err := rbac.Roles(o.namespace).Apply(ctx, ac, applyOpts); err != nil {
				return fmt.Errorf("apply role %s/%s: %w", o.namespace, o.name, err)
			}
		}
		rb, err := rbac.RoleBindings(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		switch {
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("%s: %w", what, err)
		case err == nil && d.bindingOK(rb.Labels, rb.RoleRef, rb.Subjects, "Role", o.name, subject) && hasFinalizer(rb.Finalizers, o.finalizer):
			continue
		case err == nil && foreign(what, rb.Labels) != nil:
			return foreign(what, rb.Labels)
		case err == nil && (rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != o.name):
			uid := rb.UID
			if err := rbac.RoleBindings(o.namespace).Delete(ctx, o.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("replace role binding %s/%s: %w", o.namespace, o.name, err)
			}
		}
		ac := rbacv1ac.RoleBinding(o.name, o.namespace).WithLabels(d.labels(nil)).WithSubjects(subjectAC).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(o.name))
		if o.finalizer != "" {
			ac.WithFinalizers(o.finalizer)
		}
		if _, err := rbac.RoleBindings(o.namespace).Apply(ctx, ac, applyOpts); err != nil {
			return fmt.Errorf("apply role binding %s/%s: %w", o.namespace, o.name, err)
		}
	}
	return nil
}

// removeAgentRBAC deletes the fleet's agent RBAC of member from Karmada (only objects with the
// fleet's mark, each the very one read): the agent's certificate then opens nothing.
func (d *Driver) removeAgentRBAC(ctx context.Context, kc kubernetes.Interface, member string) error {
	var errs []error
	rbac := kc.RbacV1()
	del := func(m metav1.Object, err error, remove func(metav1.DeleteOptions) error) {
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, err)
		case !world.OwnedBy(m.GetLabels(), d.cfg.Fleet):
			d.log.Info("left in Karmada: not the fleet's", "cluster", member, "object", m.GetName())
		default:
			uid := m.GetUID()
			if err := remove(metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	for _, o := range agentRBACObjects(member) {
		if o.namespace == "" {
			crb, err := rbac.ClusterRoleBindings().Get(ctx, o.name, metav1.GetOptions{})
			del(crb, err, func(opts metav1.DeleteOptions) error { return rbac.ClusterRoleBindings().Delete(ctx, o.name, opts) })
			cr, err := rbac.ClusterRoles().Get(ctx, o.name, metav1.GetOptions{})
			del(cr, err, func(opts metav1.DeleteOptions) error { return rbac.ClusterRoles().Delete(ctx, o.name, opts) })
			continue
		}
		if o.finalizer != "" {
			if err := d.releaseWorkRBAC(ctx, kc, member); err != nil {
				errs = append(errs, err)
			}
		}
		rb, err := rbac.RoleBindings(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		del(rb, err, func(opts metav1.DeleteOptions) error { return rbac.RoleBindings(o.namespace).Delete(ctx, o.name, opts) })
		r, err := rbac.Roles(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		del(r, err, func(opts metav1.DeleteOptions) error { return rbac.Roles(o.namespace).Delete(ctx, o.name, opts) })
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the agent's RBAC: %w", err)
	}
	return nil
}

func hasFinalizer(have []string, f string) bool { return f == "" || slices.Contains(have, f) }

// releaseWorkRBAC takes workRBACFinalizer off the fleet's agent Role and RoleBinding in
// member's execution namespace, so they (and the namespace) can go.
func (d *Driver) releaseWorkRBAC(ctx context.Context, kc kubernetes.Interface, member string) error {
	ns, name := ExecutionNamespace(member), AgentRBAC(member)+"-work"
	rbac := kc.RbacV1()
	release := func(m metav1.Object, err error, patch func([]byte) error) error {
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case !world.OwnedBy(m.GetLabels(), d.cfg.Fleet) || !slices.Contains(m.GetFinalizers(), workRBACFinalizer):
			return nil
		}
		var keep []string
		for _, f := range m.GetFinalizers() {
			if f != workRBACFinalizer {
				keep = append(keep, f)
			}
		}
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": keep, "resourceVersion": m.GetResourceVersion()}})
		if err != nil {
			return err
		}
		if err := patch(body); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	}
	rb, err := rbac.RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
	if err := release(rb, err, func(b []byte) error {
		_, err := rbac.RoleBindings(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("release role binding %s/%s: %w", ns, name, err)
	}
	r, err := rbac.Roles(ns).Get(ctx, name, metav1.GetOptions{})
	if err := release(r, err, func(b []byte) error {
		_, err := rbac.Roles(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("release role %s/%s: %w", ns, name, err)
	}
	return nil
}

// releaseWhenWorksGone releases the agent's Work RBAC of member once its execution namespace
// holds no Work any more (Karmada is deleting the Cluster and the agent has cleaned up).
func (d *Driver) releaseWhenWorksGone(ctx context.Context, kc karmadaClients, member string) error {
	works, err := kc.karmada.WorkV1alpha1().Works(ExecutionNamespace(member)).List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case len(works.Items) > 0:
		return nil
	}
	return d.releaseWorkRBAC(ctx, kc.kube, member)
}

// readAgentKubeconfig returns the client certificate and key the agent in the member holds
// now (nil when it has none).
func readAgentKubeconfig(ctx context.Context, kc kubernetes.Interface) (certPEM, keyPEM []byte, err error) {
	s, err := kc.CoreV1().Secrets(AgentNamespace).Get(ctx, AgentKubeconfigSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	cfg, err := clientcmd.Load(s.Data["kubeconfig"])
	if err != nil {
		// Never quote the content: it holds a private key.
		return nil, nil, fmt.Errorf("secret %s/%s: not a kubeconfig", AgentNamespace, AgentKubeconfigSecret)
	}
	ctxName := cfg.CurrentContext
	kctx := cfg.Contexts[ctxName]
	if kctx == nil {
		return nil, nil, nil
	}
	user := cfg.AuthInfos[kctx.AuthInfo]
	if user == nil {
		return nil, nil, nil
	}
	return user.ClientCertificateData, user.ClientKeyData, nil
}

// ObserveAgentCredential describes the client certificate in the agent's kubeconfig Secret of
// a member; nil when there is no such Secret or certificate.
func ObserveAgentCredential(ctx context.Context, kc kubernetes.Interface) (*world.AgentCredential, error) {
	certPEM, _, err := readAgentKubeconfig(ctx, kc)
	if err != nil || len(certPEM) == 0 {
		return nil, err
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", AgentNamespace, AgentKubeconfigSecret, err)
	}
	return &world.AgentCredential{Subject: cert.Subject.CommonName, Groups: cert.Subject.Organization,
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC()}, nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// reusableAgentCert reports whether the agent's certificate can stay: the member's own user
// and group, a key that matches, signed by Karmada's CA for client auth, and younger than half
// its lifetime (credentials.tokenRotation, or half of what the signer gave when shorter).
func reusableAgentCert(member string, certPEM, keyPEM, caPEM []byte, lifetime time.Duration, now time.Time) bool {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return false
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false
	}
	cert, err := parseCert(certPEM)
	if err != nil || cert.Subject.CommonName != world.AgentUser(member) || !slices.Contains(cert.Subject.Organization, world.AgentGroup) {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return false
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return false
	}
	// Kept for half of its life: the one asked for, or the one the signer gave when shorter.
	life := cert.NotAfter.Sub(cert.NotBefore)
	if lifetime > 0 && lifetime < life {
		life = lifetime
	}
	return now.Before(cert.NotBefore.Add(life / 2))
}

// agentCredentialFingerprint is the agent's pod annotation for a certificate.
func agentCredentialFingerprint(certPEM []byte) string {
	sum := sha256.Sum256(certPEM)
	return hex.EncodeToString(sum[:8])
}

// agentCertificate returns the certificate and key the agent of member is to use: the one it
// has while reusable (unless renew), else a new one issued by Karmada.
func (d *Driver) agentCertificate(ctx context.Context, kc karmadaClients, mc clients, member string, caPEM []byte,
	lifetime time.Duration, renew bool) (certPEM, keyPEM []byte, err error) {
	if !renew {
		certPEM, keyPEM, err := readAgentKubeconfig(ctx, mc.kube)
		if err != nil {
			return nil, nil, fmt.Errorf("member: %w", err)
		}
		if reusableAgentCert(member, certPEM, keyPEM, caPEM, lifetime, time.Now()) {
			return certPEM, keyPEM, nil
		}
	}
	return d.issueAgentCertificate(ctx, kc, member, lifetime)
}

// issueAgentCertificate has Karmada sign a new client certificate for member's agent, as
// `karmadactl register` does: a bootstrap token (valid minutes, deleted after) makes the CSR,
// the fleet approves exactly that CSR, Karmada's signer issues it. The key never leaves
// this process except into the agent's release.
func (d *Driver) issueAgentCertificate(ctx context.Context, kc karmadaClients, member string, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	if err := d.ensureBootstrapBinding(ctx, kc.kube); err != nil {
		return nil, nil, err
	}
	token, cleanup, err := d.bootstrapToken(ctx, kc.kube, member)
	if err != nil {
		return nil, nil, err
	}
	defer cleanup()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: world.AgentUser(member), Organization: []string{world.AgentGroup}}}, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})

	bootstrap := rest.AnonymousClientConfig(kc.rest)
	bootstrap.BearerToken = token.String()
	bootstrap.WrapTransport = kc.rest.WrapTransport
	bc, err := kubernetes.NewForConfig(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	seconds := int32(lifetime / time.Second)
	if lifetime <= 0 || lifetime/time.Second > 1<<31-1 {
		seconds = 1<<31 - 1
	}
	csrName := "reconcile-agent-" + member + "-" + token.id
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: csrName, Labels: d.labels(nil)},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        agentSigner,
			ExpirationSeconds: &seconds,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth},
		},
	}
	csrs := kc.kube.CertificatesV1().CertificateSigningRequests()
	defer func() {
		// The CSR has served its purpose (Karmada's csrcleaner would take it within the hour).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := csrs.Delete(dctx, csrName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			d.log.Warn("could not delete the agent's CSR", "cluster", member, "csr", csrName, "error", err)
		}
	}()
	// The token authenticator learns of a new token through an informer: a 401 at first is
	// expected, and bounded.
	err = poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "the bootstrap token to create the agent's CSR", func(ctx context.Context) (bool, error) {
		_, err := bc.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		if apierrors.IsUnauthorized(err) {
			return false, err
		}
		return false, &stopPolling{err}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("karmada: %w", unwrapStop(err))
	}
	got, err := csrs.Get(ctx, csrName, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("karmada: csr %s: %w", csrName, err)
	}
	if want := "system:bootstrap:" + token.id; got.Spec.Username != want || !bytes.Equal(got.Spec.Request, csr.Spec.Request) {
		return nil, nil, terminalf("karmada: csr %s was made by %q, not by the fleet's bootstrap token %s: not approving it", csrName, got.Spec.Username, want)
	}
	if !approved(got) {
		got.Status.Conditions = append(got.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "ReconcileAgentIdentity",
			Message: "the karmada-agent of member " + member + " of fleet " + d.fleetName(), LastUpdateTime: metav1.Now()})
		if _, err := csrs.UpdateApproval(ctx, csrName, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsConflict(err) {
			return nil, nil, fmt.Errorf("karmada: approve csr %s: %w", csrName, err)
		}
	}
	err = poll(ctx, d.cfg.Log, d.cfg.JoinTimeout, "Karmada to sign the agent's certificate (csr "+csrName+")", func(ctx context.Context) (bool, error) {
		c, err := csrs.Get(ctx, csrName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if (cond.Type == certificatesv1.CertificateDenied || cond.Type == certificatesv1.CertificateFailed) && cond.Status == corev1.ConditionTrue {
				return false, &stopPolling{fmt.Errorf("csr %s %s: %s", csrName, cond.Type, cond.Message)}
			}
		}
		if len(c.Status.Certificate) == 0 {
			return false, fmt.Errorf("not signed yet (approved: %v)", approved(c))
		}
		certPEM = c.Status.Certificate
		return true, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("karmada: %w (does Karmada's kube-controller-manager run its csrsigning controller?)", unwrapStop(err))
	}
	d.log.Info("karmada-agent certificate issued", "cluster", member, "user", world.AgentUser(member), "lifetime", lifetime)
	return certPEM, keyPEM, nil
}

func approved(c *certificatesv1.CertificateSigningRequest) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// stopPolling ends a poll at once with its error (poll goes on through other errors).
type stopPolling struct{ err error }

func (s *stopPolling) Error() string { return s.err.Error() }
func (s *stopPolling) Unwrap() error { return s.err }

func unwrapStop(err error) error {
	var s *stopPolling
	if errors.As(err, &s) {
		return s.err
	}
	return err
}

// ensureBootstrapBinding lets the fleet's bootstrap group create CSRs (and nothing else), as
// kube-apiserver's system:node-bootstrapper role allows.
func (d *Driver) ensureBootstrapBinding(ctx context.Context, kc kubernetes.Interface) error {
	name := "reconcile:" + d.fleetName() + ":agent-bootstrap"
	want := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: d.bootstrapGroup()}
	crb, err := kc.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil && d.bindingOK(crb.Labels, crb.RoleRef, crb.Subjects, "ClusterRole", nodeBootstrapper, want):
		return nil
	case err == nil && !world.OwnedBy(crb.Labels, d.cfg.Fleet):
		return terminalf("karmada: cluster role binding %s is not fleet %s's", name, d.cfg.Fleet)
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("karmada: cluster role binding %s: %w", name, err)
	}
	ac := rbacv1ac.ClusterRoleBinding(name).WithLabels(d.labels(nil)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(nodeBootstrapper)).
		WithSubjects(rbacv1ac.Subject().WithAPIGroup(want.APIGroup).WithKind(want.Kind).WithName(want.Name))
	if _, err := kc.RbacV1().ClusterRoleBindings().Apply(ctx, ac, applyOpts); err != nil {
		return fmt.Errorf("karmada: apply cluster role binding %s: %w", name, err)
	}
	return nil
}

// bootstrapTokenValue is a bootstrap token: "<id>.<secret>".
type bootstrapTokenValue struct{ id, secret string }

func (t bootstrapTokenValue) String() string { return t.id + "." + t.secret }

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenChars))))
		if err != nil {
			return "", err
		}
		b[i] = tokenChars[v.Int64()]
	}
	return string(b), nil
}

// bootstrapToken writes a bootstrap token into Karmada's kube-system that expires within
// bootstrapTokenTTL and authenticates as the fleet's bootstrap group; cleanup deletes it.
func (d *Driver) bootstrapToken(ctx context.Context, kc kubernetes.Interface, member string) (bootstrapTokenValue, func(), error) {
	id, err := randomString(6)
	if err != nil {
		return bootstrapTokenValue{}, nil, err
	}
	secret, err := randomString(16)
	if err != nil {
		return bootstrapTokenValue{}, nil, err
	}
	t := bootstrapTokenValue{id: id, secret: secret}
	name := "bootstrap-token-" + id
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, Labels: d.labels(nil)},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     time.Now().Add(bootstrapTokenTTL).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"auth-extra-groups":              d.bootstrapGroup(),
			"description":                    "reconcile: the CSR of the karmada-agent of member " + member,
		},
	}
	secrets := kc.CoreV1().Secrets(metav1.NamespaceSystem)
	if _, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return bootstrapTokenValue{}, nil, fmt.Errorf("karmada: create a bootstrap token: %w", err)
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := secrets.Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			d.log.Warn("could not delete the bootstrap token (it expires by itself)", "secret", metav1.NamespaceSystem+"/"+name, "error", err)
		}
	}
	return t, cleanup, nil
}
