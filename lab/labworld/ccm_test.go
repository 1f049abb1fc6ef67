package labworld

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

func lbService(ns, name string, uid types.UID) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid,
			Annotations: map[string]string{LoadBalancerTagsAnnotation: "team:mesh, env:lab"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 15443}}},
	}
}

// TestCloudControllerSync runs sync and collect against a fake clientset: what a pass
// creates, that a second pass and a restarted controller create nothing more, and cleanup.
func TestCloudControllerSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := linodeapi.New(linodeapi.Options{Token: "t"})
	defer api.Close()
	client := fake.NewClientset(lbService("istio-system", "eastwest", "uid-1"))
	cc := CloudController{Client: client, NodeBalancers: api, ClusterID: 433100, Region: "eu-west"}
	get := func() *corev1.Service {
		t.Helper()
		s, err := client.CoreV1().Services("istio-system").Get(ctx, "eastwest", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := cc.sync(ctx, get()); err != nil {
		t.Fatal(err)
	}
	nbs := api.NodeBalancers()
	if len(nbs) != 1 {
		t.Fatalf("NodeBalancers %+v, want one", nbs)
	}
	nb := nbs[0]
	if nb.Region != "eu-west" || nb.Label != nodeBalancerLabel(433100, "uid-1") || !strings.HasPrefix(nb.Label, "ccm-") || len(nb.Label) != 16 ||
		!slices.Equal(nb.Tags, []string{"env:lab", "lke433100", "service-uid:uid-1", "team:mesh"}) {
		t.Errorf("NodeBalancer %+v", nb)
	}
	s := get()
	if in := s.Status.LoadBalancer.Ingress; len(in) != 1 || in[0].IP != nb.IPv4 || in[0].Hostname != nb.Hostname || nb.Hostname == "" {
		t.Errorf("ingress %+v, NodeBalancer %s %s", in, nb.IPv4, nb.Hostname)
	}
	if !slices.Contains(s.Finalizers, LoadBalancerCleanupFinalizer) {
		t.Errorf("finalizers %v", s.Finalizers)
	}
	// A second pass, and a controller started afresh (the lab restarted), write nothing.
	client.ClearActions()
	restarted := CloudController{Client: client, NodeBalancers: api, ClusterID: 433100, Region: "eu-west"}
	for _, c := range []CloudController{cc, restarted} {
		if err := c.sync(ctx, get()); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("a pass with nothing to do: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if n := len(api.NodeBalancers()); n != 1 {
		t.Errorf("%d NodeBalancers after a restart, want 1", n)
	}
	// Another cluster's NodeBalancer is never touched by this one's controller.
	other, err := api.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west", Tags: []string{"lke9", "service-uid:uid-x"}})
	if err != nil {
		t.Fatal(err)
	}
	// No longer a LoadBalancer: the NodeBalancer, the status and the finalizer go.
	s = get()
	s.Spec.Type = corev1.ServiceTypeClusterIP
	if _, err := client.CoreV1().Services("istio-system").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cc.sync(ctx, get()); err != nil {
		t.Fatal(err)
	}
	if s := get(); len(s.Status.LoadBalancer.Ingress) != 0 || len(s.Finalizers) != 0 {
		t.Errorf("after the type change: ingress %+v, finalizers %v", s.Status.LoadBalancer.Ingress, s.Finalizers)
	}
	if nbs := api.NodeBalancers(); len(nbs) != 1 || nbs[0].ID != other.ID {
		t.Errorf("NodeBalancers %+v, want only the other cluster's", nbs)
	}
	// A Service that went while no controller ran: collect removes its NodeBalancer.
	if _, err := api.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west", Tags: []string{"lke433100", "service-uid:gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := cc.collect([]*corev1.Service{lbService("a", "b", "live")}, nil); err != nil {
		t.Fatal(err)
	}
	if nbs := api.NodeBalancers(); len(nbs) != 1 || nbs[0].ID != other.ID {
		t.Errorf("after collect: %+v, want only the other cluster's", nbs)
	}
	// A Service with a loadBalancerClass belongs to another controller.
	class := "example.com/other"
	svc := lbService("x", "classy", "uid-2")
	svc.Spec.LoadBalancerClass = &class
	if wantsLoadBalancer(svc) {
		t.Error("a Service with a loadBalancerClass wants a NodeBalancer")
	}
}

// TestLabCloudController: in a lab cluster (a real kube-apiserver made through the lab's
// Linode API), LoadBalancer Services get NodeBalancers that linodego lists, with loopback
// addresses of the lab's range, their addresses in the status, and lose them; a record for
// the address resolves through the lab DNS.
func TestLabCloudController(t *testing.T) {
	needBinaries(t)
	l, err := Up(context.Background(), Options{
		Dir: t.TempDir(), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		Addresses: AddressRange{First: net.IPv4(127, 0, 16, 1), Last: net.IPv4(127, 0, 16, 9)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	lke, kubeconfig := createCluster(t, l, "ccm-test", 1)
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
	clusterTag := fmt.Sprintf("lke%d", lke.ID)

	create := func(ns, name string, typ corev1.ServiceType) {
		t.Helper()
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		s := lbService(ns, name, "")
		s.Spec.Type = typ
		if _, err := client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// ingressOf waits until the Service's ingress is the one NodeBalancer tagged with its UID.
	ingressOf := func(ns, name string) linodego.NodeBalancer {
		t.Helper()
		var found linodego.NodeBalancer
		waitFor(t, 60*time.Second, "the NodeBalancer of "+ns+"/"+name, func(ctx context.Context) (bool, error) {
			s, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			nbs, err := lc.ListNodeBalancers(ctx, nil)
			if err != nil {
				return false, err
			}
			for _, nb := range nbs {
				if slices.Contains(nb.Tags, "service-uid:"+string(s.UID)) {
					found = nb
				}
			}
			in := s.Status.LoadBalancer.Ingress
			return found.ID != 0 && len(in) == 1 && found.IPv4 != nil && in[0].IP == *found.IPv4 &&
				found.Hostname != nil && in[0].Hostname == *found.Hostname, fmt.Errorf("ingress %+v, NodeBalancer %+v", in, found)
		})
		if found.Region != "eu-west" || !slices.Contains(found.Tags, clusterTag) || found.Label == nil || !strings.HasPrefix(*found.Label, "ccm-") {
			t.Errorf("NodeBalancer %+v: want region eu-west, tag %s, label ccm-...", found, clusterTag)
		}
		return found
	}
	nbCount := func() int {
		nbs, err := lc.ListNodeBalancers(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(nbs)
	}

	create("istio-system", "eastwest", corev1.ServiceTypeLoadBalancer)
	create("ingress", "gateway", corev1.ServiceTypeLoadBalancer)
	create("ingress", "internal", corev1.ServiceTypeClusterIP)
	eastwest := ingressOf("istio-system", "eastwest")
	gateway := ingressOf("ingress", "gateway")
	if *eastwest.IPv4 == *gateway.IPv4 {
		t.Errorf("two Services share the address %s", *gateway.IPv4)
	}
	// Each NodeBalancer has a loopback address of the lab's range, from the top, none the cluster's.
	var clusterAddr string
	if cs := l.Clusters(); len(cs) == 1 {
		clusterAddr = cs[0].Address
	}
	lbs := []string{*eastwest.IPv4, *gateway.IPv4}
	slices.Sort(lbs)
	if clusterAddr != "127.0.16.1" || !slices.Equal(lbs, []string{"127.0.16.8", "127.0.16.9"}) {
		t.Errorf("cluster address %s, load balancers %v: want 127.0.16.1, and .8 and .9", clusterAddr, lbs)
	}
	if n := nbCount(); n != 2 {
		t.Errorf("%d NodeBalancers, want 2 (none for the ClusterIP Service)", n)
	}

	// A record for the gateway's address resolves through the lab DNS server.
	d, err := lc.CreateDomain(ctx, linodego.DomainCreateOptions{Domain: "fleet.example", Type: linodego.DomainTypeMaster, SOAEmail: "ops@fleet.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "app", Target: *gateway.IPv4}); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("app.fleet.example.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, l.DNS)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != *gateway.IPv4 || !r.Authoritative {
		t.Errorf("app.fleet.example A: %v", r)
	}

	// No longer a LoadBalancer: its NodeBalancer goes and the status empties.
	s, err := client.CoreV1().Services("istio-system").Get(ctx, "eastwest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.Ports[0].NodePort = 0
	if _, err := client.CoreV1().Services("istio-system").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "eastwest's NodeBalancer to go", func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Services("istio-system").Get(ctx, "eastwest", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, err = lc.GetNodeBalancer(ctx, eastwest.ID)
		return linodego.IsNotFound(err) && len(s.Status.LoadBalancer.Ingress) == 0 && len(s.Finalizers) == 0,
			fmt.Errorf("get NodeBalancer: %v; ingress %+v, finalizers %v", err, s.Status.LoadBalancer.Ingress, s.Finalizers)
	})
	// Deleted: the finalizer holds the Service until its NodeBalancer is gone, then it goes.
	if err := client.CoreV1().Services("ingress").Delete(ctx, "gateway", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "gateway and its NodeBalancer to go", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Services("ingress").Get(ctx, "gateway", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("get Service: %v", err)
		}
		_, err = lc.GetNodeBalancer(ctx, gateway.ID)
		return linodego.IsNotFound(err), fmt.Errorf("get NodeBalancer: %v", err)
	})
	if n := nbCount(); n != 0 {
		t.Errorf("%d NodeBalancers left, want 0", n)
	}
}

func TestShowNodeBalancers(t *testing.T) {
	t.Parallel()
	api := linodeapi.New(linodeapi.Options{Token: "t"})
	defer api.Close()
	hs := httptest.NewServer(api)
	defer hs.Close()
	lc := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	lc.SetBaseURL(hs.URL)
	lc.SetToken("t")
	lc.SetRetryCount(0)
	var out strings.Builder
	showNodeBalancers(context.Background(), &lc, &out)
	if !strings.Contains(out.String(), "none") {
		t.Errorf("no NodeBalancers:\n%s", out.String())
	}
	nb, err := api.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west", Label: "ccm-0123456789ab", Tags: []string{"lke1"}})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	showNodeBalancers(context.Background(), &lc, &out)
	for _, want := range []string{"ccm-0123456789ab", "eu-west", nb.IPv4, nb.Hostname, "lke1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// NodeBalancers of the lab take loopback addresses from the top of the range, clusters from
// the bottom; neither takes one the other holds; a full range gives a pool address; a deleted
// NodeBalancer frees its address.
func TestLoadBalancerAddresses(t *testing.T) {
	t.Parallel()
	api := linodeapi.New(linodeapi.Options{Token: "t"})
	defer api.Close()
	b := &Backend{Addresses: AddressRange{First: net.IPv4(127, 0, 17, 20), Last: net.IPv4(127, 0, 17, 22)},
		used: map[string]bool{}, NodeBalancers: api}
	nbs := loopbackNodeBalancers{b}
	first, err := nbs.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west"})
	if err != nil || first.IPv4 != "127.0.17.22" {
		t.Fatalf("first NodeBalancer %+v (%v), want 127.0.17.22", first, err)
	}
	b.mu.Lock()
	a, err := b.nextAddressLocked()
	b.used[a] = true
	b.mu.Unlock()
	if err != nil || a != "127.0.17.20" {
		t.Errorf("cluster address %q (%v), want 127.0.17.20", a, err)
	}
	second, err := nbs.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west"})
	if err != nil || second.IPv4 != "127.0.17.21" {
		t.Errorf("second NodeBalancer %+v (%v), want 127.0.17.21", second, err)
	}
	b.mu.Lock()
	if a, err := b.nextAddressLocked(); err == nil {
		t.Errorf("a cluster address %s from a full range", a)
	}
	b.mu.Unlock()
	third, err := nbs.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west"})
	if err != nil || !strings.HasPrefix(third.IPv4, "198.18.") {
		t.Errorf("NodeBalancer beyond the range %+v (%v), want its region's pool address", third, err)
	}
	nbs.DeleteNodeBalancer(first.ID)
	if again, err := nbs.CreateNodeBalancer(linodeapi.NodeBalancerSpec{Region: "eu-west"}); err != nil || again.IPv4 != "127.0.17.22" {
		t.Errorf("after a delete: %+v (%v), want 127.0.17.22 again", again, err)
	}
}
