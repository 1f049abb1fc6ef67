package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	"github.com/reconcile-dev/reconcile/state/progress"
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

// readerToken makes sure the payload's service account (the base chart creates it) has a
// filled token Secret of the fleet's: a create makes the first one (named p.Secret) when there
// is none, a replace makes the next generation while p.Replaces is still the newest, and both
// wait until the token controller filled the newest. A delete retires the older ones.
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
	toks, err := kube.ListTokens(ctx, c.kube, ns, p.Secret, p.ServiceAccount, d.cfg.Fleet)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if s.Action == plan.Delete {
		return d.retireReaderTokens(ctx, c.kube, member, ns, toks, p.Retire)
	}
	name := ""
	switch newest := toks.Newest(); {
	case newest == nil:
		if err := d.firstReaderToken(ctx, c.kube, member, ns, p); err != nil {
			return err
		}
	case s.Action == plan.Replace && newest.Name == p.Replaces:
		name = toks.Next()
		if err := d.applyReaderToken(ctx, c.kube, member, ns, name, p.ServiceAccount); err != nil {
			return err
		}
		d.cfg.Log.Info("new istio-reader token generation", "cluster", member, "secret", ns+"/"+name, "replaces", p.Replaces)
	}
	w := progress.Start(ctx, d.cfg.Log, "the istio-reader token in "+member+" to be filled", d.cfg.Timeout)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d.cfg.Timeout, true, func(ctx context.Context) (bool, error) {
		toks, err := kube.ListTokens(ctx, c.kube, ns, p.Secret, p.ServiceAccount, d.cfg.Fleet)
		if err != nil {
			w.Set(err.Error())
			return false, err
		}
		newest := toks.Newest()
		return newest != nil && (name == "" || newest.Name == name) && ReaderTokenFingerprint(newest) != "", nil
	})
	w.End()
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: reader token not filled: %w", member, err), 0)
	}
	return nil
}

// firstReaderToken makes p.Secret, the first reader token Secret, replacing a Secret of that
// name that is not a token of the account (the type cannot change in place).
func (d *Driver) firstReaderToken(ctx context.Context, cs kubernetes.Interface, member, ns string, p *plan.ReaderToken) error {
	secrets := cs.CoreV1().Secrets(ns)
	sec, err := secrets.Get(ctx, p.Secret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sec = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if sec != nil && (sec.Type != corev1.SecretTypeServiceAccountToken || sec.Annotations[corev1.ServiceAccountNameKey] != p.ServiceAccount) {
		if !world.OwnedBy(sec.Labels, d.cfg.Fleet) {
			return fmt.Errorf("cluster %s: secret %s/%s is not the fleet's and not a token of %s: it is left alone", member, ns, p.Secret, p.ServiceAccount)
		}
		if err := secrets.Delete(ctx, p.Secret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %s: replace %s: %w", member, p.Secret, err)
		}
	}
	return d.applyReaderToken(ctx, cs, member, ns, p.Secret, p.ServiceAccount)
}

// applyReaderToken writes the token Secret name of service account sa; the token controller
// fills it.
func (d *Driver) applyReaderToken(ctx context.Context, cs kubernetes.Interface, member, ns, name, sa string) error {
	// Without its account the token controller would delete the secret again.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return state.Transient(fmt.Errorf("cluster %s: no service account %s/%s yet (the Istio base chart creates it)", member, ns, sa), 5*time.Second)
		}
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	apply := corev1ac.Secret(name, ns).
		WithType(corev1.SecretTypeServiceAccountToken).
		WithLabels(d.labels(nil)).
		WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: sa})
	if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: secret %s: %w", member, name, err)
	}
	return nil
}

// retireReaderTokens deletes the reader token Secrets named in retire, once the remote
// secrets (the steps this one depends on) hold the current token: each only while it is a
// token of the fleet's older than the current one, confirmed gone. Its token stops working.
func (d *Driver) retireReaderTokens(ctx context.Context, cs kubernetes.Interface, member, ns string, toks kube.Tokens, retire []string) error {
	cur := toks.Current()
	if cur == nil {
		return fmt.Errorf("cluster %s: no filled istio-reader token: none is retired", member)
	}
	older := toks.Older()
	for _, r := range retire {
		switch {
		case r == cur.Name:
			return fmt.Errorf("cluster %s: %s/%s is the current istio-reader token: it is not retired", member, ns, r)
		case !slices.Contains(older, r):
			continue // gone already, or not an older token of the fleet's: left alone
		}
		if err := deleteSecret(ctx, cs, member, ns, r, d.cfg.Timeout); err != nil {
			return err
		}
		d.cfg.Log.Info("old istio-reader token retired", "cluster", member, "secret", ns+"/"+r)
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
// fingerprint. The token is the current one (the newest filled of the fleet's). It writes
// nothing when the secret is already so.
func (d *Driver) writeRemoteSecret(ctx context.Context, in, from, ns, endpoint string) error {
	src, err := d.connect(from)
	if err != nil {
		return err
	}
	toks, err := kube.ListTokens(ctx, src.kube, ns, ReaderTokenSecret, ReaderServiceAcct, d.cfg.Fleet)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", from, err)
	}
	tok := toks.Current()
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
	w := progress.Start(ctx, d.cfg.Log, "namespace "+ns+" of "+member+" to be deleted", timeout)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		live, err := nss.Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			w.Set("phase " + string(live.Status.Phase))
		}
		return false, err
	})
	w.End()
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
