package labworld

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linode/linodego"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// answer is what a health check of url gets: the HTTP status, or "refused". Any other
// failure is returned as an error (the caller retries until its deadline).
func answer(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // a health check with verification off
	}}
	resp, err := client.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "refused", nil
	}
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return fmt.Sprint(resp.StatusCode), nil
}

// TestLabIngressFrontend: the ingress gateway Service of a lab cluster gets a NodeBalancer on a
// loopback address of its own, which answers the Istio gateway's health check (200 while the
// gateway Deployment has a replica available, 503 while not); `reconcile-lab fault ingress
// down` makes it refuse connections and `up` brings it back; deleting the Service stops it.
func TestLabIngressFrontend(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	l, err := Up(context.Background(), Options{
		Dir: filepath.Join(dir, "lab"), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		Addresses: AddressRange{First: net.IPv4(127, 0, 17, 1), Last: net.IPv4(127, 0, 17, 9)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	_, kubeconfig := createCluster(t, l, "ingress-test", 1)
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	lc := linodeClient(l)
	ctx := context.Background()
	const ns, name = "istio-system", "istio-ingressgateway"

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sel := map[string]string{"app": name, "istio": "ingressgateway"}
	one := int32(1)
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "example.invalid/proxyv2:1"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The ports of Istio's gateway chart.
	port := func(name string, p int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)}
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: sel,
			Ports: []corev1.ServicePort{port("status-port", 15021), port("http2", 80), port("https", 443)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var addr string
	var nbID int
	waitFor(t, 60*time.Second, "the gateway's NodeBalancer", func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		nbs, err := lc.ListNodeBalancers(ctx, nil)
		if err != nil {
			return false, err
		}
		in := s.Status.LoadBalancer.Ingress
		if len(nbs) != 1 || len(in) != 1 || nbs[0].IPv4 == nil || in[0].IP != *nbs[0].IPv4 {
			return false, fmt.Errorf("ingress %+v, NodeBalancers %+v", in, nbs)
		}
		addr, nbID = in[0].IP, nbs[0].ID
		return true, nil
	})
	if cs := l.Clusters(); len(cs) != 1 || addr != "127.0.17.9" || cs[0].Address != "127.0.17.1" {
		t.Fatalf("the gateway's address %s (want 127.0.17.9, the top of the range), the cluster's %v", addr, cs)
	}
	ready := "http://" + addr + ":15021/healthz/ready"
	urls := []string{ready}
	if os.Geteuid() == 0 { // ports below 1024 are skipped by a frontend that may not bind them
		urls = append(urls, "http://"+addr+"/", "https://"+addr+"/healthz/ready")
	}
	// expect waits until every url answers want.
	expect := func(want string, urls ...string) {
		t.Helper()
		for _, u := range urls {
			waitFor(t, 60*time.Second, u+" to answer "+want, func(ctx context.Context) (bool, error) {
				got, err := answer(ctx, u)
				return got == want, fmt.Errorf("answered %q (%v)", got, err)
			})
		}
	}
	expect("200", urls...)

	// Nothing available behind the Service: 503, and 200 again once it is.
	if err := SetReplicasFault(ctx, client, true); err != nil {
		t.Fatal(err)
	}
	expect("503", urls...)
	if err := SetReplicasFault(ctx, client, false); err != nil {
		t.Fatal(err)
	}
	expect("200", ready)

	// `reconcile-lab fault ingress` reaches the member through its kubeconfig, as reconcile would.
	if err := os.WriteFile(filepath.Join(dir, "kc"), kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: f}
manager: {name: m, kubeconfig: {path: ./kc}, karmada: {chart: {path: ./kc}}}
members: [{name: eu, kubeconfig: {path: ./kc}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	faultCmd := func(state, wantOut string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args := []string{"fault", "ingress", "eu", state, "-f", fleet, "--state-dir", filepath.Join(dir, "state")}
		if code := (cli{}).run(ctx, args, &out, &errOut); code != 0 || !strings.Contains(out.String(), wantOut) {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, out.String(), errOut.String(), wantOut)
		}
	}
	faultCmd("down", "Member eu: its load balancers refuse connections")
	expect("refused", urls...)
	cm, err := client.CoreV1().ConfigMaps(FaultsNamespace).Get(ctx, FaultsConfigMap, metav1.GetOptions{})
	if err != nil || cm.Data[FaultIngressKey] != IngressDown || cm.Data[FaultReplicasKey] != ReplicasAvailable {
		t.Errorf("faults ConfigMap %v (%v): want ingress down beside replicas available", cm.Data, err)
	}
	faultCmd("up", "Member eu: its load balancers answer again")
	expect("200", urls...)

	// Deleted: the NodeBalancer goes and its address stops answering.
	if err := client.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the gateway's NodeBalancer to go", func(ctx context.Context) (bool, error) {
		_, err := lc.GetNodeBalancer(ctx, nbID)
		return linodego.IsNotFound(err), fmt.Errorf("get NodeBalancer: %v", err)
	})
	expect("refused", urls...)
}
