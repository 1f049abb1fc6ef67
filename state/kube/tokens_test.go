package kube

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/reconcile-dev/reconcile/state/world"
)

func TestTokenGeneration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		gen  int
		ok   bool
	}{
		{"karmada-us", 0, true},
		{"karmada-us.1", 1, true},
		{"karmada-us.12", 12, true},
		{"karmada-us.0", 0, false},
		{"karmada-us.01", 0, false},
		{"karmada-us.", 0, false},
		{"karmada-us.x", 0, false},
		{"karmada-us-2", 0, false}, // member us-2's first token, not us's
		{"karmada-u", 0, false},
	}
	for _, tc := range tests {
		gen, ok := TokenGeneration("karmada-us", tc.name)
		if gen != tc.gen || ok != tc.ok {
			t.Errorf("TokenGeneration(karmada-us, %q) = %d, %v; want %d, %v", tc.name, gen, ok, tc.gen, tc.ok)
		}
		if ok {
			if back := TokenSecretName("karmada-us", gen); back != tc.name {
				t.Errorf("TokenSecretName(karmada-us, %d) = %q, want %q", gen, back, tc.name)
			}
		}
	}
}

func tokenSecret(name, sa string, filled bool, labels map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels,
		Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}}, Type: corev1.SecretTypeServiceAccountToken}
	if filled {
		s.Data = map[string][]byte{corev1.ServiceAccountTokenKey: []byte("t-" + name), corev1.ServiceAccountRootCAKey: []byte("ca")}
	}
	return s
}

func TestListTokens(t *testing.T) {
	t.Parallel()
	ours := map[string]string{world.FleetLabel: "f", world.ManagedByLabel: world.ManagedByValue}
	other := map[string]string{world.FleetLabel: "other"}
	cs := fake.NewClientset(
		tokenSecret("sa", "sa", true, ours),
		tokenSecret("sa.2", "sa", true, ours),
		tokenSecret("sa.10", "sa", false, ours), // made, not filled yet
		tokenSecret("sa.3", "sa", true, other),  // another fleet's: never ours
		tokenSecret("sa.4", "other-sa", true, ours),
		tokenSecret("sa-x", "sa", true, ours),
	)
	toks, err := ListTokens(context.Background(), cs, "ns", "sa", "sa", "f")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range toks.Secrets {
		names = append(names, s.Name)
	}
	if want := []string{"sa", "sa.2", "sa.10"}; !reflect.DeepEqual(names, want) {
		t.Errorf("secrets = %v, want %v (by generation)", names, want)
	}
	if cur := toks.Current(); cur == nil || cur.Name != "sa.2" {
		t.Errorf("current = %v, want sa.2 (the newest filled)", cur)
	}
	if n := toks.Newest(); n == nil || n.Name != "sa.10" {
		t.Errorf("newest = %v, want sa.10", n)
	}
	if got := toks.Older(); !reflect.DeepEqual(got, []string{"sa"}) {
		t.Errorf("older = %v, want [sa]", got)
	}
	if got := toks.Next(); got != "sa.11" {
		t.Errorf("next = %q, want sa.11", got)
	}
	if got := (Tokens{Base: "sa"}).Next(); got != "sa" {
		t.Errorf("next with none = %q, want sa", got)
	}
}
