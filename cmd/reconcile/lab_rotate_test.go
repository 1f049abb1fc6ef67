package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/karmada"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// rotateWaitTimeout bounds the waits after the rotation: the API server rejecting a deleted
// token, Karmada reporting a member Ready.
const rotateWaitTimeout = time.Minute

// Credential rotation in the lab: a fleet of two Push members with the mesh converges; one
// `--once --rotate-credentials` pass replaces every Karmada token and istio-reader token. The
// old token Secrets are gone and the member's API server rejects their tokens (401); Karmada's
// cluster secrets hold the new tokens, which work, and the members stay Ready; every remote
// secret's kubeconfig authenticates against its cluster as the reader; the next pass plans
// nothing.
func TestLabTokenRotation(t *testing.T) {
	labtest.KarmadaBinaries(t)
	lf := upLab(t, net.IPv4(127, 0, 8, 10), net.IPv4(127, 0, 8, 60), 100*time.Millisecond)
	dir, fleetDir := lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	const fleet = "lab-rotate"
	members := []string{"ap", "eu"}
	lf.writeMeshFleet(t, fleetPath, fleet)
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 3*e2ePassTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	pass := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		return run(ctx, append(args, "--state-dir", stateDir, "-f", fleetPath), &stdout, &stderr)
	}
	if code := pass("--once"); code != 0 {
		t.Fatalf("converging pass: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
	store, err := state.OpenStore(stateDir)
	must(t, err)
	access := kube.Access{Store: store, Timeout: 20 * time.Second}
	admin := map[string]*rest.Config{}
	clients := map[string]kubernetes.Interface{}
	for _, m := range members {
		cfg, err := access.RESTConfig(m)
		must(t, err)
		admin[m] = cfg
		clients[m], err = kubernetes.NewForConfig(cfg)
		must(t, err)
	}
	tokensOf := func(m string) map[string]*corev1.Secret {
		t.Helper()
		out := map[string]*corev1.Secret{}
		for _, sa := range []string{karmada.MemberSA(m), karmada.ImpersonatorSA} {
			toks, err := kube.ListTokens(ctx, clients[m], karmada.ClusterNamespace, sa, sa, fleet)
			must(t, err)
			if cur := toks.Current(); cur != nil {
				out[karmada.ClusterNamespace+"/"+sa] = cur
			}
		}
		toks, err := kube.ListTokens(ctx, clients[m], mesh.MeshNamespace, mesh.ReaderTokenSecret, mesh.ReaderServiceAcct, fleet)
		must(t, err)
		if cur := toks.Current(); cur != nil {
			out[mesh.MeshNamespace+"/"+mesh.ReaderServiceAcct] = cur
		}
		if len(out) != 3 {
			t.Fatalf("%s: want a current token for each of the three accounts, got %v", m, secretNames(out))
		}
		return out
	}
	before := map[string]map[string]*corev1.Secret{}
	for _, m := range members {
		before[m] = tokensOf(m)
		for _, s := range before[m] {
			if code := whoami(ctx, admin[m], s.Data[corev1.ServiceAccountTokenKey]); code != 0 {
				t.Fatalf("%s: the token of %s/%s does not work before the rotation: HTTP %d", m, s.Namespace, s.Name, code)
			}
		}
	}

	if code := pass("--once", "--rotate-credentials"); code != 0 {
		t.Fatalf("--once --rotate-credentials: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
	for _, want := range []string{"~ member/ap/join", "token: age ", "-/+ member/eu/mesh/reader-token",
		"- member/eu/mesh/reader-token/retire", "~ member/ap/mesh/remote-secret/eu"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the rotation's plan lacks %q:\n%s", want, stdout.String())
		}
	}

	kcfg, err := access.KarmadaRESTConfig()
	must(t, err)
	karmadaKube, err := kubernetes.NewForConfig(kcfg)
	must(t, err)
	karmadaDyn, err := dynamic.NewForConfig(kcfg)
	must(t, err)
	for _, m := range members {
		after := tokensOf(m)
		for key, old := range before[m] {
			cur := after[key]
			if cur.Name == old.Name || bytes.Equal(cur.Data[corev1.ServiceAccountTokenKey], old.Data[corev1.ServiceAccountTokenKey]) {
				t.Errorf("%s: %s was not rotated (still %s)", m, key, old.Name)
				continue
			}
			if _, err := clients[m].CoreV1().Secrets(old.Namespace).Get(ctx, old.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the old token secret %s/%s is still there (%v)", m, old.Namespace, old.Name, err)
			}
			// The API server stops taking a deleted legacy token once its cache saw the delete.
			var code int
			if !waitCond(ctx, rotateWaitTimeout, 250*time.Millisecond, func() bool {
				code = whoami(ctx, admin[m], old.Data[corev1.ServiceAccountTokenKey])
				return code == 401
			}) {
				t.Errorf("%s: the old token of %s is still taken (HTTP %d), want 401", m, key, code)
			}
			if code := whoami(ctx, admin[m], cur.Data[corev1.ServiceAccountTokenKey]); code != 0 {
				t.Errorf("%s: the new token of %s does not work: HTTP %d", m, key, code)
			}
		}
		// Karmada's cluster secrets hold the new tokens.
		for name, key := range map[string]string{m: karmada.MemberSA(m), karmada.ImpersonatorSecret(m): karmada.ImpersonatorSA} {
			s, err := karmadaKube.CoreV1().Secrets(karmada.ClusterNamespace).Get(ctx, name, metav1.GetOptions{})
			must(t, err)
			if cur := after[karmada.ClusterNamespace+"/"+key]; !bytes.Equal(s.Data["token"], cur.Data[corev1.ServiceAccountTokenKey]) {
				t.Errorf("Karmada's secret %s/%s does not hold %s's new token %s", karmada.ClusterNamespace, name, m, cur.Name)
			}
		}
		// Every remote secret for m works against m.
		for _, n := range members {
			if n == m {
				continue
			}
			s, err := clients[n].CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, mesh.RemoteSecretName(m), metav1.GetOptions{})
			must(t, err)
			cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[m])
			must(t, err)
			user, err := selfUser(ctx, cfg)
			if want := "system:serviceaccount:" + mesh.MeshNamespace + ":" + mesh.ReaderServiceAcct; err != nil || user != want {
				t.Errorf("the remote secret for %s in %s: user %q (%v), want %s", m, n, user, err, want)
			}
		}
	}
	// The members stay Ready on the new tokens: Karmada's health checks use them.
	for _, m := range members {
		var last string
		if !waitCond(ctx, rotateWaitTimeout, 250*time.Millisecond, func() bool {
			c, err := karmadaDyn.Resource(karmadaClusterGV).Get(ctx, m, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false
			}
			status, reason := clusterReady(c)
			last = "Ready=" + status + " (" + reason + ")"
			return status == "True"
		}) {
			t.Errorf("Karmada Cluster %s is not Ready after the rotation: %s", m, last)
		}
	}

	if code := pass("--once", "--detailed-exitcode"); code != 0 {
		t.Errorf("the pass after the rotation: exit %d, want 0 (nothing to do)\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
}

// whoami asks the API server at cfg's address who token is: 0 when it answers, else the
// HTTP status of the refusal (401 for a token it does not take).
func whoami(ctx context.Context, cfg *rest.Config, token []byte) int {
	c := rest.AnonymousClientConfig(cfg)
	c.BearerToken = string(token)
	if _, err := selfUser(ctx, c); err != nil {
		if s, ok := err.(apierrors.APIStatus); ok {
			return int(s.Status().Code)
		}
		return -1
	}
	return 0
}

// selfUser is the user the API server at cfg takes cfg's credentials for.
func selfUser(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

func secretNames(m map[string]*corev1.Secret) []string {
	var out []string
	for k, s := range m {
		out = append(out, k+"="+s.Name)
	}
	return out
}
