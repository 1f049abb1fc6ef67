package karmada

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestCredentialHash(t *testing.T) {
	t.Parallel()
	base := CredentialHash([]byte("token"), []byte("ca"))
	tests := []struct {
		name      string
		token, ca string
		same      bool
	}{
		{"same input", "token", "ca", true},
		{"other token", "token2", "ca", false},
		{"other CA", "token", "ca2", false},
		{"boundary moved", "tokenc", "a", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := CredentialHash([]byte(tc.token), []byte(tc.ca))
			if (got == base) != tc.same {
				t.Errorf("CredentialHash(%q, %q) = %s, base %s, want same=%v", tc.token, tc.ca, got, base, tc.same)
			}
			if !strings.HasPrefix(got, "sha256:") {
				t.Errorf("hash %s lacks the sha256: prefix", got)
			}
		})
	}
}

func node(name string, ready bool, addrs ...corev1.NodeAddress) corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := corev1.Node{Status: corev1.NodeStatus{Addresses: addrs, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
	n.Name = name
	return n
}

func TestNodeIPs(t *testing.T) {
	t.Parallel()
	ext := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
	}
	in := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	tests := []struct {
		name  string
		nodes []corev1.Node
		want  []string
	}{
		{"external wins over internal", []corev1.Node{node("a", true, in("10.0.0.1"), ext("192.0.2.1"))}, []string{"192.0.2.1"}},
		{"internal when no external", []corev1.Node{node("a", true, in("10.0.0.1"))}, []string{"10.0.0.1"}},
		{"not ready skipped", []corev1.Node{node("a", false, ext("192.0.2.1")), node("b", true, ext("192.0.2.9"))}, []string{"192.0.2.9"}},
		{"sorted", []corev1.Node{node("a", true, ext("192.0.2.9")), node("b", true, ext("192.0.2.1"))}, []string{"192.0.2.1", "192.0.2.9"}},
		{"hostname is no IP", []corev1.Node{node("a", true, ext("node-a.example"))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := nodeIPs(tc.nodes); !slices.Equal(got, tc.want) {
				t.Errorf("nodeIPs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRulesEqual(t *testing.T) {
	t.Parallel()
	narrower := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"*"}}, memberRules[1]}
	tests := []struct {
		name string
		have []rbacv1.PolicyRule
		want bool
	}{
		{"same", slices.Clone(memberRules), true},
		{"narrower", narrower, false},
		{"missing the non-resource rule", memberRules[:1], false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := rulesEqual(tc.have, memberRules); got != tc.want {
				t.Errorf("rulesEqual = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPollReportsTheLastError(t *testing.T) {
	t.Parallel()
	calls := 0
	err := poll(context.Background(), nil, 300*time.Millisecond, "the thing", func(context.Context) (bool, error) {
		calls++
		return false, errors.New("Ready=False reason ClusterNotReachable")
	})
	if err == nil || !strings.Contains(err.Error(), "the thing") || !strings.Contains(err.Error(), "ClusterNotReachable") {
		t.Fatalf("poll error %v; want it to name what was awaited and the last reason", err)
	}
	if calls < 2 {
		t.Errorf("cond called %d times in 300ms", calls)
	}
	done := 0
	if err := poll(context.Background(), nil, time.Minute, "done at once", func(context.Context) (bool, error) { done++; return true, nil }); err != nil || done != 1 {
		t.Errorf("poll of a met condition: %v after %d calls", err, done)
	}
}
