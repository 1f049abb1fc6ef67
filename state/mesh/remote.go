package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// ReaderTokenFingerprint fingerprints a filled reader token secret (token and ca.crt); ""
// when either is missing.
func ReaderTokenFingerprint(s *corev1.Secret) string {
	if s == nil || len(s.Data[corev1.ServiceAccountTokenKey]) == 0 || len(s.Data[corev1.ServiceAccountRootCAKey]) == 0 {
		return ""
	}
	h := sha256.New()
	h.Write(s.Data[corev1.ServiceAccountTokenKey])
	h.Write([]byte{0})
	h.Write(s.Data[corev1.ServiceAccountRootCAKey])
	return hex.EncodeToString(h.Sum(nil))
}

// RemoteSecretName is the name of the remote secret that lets other members watch member.
func RemoteSecretName(member string) string { return RemoteSecretPrefix + member }

// readerToken creates the service-account-token Secret of the payload's service account (the
// base chart creates the account) and waits until the token controller filled it.
func (d *Driver) readerToken(ctx context.Context, s plan.Step) error {
	p := s.Payload.ReaderToken
	if p == nil {
		return noPayload(s)
	}
	if p.ServiceAccount == "" || p.Secret == "" {
		return fmt.Errorf("%s: the reader-token payload names no service account or secret", s.Address)
	}
	member, ns := s.Cluster, namespaceOr(p.Namespace)
	c, err := d.connect(member)
	if err != nil {
		return err
	}
	secrets := c.kube.CoreV1().Secrets(ns)
	sec, err := secrets.Get(ctx, p.Secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sec = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if sec != nil && ReaderTokenFingerprint(sec) != "" {
		return nil
	}
	if sec != nil && (sec.Type != corev1.SecretTypeServiceAccountToken || sec.Annotations[corev1.ServiceAccountNameKey] != p.ServiceAccount) {
		// The type cannot change in place.
		if err := secrets.Delete(ctx, p.Secret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %s: replace %s: %w", member, p.Secret, err)
		}
		sec = nil
	}
	if sec == nil {
		// Without its account the token controller would delete the secret again.
		if _, err := c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, p.ServiceAccount, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return state.Transient(fmt.Errorf("cluster %s: no service account %s/%s yet (the Istio base chart creates it)", member, ns, p.ServiceAccount), 5*time.Second)
			}
			return fmt.Errorf("cluster %s: %w", member, err)
		}
		apply := corev1ac.Secret(p.Secret, ns).
			WithType(corev1.SecretTypeServiceAccountToken).
			WithLabels(d.labels(nil)).
			WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: p.ServiceAccount})
		if _, err := secrets.Apply(ctx, apply, applyOpts()); err != nil {
			return fmt.Errorf("cluster %s: secret %s: %w", member, p.Secret, err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d.cfg.Timeout, true, func(ctx context.Context) (bool, error) {
		sec, err := secrets.Get(ctx, p.Secret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ReaderTokenFingerprint(sec) != "", err
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: reader token not filled: %w", member, err), 0)
	}
	return nil
}

// RemoteKubeconfig is the kubeconfig of a remote secret: cluster, context and user all named
// after the member, the member's CA as its token secret carries it and the reader's token.
func RemoteKubeconfig(member, endpoint string, caPEM, token []byte) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[member] = &clientcmdapi.Cluster{Server: endpoint, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[member] = &clientcmdapi.AuthInfo{Token: string(token)}
	cfg.Contexts[member] = &clientcmdapi.Context{Cluster: member, AuthInfo: member}
	cfg.CurrentContext = member
	return clientcmd.Write(*cfg)
}

// remoteSecret writes (create, update) or removes (delete) istio-remote-secret-<Peer> in the
// step's cluster.
func (d *Driver) remoteSecret(ctx context.Context, s plan.Step) error {
	if s.Peer == "" {
		return fmt.Errorf("%s: a remote-secret step names no peer", s.Address)
	}
	if s.Peer == s.Cluster {
		return fmt.Errorf("a member does not get a remote secret for itself (%s)", s.Cluster)
	}
	p := s.Payload.RemoteSecret
	switch s.Action {
	case plan.Delete:
		ns := MeshNamespace
		if p != nil && p.Namespace != "" {
			ns = p.Namespace
		}
		c, err := d.connect(s.Cluster)
		if err != nil {
			return err
		}
		return deleteSecret(ctx, c.kube, s.Cluster, ns, RemoteSecretName(s.Peer), d.cfg.Timeout)
	case plan.Create, plan.Update:
	default:
		return unsupported(s)
	}
	if p == nil {
		return noPayload(s)
	}
	if p.Endpoint.From != nil || p.Endpoint.Value == "" {
		return fmt.Errorf("%s: the remote secret's endpoint is not known (reference %v unresolved)", s.Address, p.Endpoint.From)
	}
	return d.writeRemoteSecret(ctx, s.Cluster, s.Peer, namespaceOr(p.Namespace), p.Endpoint.Value)
}

// writeRemoteSecret writes istio-remote-secret-<from> into namespace ns of member in: a
// kubeconfig for from's istio-reader token (read now from from's ns, never an admin
// credential) at endpoint, labelled for istiod's secret controller and annotated with its
// fingerprint. It writes nothing when the secret is already so.
func (d *Driver) writeRemoteSecret(ctx context.Context, in, from, ns, endpoint string) error {
	src, err := d.connect(from)
	if err != nil {
		return err
	}
	tok, err := src.kube.CoreV1().Secrets(ns).Get(ctx, ReaderTokenSecret, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: %w", from, err)
	}
	tokenFP := ReaderTokenFingerprint(tok)
	if tokenFP == "" {
		return state.Transient(fmt.Errorf("cluster %s: the istio-reader token is not there or not filled", from), 5*time.Second)
	}
	kubeconfig, err := RemoteKubeconfig(from, endpoint, tok.Data[corev1.ServiceAccountRootCAKey], tok.Data[corev1.ServiceAccountTokenKey])
	if err != nil {
		return err
	}
	fp := world.RemoteSecretFingerprint(endpoint, tokenFP)

	dst, err := d.connect(in)
	if err != nil {
		return err
	}
	secrets := dst.kube.CoreV1().Secrets(ns)
	name := RemoteSecretName(from)
	have, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		have = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", in, err)
	}
	if have != nil && have.Annotations[FingerprintAnnot] == fp && have.Annotations[ClusterAnnotation] == from &&
		have.Labels[MultiClusterLabel] == "true" && bytes.Equal(have.Data[from], kubeconfig) {
		return nil
	}
	apply := corev1ac.Secret(name, ns).
		WithType(corev1.SecretTypeOpaque).
		WithLabels(d.labels(map[string]string{MultiClusterLabel: "true"})).
		WithAnnotations(map[string]string{ClusterAnnotation: from, FingerprintAnnot: fp}).
		WithData(map[string][]byte{from: kubeconfig})
	if _, err := secrets.Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: secret %s: %w", in, name, err)
	}
	d.cfg.Log.Info("remote secret written", "cluster", in, "peer", from)
	return nil
}

// deleteSecret deletes a secret of namespace ns and waits until it is gone.
func deleteSecret(ctx context.Context, cs kubernetes.Interface, cluster, ns, name string, timeout time.Duration) error {
	secrets := cs.CoreV1().Secrets(ns)
	err := secrets.Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster %s: delete secret %s: %w", cluster, name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: secret %s not gone: %w", cluster, name, err), 0)
	}
	return nil
}

// teardown takes the mesh out of a member that left the fleet. Its secrets written by
// reconcile (remote secrets, reader token, cacerts) and the Gateway go, then the payload's
// releases are uninstalled in order and the namespace is deleted, confirmed gone. The
// releases go too because an istiod left without its cacerts and peers would fall back to a
// self-signed CA: a half-mesh nobody manages. The other members' secrets for it are separate
// remote-secret delete steps.
func (d *Driver) teardown(ctx context.Context, s plan.Step) error {
	p := s.Payload.Teardown
	if p == nil {
		return noPayload(s)
	}
	member, ns := s.Cluster, namespaceOr(p.Namespace)
	if len(p.Releases) > 0 && d.cfg.Helm == nil {
		return errors.New("mesh: no Helm client configured")
	}
	c, err := d.connect(member)
	if err != nil {
		return err
	}
	timeout := d.cfg.Timeout
	secrets, err := c.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if secrets != nil {
		for _, sec := range secrets.Items {
			if !world.OwnedBy(sec.Labels, d.cfg.Fleet) {
				continue // another fleet's: left alone
			}
			if err := deleteSecret(ctx, c.kube, member, ns, sec.Name, timeout); err != nil {
				return err
			}
		}
	}
	gw, err := c.dyn.Resource(GatewayResource).Namespace(ns).Get(ctx, GatewayName, metav1.GetOptions{})
	switch {
	case err == nil && world.OwnedBy(gw.GetLabels(), d.cfg.Fleet):
		uid := gw.GetUID()
		err = c.dyn.Resource(GatewayResource).Namespace(ns).Delete(ctx, GatewayName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %s: delete gateway: %w", member, err)
		}
	case err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err):
		return fmt.Errorf("cluster %s: gateway: %w", member, err)
	}
	if len(p.Releases) > 0 {
		h, err := d.cfg.Helm(c.rest)
		if err != nil {
			return fmt.Errorf("cluster %s: helm: %w", member, err)
		}
		for _, rel := range p.Releases {
			if err := h.Uninstall(ctx, rel, ns); err != nil {
				return fmt.Errorf("cluster %s: uninstall %s: %w", member, rel, err)
			}
		}
	}
	nss := c.kube.CoreV1().Namespaces()
	if live, err := nss.Get(ctx, ns, metav1.GetOptions{}); err == nil && !world.OwnedBy(live.Labels, d.cfg.Fleet) {
		d.cfg.Log.Info("mesh namespace left in place: not the fleet's", "cluster", member, "namespace", ns)
		return d.forget(p, member)
	}
	if err := nss.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: delete namespace %s: %w", member, ns, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := nss.Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: namespace %s not gone: %w", member, ns, err), 0)
	}
	d.cfg.Log.Info("mesh torn down", "cluster", member)
	return d.forget(p, member)
}

// forget drops the state's copy of a left existing cluster's kubeconfig once its teardown is
// done (the payload says when this is the last step that needs it).
func (d *Driver) forget(p *plan.Teardown, member string) error {
	if !p.Forget {
		return nil
	}
	if err := kube.ForgetExisting(d.cfg.Store, member); err != nil {
		return fmt.Errorf("cluster %s: forget its kubeconfig: %w", member, err)
	}
	return nil
}
