package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/planner"
)

// istiodWebhooksTimeout bounds the wait for the gateways' Pods (created through istiod's
// injection webhook) and for istiod to turn its validation webhook to Fail.
const istiodWebhooksTimeout = 2 * time.Minute

// checkIstiodThroughAPIServer checks, in every member, what needs the API server to reach
// istiod's Pod through the cluster's pod network, as in a real cluster:
//   - the east-west gateway's Pods exist and were injected by istiod's webhook (the Pods of
//     Istio's gateway chart are selected for injection, with failurePolicy Fail: without a
//     reachable istiod none could be created), and the gateway Deployment is available;
//   - istiod turned its validating webhook to failurePolicy Fail, which it does only once a
//     request through the API server reached its webhook;
//   - istiod's debug API answers through the API server's pods/proxy subresource (what an
//     operator's `kubectl get --raw .../pods/istiod-...:15014/proxy/debug/clusterz` reads), with
//     every other member synced.
func checkIstiodThroughAPIServer(t *testing.T, ctx context.Context, clients map[string]kubernetes.Interface) {
	t.Helper()
	names := make([]string, 0, len(clients))
	for m := range clients {
		names = append(names, m)
	}
	sort.Strings(names)
	gw := planner.MeshReleaseName(planner.ComponentEastWest)
	for _, m := range names {
		c := clients[m]
		why := ""
		ok := waitCond(ctx, istiodWebhooksTimeout, 250*time.Millisecond, func() bool {
			d, err := c.AppsV1().Deployments(planner.MeshNamespace).Get(ctx, gw, metav1.GetOptions{})
			if err != nil {
				why = err.Error()
				return false
			}
			if d.Status.AvailableReplicas < 1 {
				why = fmt.Sprintf("deployment %s: %d available; conditions %v", gw, d.Status.AvailableReplicas, d.Status.Conditions)
				return false
			}
			return true
		})
		if !ok {
			rs, _ := c.AppsV1().ReplicaSets(planner.MeshNamespace).List(ctx, metav1.ListOptions{})
			var failures []string
			for _, r := range rs.Items {
				for _, cond := range r.Status.Conditions {
					failures = append(failures, r.Name+": "+cond.Message)
				}
			}
			t.Fatalf("%s: the east-west gateway never became available: %s; ReplicaSet conditions: %v", m, why, failures)
		}
		pods, err := c.CoreV1().Pods(planner.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + gw})
		must(t, err)
		if len(pods.Items) == 0 {
			t.Fatalf("%s: no Pod of %s", m, gw)
		}
		for _, p := range pods.Items {
			if !injected(p) {
				t.Errorf("%s: Pod %s was not injected by istiod (annotations %v, containers %v)", m, p.Name, p.Annotations, images(p))
			}
		}

		// istiod's validation webhook, Fail once istiod checked it answers through the API server.
		var policies []string
		waitCond(ctx, istiodWebhooksTimeout, 250*time.Millisecond, func() bool {
			vwcs, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
			if err != nil || len(vwcs.Items) == 0 {
				return false
			}
			policies = policies[:0]
			all := true
			for _, v := range vwcs.Items {
				for _, w := range v.Webhooks {
					p := "unset"
					if w.FailurePolicy != nil {
						p = string(*w.FailurePolicy)
					}
					policies = append(policies, v.Name+"/"+w.Name+"="+p)
					all = all && w.FailurePolicy != nil && *w.FailurePolicy == admissionregistrationv1.Fail
				}
			}
			return all
		})
		for _, p := range policies {
			if !strings.HasSuffix(p, "="+string(admissionregistrationv1.Fail)) {
				t.Errorf("%s: istiod's validating webhook %s (istiod sets Fail once it answers through the API server)", m, p)
			}
		}

		// istiod's /debug/clusterz through the API server's pod proxy.
		ipods, err := c.CoreV1().Pods(planner.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		must(t, err)
		if len(ipods.Items) == 0 {
			t.Fatalf("%s: no istiod Pod", m)
		}
		var entries []labworld.ClusterzEntry
		var body []byte
		waitCond(ctx, 30*time.Second, 250*time.Millisecond, func() bool {
			body, err = c.CoreV1().RESTClient().Get().Namespace(planner.MeshNamespace).Resource("pods").
				Name(ipods.Items[0].Name + ":15014").SubResource("proxy").Suffix("debug/clusterz").DoRaw(ctx)
			return err == nil && json.Unmarshal(body, &entries) == nil
		})
		synced := 0
		for _, e := range entries {
			if e.ID != m && e.SyncStatus == "synced" {
				synced++
			}
		}
		if synced != len(names)-1 {
			t.Errorf("%s: /debug/clusterz through the API server's pod proxy: %v %s", m, err, body)
		}
		t.Logf("%s: gateway %s available with %d injected Pod(s); validation webhooks %v; clusterz via pods/proxy: %d remote synced",
			m, gw, len(pods.Items), policies, synced)
	}
}

// injected says whether istiod's injector mutated the Pod: it records what it did in the
// sidecar.istio.io/status annotation.
func injected(p corev1.Pod) bool {
	return p.Annotations["sidecar.istio.io/status"] != ""
}

func images(p corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name+"="+c.Image)
	}
	return out
}
