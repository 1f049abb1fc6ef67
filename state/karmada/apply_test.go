package karmada

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// step is a hand-built plan step of the Karmada driver.
func step(kind plan.Kind, action plan.Action, cluster string, p plan.Payload) plan.Step {
	return plan.Step{Address: "test/" + cluster + "/" + string(kind), Kind: kind, Action: action, Cluster: cluster, Payload: p}
}

// unreachableDriver fails the test on any Helm client or chart load: the steps given to it
// must be refused before anything is reached.
func unreachableDriver(t *testing.T) *Driver {
	t.Helper()
	return New(Config{
		Helm: func(*rest.Config) (HelmClient, error) {
			t.Error("a Helm client was made for a refused step")
			return nil, errors.New("no helm")
		},
		LoadChart: func(context.Context, spec.ChartSource, string, string) (*chart.Chart, error) {
			t.Error("a chart was loaded for a refused step")
			return nil, errors.New("no chart")
		},
	})
}

func karmadaRelease(values map[string]any) *plan.Release {
	return &plan.Release{Name: "karmada", Namespace: "karmada-system", Chart: spec.ChartSource{Repo: "https://charts.example.invalid/karmada"},
		ChartName: "karmada", Values: values, Timeout: spec.Duration{Duration: time.Minute}, Wait: true, WaitForJobs: true, CreateNamespace: true}
}

// A release whose values hold what a plan only shows is a planner bug: refused, for good,
// before anything is installed.
func TestReleaseWithPlaceholderRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		path   string
	}{
		{"known after apply in a list", map[string]any{"certs": map[string]any{"auto": map[string]any{
			"hosts": []any{"localhost", plan.KnownAfterApply}}}}, "certs.auto.hosts[1]"},
		{"sensitive", map[string]any{"agent": map[string]any{"kubeconfig": map[string]any{"key": plan.Sensitive}}}, "agent.kubeconfig.key"},
		{"inside a string", map[string]any{"server": "https://" + plan.KnownAfterApply + ":32443"}, "server"},
		{"unresolved reference", map[string]any{"server": plan.Value{From: &plan.Ref{Step: "a", Output: "b"}}}, "server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := unreachableDriver(t)
			_, err := d.Apply(context.Background(), step(plan.KindKarmadaRelease, plan.Create, "mgr",
				plan.Payload{Release: karmadaRelease(tc.values)}))
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("error %v; want a refusal naming %s", err, tc.path)
			}
			if retry, _ := executor.Retryable(err); retry {
				t.Errorf("error %v is retryable; a planner bug is terminal", err)
			}
		})
	}
	t.Run("unresolved refs", func(t *testing.T) {
		t.Parallel()
		rel := karmadaRelease(map[string]any{})
		rel.Refs = []plan.ValueRef{{Path: []string{"x"}, From: plan.Ref{Step: "a", Output: "b"}}}
		_, err := unreachableDriver(t).Apply(context.Background(), step(plan.KindKarmadaRelease, plan.Create, "mgr", plan.Payload{Release: rel}))
		if retry, _ := executor.Retryable(err); err == nil || retry {
			t.Fatalf("error %v; want a terminal refusal", err)
		}
	})
}

// Steps no correct planner makes are refused for good, before reaching anything.
func TestMalformedStepsRefused(t *testing.T) {
	t.Parallel()
	pull := &plan.Join{Mode: spec.Pull, APIEndpoint: plan.Known("https://eu:6443"),
		Agent: &plan.Release{Name: AgentRelease, Namespace: AgentNamespace, Values: map[string]any{"agent": map[string]any{
			"kubeconfig": map[string]any{"caCrt": plan.Sensitive}}}}, Manager: "mgr", CertSecret: "karmada-system/karmada-cert"}
	tests := []struct {
		name string
		s    plan.Step
		want string
	}{
		{"unknown kind", step(plan.KindRootCA, plan.Create, "mgr", plan.Payload{}), "does not apply"},
		{"no cluster", step(plan.KindNodeAddress, plan.Wait, "", plan.Payload{}), "names no cluster"},
		{"node address not a wait", step(plan.KindNodeAddress, plan.Create, "mgr", plan.Payload{}), "action"},
		{"unjoin not a delete", step(plan.KindUnjoin, plan.Update, "eu", plan.Payload{Unjoin: &plan.Unjoin{}}), "action"},
		{"release without payload", step(plan.KindKarmadaRelease, plan.Update, "mgr", plan.Payload{}), "no payload"},
		{"join without payload", step(plan.KindJoin, plan.Create, "eu", plan.Payload{}), "no payload"},
		{"unjoin without payload", step(plan.KindUnjoin, plan.Delete, "eu", plan.Payload{}), "no payload"},
		{"kubeconfig with an unresolved server", step(plan.KindKarmadaKubeconfig, plan.Create, "mgr", plan.Payload{
			KarmadaKubeconfig: &plan.KarmadaKubeconfig{Release: "karmada", Namespace: "karmada-system",
				Server: plan.Value{From: &plan.Ref{Step: "manager/mgr/node-address", Output: plan.OutputNodeIP}}}}), "unresolved"},
		{"push join without endpoint", step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: &plan.Join{Mode: spec.Push}}), "empty"},
		{"join without mode", step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: &plan.Join{APIEndpoint: plan.Known("https://eu")}}), "join mode"},
		{"pull join without agent", step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: &plan.Join{Mode: spec.Pull,
			APIEndpoint: plan.Known("https://eu"), Manager: "mgr", CertSecret: "karmada-system/karmada-cert"}}), "no agent"},
		{"pull join with a placeholder", step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: pull}), "agent.kubeconfig.caCrt"},
		{"pull join without certificate secret", step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: &plan.Join{Mode: spec.Pull,
			Agent: &plan.Release{Name: AgentRelease, Namespace: AgentNamespace}, Manager: "mgr", CertSecret: "karmada-cert"}}), "certificate secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := unreachableDriver(t).Apply(context.Background(), tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one saying %q", err, tc.want)
			}
			if retry, _ := executor.Retryable(err); retry {
				t.Errorf("error %v is retryable", err)
			}
			if out != nil {
				t.Errorf("outputs %v with an error", out)
			}
		})
	}
}

// The agent's credentials go into a copy of the payload's values, never into the plan.
func TestWithAgentCredentialsCopies(t *testing.T) {
	t.Parallel()
	values := map[string]any{"installMode": "agent", "agent": map[string]any{"clusterName": "eu",
		"kubeconfig": map[string]any{"server": "https://192.0.2.1:32443"}}}
	before := plan.DeepCopyValues(values)
	got, err := withAgentCredentials(values, "CA", "CRT", "KEY")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"installMode": "agent", "agent": map[string]any{"clusterName": "eu",
		"kubeconfig": map[string]any{"server": "https://192.0.2.1:32443", "caCrt": "CA", "crt": "CRT", "key": "KEY"},
		// The agent restarts when its certificate changes.
		"podAnnotations": map[string]any{AgentCredentialAnnotation: agentCredentialFingerprint([]byte("CRT"))}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values with credentials %v, want %v", got, want)
	}
	if !reflect.DeepEqual(values, before) {
		t.Errorf("the payload's values changed: %v", values)
	}
	if got, err := withAgentCredentials(nil, "CA", "CRT", "KEY"); err != nil ||
		got["agent"].(map[string]any)["kubeconfig"].(map[string]any)["key"] != "KEY" {
		t.Errorf("no values: %v, %v", got, err)
	}
	if _, err := withAgentCredentials(map[string]any{"agent": "x"}, "CA", "CRT", "KEY"); err == nil {
		t.Error("agent that is no map: no error")
	}
}

func TestWaitNodeIP(t *testing.T) {
	t.Parallel()
	ext := corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "192.0.2.7"}
	t.Run("ready node", func(t *testing.T) {
		t.Parallel()
		n := node("a", true, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.9"})
		ip, err := waitNodeIP(context.Background(), nil, fake.NewClientset(&n), "mgr", time.Minute)
		if err != nil || ip != "10.0.0.9" {
			t.Errorf("waitNodeIP = %q, %v; want 10.0.0.9", ip, err)
		}
	})
	t.Run("waits for the node to become Ready", func(t *testing.T) {
		t.Parallel()
		n := node("a", false, ext)
		kc := fake.NewClientset(&n)
		go func() {
			time.Sleep(500 * time.Millisecond)
			ready := node("a", true, ext)
			if _, err := kc.CoreV1().Nodes().UpdateStatus(context.Background(), &ready, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		ip, err := waitNodeIP(context.Background(), nil, kc, "mgr", time.Minute)
		if err != nil || ip != "192.0.2.7" {
			t.Fatalf("waitNodeIP = %q, %v; want 192.0.2.7", ip, err)
		}
		if time.Since(start) < 400*time.Millisecond {
			t.Errorf("returned after %s, before the node was Ready", time.Since(start))
		}
	})
	t.Run("a long wait says what it awaits", func(t *testing.T) {
		t.Parallel()
		var buf syncBuffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		ctx := progress.WithInterval(progress.WithStep(context.Background(), "managers/mgr/node-address"), 100*time.Millisecond)
		n := node("a", false, ext)
		_, err := waitNodeIP(ctx, log, fake.NewClientset(&n), "mgr", 600*time.Millisecond)
		if err == nil {
			t.Fatal("a node never Ready: no error")
		}
		out := buf.String()
		for _, want := range []string{"level=INFO", `msg="waiting for a Ready node of mgr with an address: `, " of 600ms, none of its 1 nodes is Ready",
			"step=managers/mgr/node-address", "bound=600ms"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("timeout is retryable", func(t *testing.T) {
		t.Parallel()
		n := node("a", false, ext)
		_, err := waitNodeIP(context.Background(), nil, fake.NewClientset(&n), "mgr", 300*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "a Ready node of mgr") {
			t.Fatalf("error %v; want a timeout naming the Ready node of mgr", err)
		}
		if retry, _ := executor.Retryable(err); !retry {
			t.Errorf("timeout %v is not retryable", err)
		}
	})
}

// syncBuffer is a log destination the reporting goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
