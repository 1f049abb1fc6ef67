package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/state/world"
)

// Legacy service-account token Secrets are rotated by generation: the first is named base
// (as installs before rotation have it), each later one base.<n>. A dot cannot appear in a
// member's name, so base.<n> never collides with another member's base. A new generation is
// made before consumers move to it, and the older ones are deleted only once every consumer
// holds the newest: deleting a legacy token Secret invalidates its token.

// TokenGeneration is the generation of the token Secret name, made from base: 0 for base,
// n for base.<n>; false when name is not one of base's.
func TokenGeneration(base, name string) (int, bool) {
	if name == base {
		return 0, true
	}
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok || rest == "" || strings.TrimLeft(rest, "0123456789") != "" || rest[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// TokenSecretName is the name of generation gen of base's token Secrets.
func TokenSecretName(base string, gen int) string {
	if gen == 0 {
		return base
	}
	return base + "." + strconv.Itoa(gen)
}

// TokenFilled reports whether the token controller filled the Secret (token and ca.crt).
func TokenFilled(s *corev1.Secret) bool {
	return s != nil && len(s.Data[corev1.ServiceAccountTokenKey]) > 0 && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0
}

// Tokens are the fleet's token Secrets of one service account, oldest generation first.
type Tokens struct {
	Base    string
	Secrets []corev1.Secret
}

// ListTokens reads the token Secrets of service account sa in ns that are fleet's and named
// base or base.<n>. Secrets of that name that are not the fleet's are left out.
func ListTokens(ctx context.Context, cs kubernetes.Interface, ns, base, sa, fleet string) (Tokens, error) {
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Tokens{}, fmt.Errorf("list secrets in %s: %w", ns, err)
	}
	return SelectTokens(list.Items, base, sa, fleet), nil
}

// SelectTokens is ListTokens over Secrets already read.
func SelectTokens(secrets []corev1.Secret, base, sa, fleet string) Tokens {
	t := Tokens{Base: base}
	for _, s := range secrets {
		if _, ok := TokenGeneration(base, s.Name); !ok || s.Type != corev1.SecretTypeServiceAccountToken ||
			s.Annotations[corev1.ServiceAccountNameKey] != sa || !world.OwnedBy(s.Labels, fleet) || s.DeletionTimestamp != nil {
			continue
		}
		t.Secrets = append(t.Secrets, s)
	}
	sort.Slice(t.Secrets, func(i, j int) bool { return t.gen(t.Secrets[i].Name) < t.gen(t.Secrets[j].Name) })
	return t
}

func (t Tokens) gen(name string) int {
	n, _ := TokenGeneration(t.Base, name)
	return n
}

// Current is the newest filled token Secret: the one consumers are written from; nil when
// none is filled.
func (t Tokens) Current() *corev1.Secret {
	for i := len(t.Secrets) - 1; i >= 0; i-- {
		if TokenFilled(&t.Secrets[i]) {
			return &t.Secrets[i]
		}
	}
	return nil
}

// Newest is the newest token Secret, filled or not; nil when there is none.
func (t Tokens) Newest() *corev1.Secret {
	if len(t.Secrets) == 0 {
		return nil
	}
	return &t.Secrets[len(t.Secrets)-1]
}

// Older are the names of the token Secrets older than the current one (what a rotation that
// did not finish left), oldest first; none when no token is filled.
func (t Tokens) Older() []string {
	cur := t.Current()
	if cur == nil {
		return nil
	}
	var out []string
	for _, s := range t.Secrets {
		if t.gen(s.Name) < t.gen(cur.Name) {
			out = append(out, s.Name)
		}
	}
	return out
}

// Next is the name of the generation after the newest one (base when there is none).
func (t Tokens) Next() string {
	if n := t.Newest(); n != nil {
		return TokenSecretName(t.Base, t.gen(n.Name)+1)
	}
	return t.Base
}
