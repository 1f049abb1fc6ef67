package main

import (
	"context"
	"strings"
	"testing"

	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/karmada"
	"github.com/reconcile-dev/reconcile/state/world"
)

// ---- phase: the Pull agent's own identity (issue 11) ----

// pullAgentIdentity checks that ap's karmada-agent reaches Karmada as system:karmada:agent:ap,
// which reads its own Cluster and nothing of the other members'; that --rotate-credentials
// gives it a new certificate and the agent comes back Ready with it; and that once ap leaves
// the fleet its certificate opens nothing, even before it expires.
func (e *e2e) pullAgentIdentity(t *testing.T) {
	full := withWeights(t, e.baseFleet, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	const apBlock = "  - name: ap\n    joinMode: Pull\n    region: ap-south\n    k8sVersion: \"1.33\"\n    pools:\n      - type: g6-standard-2\n        count: 3\n    network: network1\n"
	if !strings.Contains(full, apBlock) {
		t.Fatal("the fleet has no Pull member block for ap; update this test")
	}
	without := withWeights(t, strings.Replace(full, apBlock, "", 1), map[string]int64{"us": 2, "eu": 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*e2eWaitTimeout)
	defer cancel()
	saveByRename(t, e.fleetPath, full)
	f := e.load(t)

	cfg, cert := e.agentConfig(t, ctx, f, "ap")
	e.agentRights(t, ctx, cfg, "ap")

	// --rotate-credentials: a new certificate, the agent restarted with it and Ready.
	e.r.Plan.RotateCredentials = true
	mark := e.out.Len()
	res, err := e.pass(t, f)
	e.r.Plan.RotateCredentials = false
	if err != nil {
		t.Fatalf("the pass with --rotate-credentials failed: %v", err)
	}
	if !planChanges(res.Plan, "member/ap/join", "agent.certificate") {
		t.Errorf("the rotation plan does not renew ap's agent certificate:\n%s", e.out.From(mark))
	}
	cfg2, cert2 := e.agentConfig(t, ctx, f, "ap")
	if cert2 == cert {
		t.Error("ap's agent kept its certificate through --rotate-credentials")
	}
	e.waitMemberReady(t, ctx, "ap", "Pull")
	e.agentRights(t, ctx, cfg2, "ap")
	e.passPlansNothing(t, "after rotating the agent's certificate")

	// ap leaves: its RBAC goes, so the certificate (still unexpired) opens nothing.
	saveByRename(t, e.fleetPath, without)
	if _, err := e.pass(t, e.load(t)); err != nil {
		t.Fatalf("the pass removing ap failed: %v", err)
	}
	kcl, err := karmadaclient.NewForConfig(cfg2)
	must(t, err)
	if _, err := kcl.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("ap's agent certificate after ap left: listing Clusters gave %v, want Forbidden", err)
	}
	kk, err := kubernetes.NewForConfig(e.karmadaREST(t))
	must(t, err)
	if _, err := kk.RbacV1().ClusterRoles().Get(ctx, karmada.AgentRBAC("ap"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole %s after ap left: %v, want NotFound", karmada.AgentRBAC("ap"), err)
	}

	saveByRename(t, e.fleetPath, full)
	f = e.load(t)
	if _, err := e.pass(t, f); err != nil {
		t.Fatalf("the pass bringing ap back failed: %v", err)
	}
	e.waitMemberReady(t, ctx, "ap", "Pull")
	e.waitSplit(t, ctx, f, map[string]int32{"eu": 4, "ap": 2, "us": 4})
	e.passPlansNothing(t, "after bringing ap back")
}

// planChanges reports whether p's step addr changes field.
func planChanges(p *plan.Plan, addr, field string) bool {
	for _, s := range p.Steps {
		if s.Address != addr {
			continue
		}
		for _, c := range s.Changes {
			if c.Field == field {
				return true
			}
		}
	}
	return false
}

func (e *e2e) karmadaREST(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := e.access.KarmadaRESTConfig()
	must(t, err)
	return cfg
}

// agentConfig is the client config in member's karmada-agent kubeconfig Secret and its
// certificate.
func (e *e2e) agentConfig(t *testing.T, ctx context.Context, f *spec.Fleet, member string) (*rest.Config, string) {
	t.Helper()
	s, err := e.kubeClient(t, f, member).CoreV1().Secrets(karmada.AgentNamespace).Get(ctx, karmada.AgentKubeconfigSecret, metav1.GetOptions{})
	must(t, err)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["kubeconfig"])
	must(t, err)
	return cfg, string(cfg.CertData)
}

// agentRights checks what member's agent may do in Karmada: who it is, its own Cluster, and
// none of another member's objects.
func (e *e2e) agentRights(t *testing.T, ctx context.Context, cfg *rest.Config, member string) {
	t.Helper()
	kk, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	kcl, err := karmadaclient.NewForConfig(cfg)
	must(t, err)
	review, err := kk.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	must(t, err)
	if u := review.Status.UserInfo; u.Username != world.AgentUser(member) || !contains(u.Groups, world.AgentGroup) || contains(u.Groups, "system:masters") {
		t.Errorf("%s's agent is %s in %v, want %s in %s and not system:masters", member, u.Username, u.Groups, world.AgentUser(member), world.AgentGroup)
	}
	if _, err := kcl.ClusterV1alpha1().Clusters().Get(ctx, member, metav1.GetOptions{}); err != nil {
		t.Errorf("%s's agent cannot read its own Cluster: %v", member, err)
	}
	other := "eu"
	forbidden := map[string]error{}
	_, forbidden["get Cluster "+other] = kcl.ClusterV1alpha1().Clusters().Get(ctx, other, metav1.GetOptions{})
	_, forbidden["list Works of "+other] = kcl.WorkV1alpha1().Works(karmada.ExecutionNamespace(other)).List(ctx, metav1.ListOptions{})
	_, forbidden["get the secret of "+other] = kk.CoreV1().Secrets(karmada.ClusterNamespace).Get(ctx, other, metav1.GetOptions{})
	_, forbidden["list secrets"] = kk.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	_, forbidden["list PropagationPolicies"] = kcl.PolicyV1alpha1().PropagationPolicies("").List(ctx, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s's agent may %s: %v, want Forbidden", member, what, err)
		}
	}
}
