package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
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

// EnsureReaderToken creates the service-account-token Secret of istio-reader-service-account
// (the base chart creates the account) and waits until the token controller filled it.
func (d *Driver) EnsureReaderToken(ctx context.Context, f *spec.Fleet, member string) error {
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	secrets := c.kube.CoreV1().Secrets(planner.MeshNamespace)
	s, err := secrets.Get(ctx, ReaderTokenSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if s != nil && ReaderTokenFingerprint(s) != "" {
		return nil
	}
	if s != nil && (s.Type != corev1.SecretTypeServiceAccountToken || s.Annotations[corev1.ServiceAccountNameKey] != ReaderServiceAcct) {
		// The type cannot change in place.
		if err := secrets.Delete(ctx, ReaderTokenSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %s: replace %s: %w", member, ReaderTokenSecret, err)
		}
		s = nil
	}
	if s == nil {
		// Without its account the token controller would delete the secret again.
		if _, err := c.kube.CoreV1().ServiceAccounts(planner.MeshNamespace).Get(ctx, ReaderServiceAcct, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return state.Transient(fmt.Errorf("cluster %s: no service account %s/%s yet (the Istio base chart creates it)", member, planner.MeshNamespace, ReaderServiceAcct), 5*time.Second)
			}
			return fmt.Errorf("cluster %s: %w", member, err)
		}
		apply := corev1ac.Secret(ReaderTokenSecret, planner.MeshNamespace).
			WithType(corev1.SecretTypeServiceAccountToken).
			WithLabels(map[string]string{ManagedByLabel: ManagedBy}).
			WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: ReaderServiceAcct})
		if _, err := secrets.Apply(ctx, apply, applyOpts()); err != nil {
			return fmt.Errorf("cluster %s: secret %s: %w", member, ReaderTokenSecret, err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, d.timeout(f), true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, ReaderTokenSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ReaderTokenFingerprint(s) != "", err
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: reader token not filled: %w", member, err), 0)
	}
	return nil
}

// endpoint is the API URL other members reach member's API at: the member's apiEndpoint
// override, else its kubeconfig's server (as the planner reads it from the world).
func (d *Driver) endpoint(f *spec.Fleet, member string, c *clients) string {
	if m, ok := f.Member(member); ok && m.APIEndpoint != "" {
		return m.APIEndpoint
	}
	return c.rest.Host
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

// EnsureRemoteSecret writes istio-remote-secret-<from> into member in: a kubeconfig for
// from's istio-reader token (never an admin credential), labelled for istiod's secret
// controller and annotated with its fingerprint.
func (d *Driver) EnsureRemoteSecret(ctx context.Context, f *spec.Fleet, in, from string) error {
	if in == from {
		return fmt.Errorf("a member does not get a remote secret for itself (%s)", in)
	}
	src, err := d.connect(f, from)
	if err != nil {
		return err
	}
	tok, err := src.kube.CoreV1().Secrets(planner.MeshNamespace).Get(ctx, ReaderTokenSecret, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: %w", from, err)
	}
	tokenFP := ReaderTokenFingerprint(tok)
	if tokenFP == "" {
		return state.Transient(fmt.Errorf("cluster %s: the istio-reader token is not there or not filled", from), 5*time.Second)
	}
	endpoint := d.endpoint(f, from, src)
	kubeconfig, err := RemoteKubeconfig(from, endpoint, tok.Data[corev1.ServiceAccountRootCAKey], tok.Data[corev1.ServiceAccountTokenKey])
	if err != nil {
		return err
	}
	fp := world.RemoteSecretFingerprint(endpoint, tokenFP)

	dst, err := d.connect(f, in)
	if err != nil {
		return err
	}
	secrets := dst.kube.CoreV1().Secrets(planner.MeshNamespace)
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
	apply := corev1ac.Secret(name, planner.MeshNamespace).
		WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{MultiClusterLabel: "true", ManagedByLabel: ManagedBy}).
		WithAnnotations(map[string]string{ClusterAnnotation: from, FingerprintAnnot: fp}).
		WithData(map[string][]byte{from: kubeconfig})
	if _, err := secrets.Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: secret %s: %w", in, name, err)
	}
	d.cfg.Log.Info("remote secret written", "cluster", in, "peer", from)
	return nil
}

// DeleteRemoteSecret removes istio-remote-secret-<from> from member in, confirmed gone.
func (d *Driver) DeleteRemoteSecret(ctx context.Context, f *spec.Fleet, in, from string) error {
	c, err := d.connect(f, in)
	if err != nil {
		return err
	}
	return deleteSecret(ctx, c.kube, in, RemoteSecretName(from), d.timeout(f))
}

// deleteSecret deletes a secret of istio-system and waits until it is gone.
func deleteSecret(ctx context.Context, cs kubernetes.Interface, cluster, name string, timeout time.Duration) error {
	secrets := cs.CoreV1().Secrets(planner.MeshNamespace)
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

// Teardown takes the mesh out of a member that left the fleet. Its remote secrets, reader
// token, cacerts and Gateway go, then the three mesh releases are uninstalled and the
// istio-system namespace is deleted, confirmed gone. The releases go too because an istiod
// left without its cacerts and peers would fall back to a self-signed CA: a half-mesh
// nobody manages. The other members' secrets for it are separate DeleteRemoteSecret steps.
func (d *Driver) Teardown(ctx context.Context, f *spec.Fleet, member string) error {
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	timeout := d.timeout(f)
	secrets, err := c.kube.CoreV1().Secrets(planner.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if secrets != nil {
		for _, s := range secrets.Items {
			if err := deleteSecret(ctx, c.kube, member, s.Name, timeout); err != nil {
				return err
			}
		}
	}
	err = c.dyn.Resource(GatewayResource).Namespace(planner.MeshNamespace).Delete(ctx, GatewayName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: delete gateway: %w", member, err)
	}
	if d.cfg.Helm != nil {
		h, err := d.cfg.Helm(c.rest)
		if err != nil {
			return fmt.Errorf("cluster %s: helm: %w", member, err)
		}
		for _, comp := range []string{planner.ComponentEastWest, planner.ComponentIstiod, planner.ComponentBase} {
			if err := h.Uninstall(ctx, planner.MeshReleaseName(comp), planner.MeshNamespace); err != nil {
				return fmt.Errorf("cluster %s: uninstall %s: %w", member, planner.MeshReleaseName(comp), err)
			}
		}
	}
	nss := c.kube.CoreV1().Namespaces()
	if err := nss.Delete(ctx, planner.MeshNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: delete namespace %s: %w", member, planner.MeshNamespace, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := nss.Get(ctx, planner.MeshNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: namespace %s not gone: %w", member, planner.MeshNamespace, err), 0)
	}
	d.cfg.Log.Info("mesh torn down", "cluster", member)
	return nil
}
