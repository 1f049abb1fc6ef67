package karmada

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

func memberToken(name, sa, fleet string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ClusterNamespace,
		Labels:      map[string]string{world.FleetLabel: fleet, world.ManagedByLabel: world.ManagedByValue},
		Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type: corev1.SecretTypeServiceAccountToken,
		Data: map[string][]byte{corev1.ServiceAccountTokenKey: []byte("token of " + name), corev1.ServiceAccountRootCAKey: []byte("ca")}}
}

func tokenNames(t *testing.T, cs *fake.Clientset, sa string) []string {
	t.Helper()
	toks, err := kube.ListTokens(context.Background(), cs, ClusterNamespace, sa, sa, "f")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range toks.Secrets {
		out = append(out, s.Name)
	}
	return out
}

// A rotation makes the next generation of a token while the one it replaces is the newest;
// a retried rotation (its new generation newest already) makes no other, and a join that
// rotates nothing makes none.
func TestEnsureTokenRotates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := fake.NewClientset(memberToken("karmada-us", "karmada-us", "f"))
	d := New(Config{Fleet: "f"})
	if err := d.ensureToken(ctx, cs, "karmada-us", nil); err != nil {
		t.Fatal(err)
	}
	if got := tokenNames(t, cs, "karmada-us"); !reflect.DeepEqual(got, []string{"karmada-us"}) {
		t.Fatalf("without a rotation: %v", got)
	}
	for range 2 {
		if err := d.ensureToken(ctx, cs, "karmada-us", []string{"karmada-us"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tokenNames(t, cs, "karmada-us"); !reflect.DeepEqual(got, []string{"karmada-us", "karmada-us.1"}) {
		t.Errorf("after a rotation and its retry: %v, want the first and one new generation", got)
	}
	s, err := cs.CoreV1().Secrets(ClusterNamespace).Get(ctx, "karmada-us.1", metav1.GetOptions{})
	if err != nil || s.Type != corev1.SecretTypeServiceAccountToken || s.Annotations[corev1.ServiceAccountNameKey] != "karmada-us" ||
		!world.OwnedBy(s.Labels, "f") {
		t.Errorf("the new generation is not a token secret of the account with the fleet's mark: %+v (%v)", s, err)
	}
}

// Old tokens are deleted only when they are the fleet's and not the ones Karmada was given.
func TestRetireTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := fake.NewClientset(
		memberToken("karmada-us", "karmada-us", "f"),
		memberToken("karmada-us.1", "karmada-us", "f"),
		memberToken("karmada-impersonator", ImpersonatorSA, "other"), // another fleet's
		memberToken("karmada-impersonator.1", ImpersonatorSA, "f"),
	)
	d := New(Config{Fleet: "f", JoinTimeout: 10 * time.Second})
	err := d.retireTokens(ctx, cs, "us", []string{"karmada-us.1"}, "karmada-us.1", "karmada-impersonator.1")
	if err == nil || !strings.Contains(err.Error(), "is the one Karmada now holds") {
		t.Errorf("retiring the token Karmada holds: %v, want a refusal", err)
	}
	if err := d.retireTokens(ctx, cs, "us", []string{"karmada-impersonator", "karmada-us"}, "karmada-us.1", "karmada-impersonator.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ClusterNamespace).Get(ctx, "karmada-us", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old token is still there: %v", err)
	}
	for _, keep := range []string{"karmada-us.1", "karmada-impersonator", "karmada-impersonator.1"} {
		if _, err := cs.CoreV1().Secrets(ClusterNamespace).Get(ctx, keep, metav1.GetOptions{}); err != nil {
			t.Errorf("%s was deleted: %v", keep, err)
		}
	}
}
