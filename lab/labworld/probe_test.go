package labworld

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The prober probes a Pod's httpGet readiness probe (port by name) through the pod network
// and keeps the kubelet's thresholds: ready after successThreshold passes in a row, unready
// only after failureThreshold failures in a row; an unrouted Pod is not ready.
func TestProber(t *testing.T) {
	var healthy atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" || !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	n, err := StartPodNetwork(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istiod-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery",
			Ports: []corev1.ContainerPort{{Name: "http-debug", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromString("http-debug")}}, PeriodSeconds: 3, SuccessThreshold: 1, FailureThreshold: 2},
		}}}}
	p := &prober{network: n, failures: map[string]int{}, passes: map[string]int{}, ready: map[string]bool{}}
	ctx := context.Background()
	if got := p.period(pod); got.Seconds() != 3 {
		t.Errorf("period %v, want 3s", got)
	}
	if why := p.check(ctx, pod, "10.3.1.1"); why == "" {
		t.Fatal("ready with no route to the Pod")
	}
	n.Route("10.3.1.1", 8080, ln.Addr().String())
	if why := p.check(ctx, pod, "10.3.1.1"); why == "" {
		t.Fatal("ready while /ready answers 503")
	}
	healthy.Store(true)
	if why := p.check(ctx, pod, "10.3.1.1"); why != "" {
		t.Fatalf("not ready after a pass: %s", why)
	}
	healthy.Store(false)
	if why := p.check(ctx, pod, "10.3.1.1"); why != "" {
		t.Fatalf("unready after one failure of failureThreshold 2: %s", why)
	}
	if why := p.check(ctx, pod, "10.3.1.1"); why == "" {
		t.Fatal("still ready after failureThreshold failures")
	}
	p.forget("istio-system/istiod-1")
	if len(p.ready)+len(p.passes)+len(p.failures) != 0 {
		t.Error("forget left state")
	}
}
