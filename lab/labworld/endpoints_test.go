package labworld

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestLabEndpoints: in a lab cluster made through the lab's Linode API, a Deployment's Pods
// (made by the real ReplicaSet controller) run on the cluster's Nodes, Ready with distinct IPs
// of the cluster's pod range, and the real endpointslice controller publishes them as a
// Service's ready endpoints; a scale-down, the replicas fault and the Deployment's deletion
// are followed. 127.0.19.x belongs to this test.
func TestLabEndpoints(t *testing.T) {
	needBinaries(t)
	l, err := Up(context.Background(), Options{
		Dir: t.TempDir(), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		Addresses: AddressRange{First: net.IPv4(127, 0, 19, 1), Last: net.IPv4(127, 0, 19, 9)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	_, kubeconfig := createCluster(t, l, "endpoints-test", 2)
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cs := l.Clusters()
	if len(cs) != 1 || cs[0].Address != "127.0.19.1" {
		t.Fatalf("clusters %+v, want one on 127.0.19.1", cs)
	}
	podRange := PodRangeOf(cs[0].Address) // 10.1.0.0/16
	ctx := context.Background()
	const ns = "shop"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "cart"}
	replicas := int32(3)
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "cart", Image: "example.invalid/cart:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(9090)},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// readyPods are the Pods of the Deployment that run, are Ready and are not being deleted,
	// checked as a kubelet reports them; their IPs sorted.
	readyPods := func(ctx context.Context) ([]string, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
		if err != nil {
			return nil, err
		}
		var ips []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
				continue
			}
			if o := metav1.GetControllerOf(&p); o == nil || o.Kind != "ReplicaSet" {
				return nil, fmt.Errorf("pod %s is controlled by %+v, want a ReplicaSet", p.Name, o)
			}
			ip := net.ParseIP(p.Status.PodIP)
			if ip == nil || !podRange.Contains(ip) || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
				return nil, fmt.Errorf("pod %s: IPs %q %v, want one of %v", p.Name, p.Status.PodIP, p.Status.PodIPs, podRange)
			}
			if p.Spec.NodeName == "" || p.Status.HostIP != cs[0].Address {
				return nil, fmt.Errorf("pod %s: node %q, host IP %q", p.Name, p.Spec.NodeName, p.Status.HostIP)
			}
			ips = append(ips, p.Status.PodIP)
		}
		slices.Sort(ips)
		if len(slices.Compact(slices.Clone(ips))) != len(ips) {
			return nil, fmt.Errorf("pod IPs %v are not distinct", ips)
		}
		return ips, nil
	}
	// endpoints are the Service's endpoint addresses from its EndpointSlices: ready ones and
	// others, sorted; every slice must carry the Service's ports.
	endpoints := func(ctx context.Context) (ready, notReady []string, err error) {
		list, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=cart"})
		if err != nil {
			return nil, nil, err
		}
		for _, s := range list.Items {
			if s.AddressType != discoveryv1.AddressTypeIPv4 {
				continue
			}
			var ports []string
			for _, p := range s.Ports {
				if p.Name != nil && p.Port != nil {
					ports = append(ports, fmt.Sprintf("%s:%d", *p.Name, *p.Port))
				}
			}
			slices.Sort(ports)
			if len(s.Endpoints) > 0 && !slices.Equal(ports, []string{"grpc:9090", "http:8080"}) {
				return nil, nil, fmt.Errorf("slice %s ports %v, want grpc:9090 and http:8080", s.Name, ports)
			}
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready = append(ready, e.Addresses...)
				} else {
					notReady = append(notReady, e.Addresses...)
				}
			}
		}
		slices.Sort(ready)
		slices.Sort(notReady)
		return ready, notReady, nil
	}

	var ips []string
	waitFor(t, 60*time.Second, "3 ready Pods of the Deployment", func(ctx context.Context) (bool, error) {
		var err error
		ips, err = readyPods(ctx)
		return len(ips) == 3, fmt.Errorf("ready pod IPs %v: %v", ips, err)
	})
	t.Logf("pod IPs %v", ips)
	waitFor(t, 60*time.Second, "3 ready endpoints of the Service", func(ctx context.Context) (bool, error) {
		ready, notReady, err := endpoints(ctx)
		return err == nil && slices.Equal(ready, ips) && len(notReady) == 0,
			fmt.Errorf("ready %v, not ready %v (want %v): %v", ready, notReady, ips, err)
	})
	waitFor(t, 60*time.Second, "the Deployment Available with 3 ready", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == 3 && d.Status.AvailableReplicas == 3 &&
			deploymentAvailable(d), fmt.Errorf("status %+v", d.Status)
	})

	// A scale-down leaves one Pod, and one endpoint.
	if _, err := client.AppsV1().Deployments(ns).UpdateScale(ctx, "cart", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 1},
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "1 Pod and 1 ready endpoint after scaling to 1", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
		if err != nil {
			return false, err
		}
		ips, err = readyPods(ctx)
		if err != nil {
			return false, err
		}
		ready, notReady, err := endpoints(ctx)
		return len(pods.Items) == 1 && len(ips) == 1 && slices.Equal(ready, ips) && len(notReady) == 0,
			fmt.Errorf("%d pods, ready pod IPs %v, endpoints ready %v, not ready %v: %v", len(pods.Items), ips, ready, notReady, err)
	})

	// The replicas fault: the Pod stays but is not ready, nor is its endpoint, nor the Deployment.
	if err := SetReplicasFault(ctx, client, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "no ready Pod, endpoint or replica under the replicas fault", func(ctx context.Context) (bool, error) {
		ready, notReady, err := endpoints(ctx)
		if err != nil {
			return false, err
		}
		rp, err := readyPods(ctx)
		if err != nil {
			return false, err
		}
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "cart", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(ready) == 0 && len(rp) == 0 && slices.Equal(notReady, ips) && d.Status.AvailableReplicas == 0 && !deploymentAvailable(d),
			fmt.Errorf("endpoints ready %v, not ready %v; ready pods %v; deployment %+v", ready, notReady, rp, d.Status)
	})
	if err := SetReplicasFault(ctx, client, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the endpoint ready again after the fault", func(ctx context.Context) (bool, error) {
		ready, notReady, err := endpoints(ctx)
		return err == nil && slices.Equal(ready, ips) && len(notReady) == 0, fmt.Errorf("ready %v, not ready %v: %v", ready, notReady, err)
	})

	// Deleting the Deployment removes its ReplicaSet and Pods (garbage collection, then the
	// stand-in confirming the Pods' graceful deletion), and the Service's endpoints.
	if err := client.AppsV1().Deployments(ns).Delete(ctx, "cart", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "no Pod and no endpoint after the Deployment's deletion", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready, notReady, err := endpoints(ctx)
		return err == nil && len(pods.Items) == 0 && len(ready)+len(notReady) == 0,
			fmt.Errorf("%d pods, endpoints %v %v: %v", len(pods.Items), ready, notReady, err)
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
