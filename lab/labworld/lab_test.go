package labworld

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// testAddresses are the loopback addresses reserved for this package's tests.
var testAddresses = AddressRange{First: net.IPv4(127, 0, 0, 40), Last: net.IPv4(127, 0, 0, 59)}

// needBinaries skips when the lab binaries are not built, unless RECONCILE_LAB_REQUIRED is set.
func needBinaries(t *testing.T) {
	t.Helper()
	labtest.Binaries(t)
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := cluster.PollUntil(context.Background(), timeout, what, nil, cond); err != nil {
		t.Fatal(err)
	}
}

func linodeClient(l *Lab) *linodego.Client {
	c := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	if _, err := c.UseURL(l.LinodeURL); err != nil {
		panic(err)
	}
	c.SetToken(l.Token)
	c.SetRetryCount(0)
	return &c
}

// startLab runs Up with free ports and the test addresses; Close runs at cleanup.
func startLab(t *testing.T) *Lab {
	t.Helper()
	needBinaries(t)
	t0 := time.Now()
	l, err := Up(context.Background(), Options{
		Dir:          t.TempDir(),
		LinodeListen: "127.0.0.1:0",
		ChartsListen: "127.0.0.1:0",
		Addresses:    testAddresses,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Up took %s", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// createCluster creates an LKE cluster through linodego and waits for its kubeconfig.
func createCluster(t *testing.T, l *Lab, label string, nodes int) (*linodego.LKECluster, []byte) {
	t.Helper()
	lc := linodeClient(l)
	ctx := context.Background()
	t0 := time.Now()
	c, err := lc.CreateLKECluster(ctx, linodego.LKEClusterCreateOptions{
		Label: label, Region: "eu-west", K8sVersion: "1.33",
		NodePools: []linodego.LKENodePoolCreateOptions{{Type: "g6-standard-2", Count: nodes}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var kubeconfig []byte
	waitFor(t, 3*time.Minute, "the kubeconfig of "+label, func(ctx context.Context) (bool, error) {
		kc, err := lc.GetLKEClusterKubeconfig(ctx, c.ID)
		if err != nil {
			return false, err
		}
		kubeconfig, err = base64.StdEncoding.DecodeString(kc.KubeConfig)
		return err == nil, err
	})
	t.Logf("cluster %s: create to kubeconfig %s", label, time.Since(t0).Round(time.Millisecond))
	return c, kubeconfig
}

func TestLabClusterLifecycle(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()

	// The chart repository answers with its index.
	resp, err := http.Get(l.ChartsURL + "/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET index.yaml: %s", resp.Status)
	}

	lke, kubeconfig := createCluster(t, l, "lab-test", 2)
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cfg.Clusters {
		if c.InsecureSkipTLSVerify || len(c.CertificateAuthorityData) == 0 {
			t.Fatalf("kubeconfig cluster %s: insecure=%v, CA %d bytes; want the cluster's CA", name, c.InsecureSkipTLSVerify, len(c.CertificateAuthorityData))
		}
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	host, _, err := net.SplitHostPort(strings.TrimPrefix(rc.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(testAddresses.First) {
		t.Fatalf("first cluster's API server is on %s, want %s", host, testAddresses.First)
	}

	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 2 {
		t.Fatalf("%d nodes, want 2 (one per LKE node)", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if !nodeReady(n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
		if ip := nodeAddress(n, corev1.NodeExternalIP); ip != host {
			t.Errorf("node %s ExternalIP %q, want %q", n.Name, ip, host)
		}
	}
	// The Linode API's instances carry the same address.
	pools, err := linodeClient(l).ListLKENodePools(ctx, lke.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "instance addresses", func(ctx context.Context) (bool, error) {
		pools, err = linodeClient(l).ListLKENodePools(ctx, lke.ID, nil)
		if err != nil || len(pools) == 0 || len(pools[0].Linodes) == 0 || pools[0].Linodes[0].InstanceID == 0 {
			return false, err
		}
		inst, err := linodeClient(l).GetInstance(ctx, pools[0].Linodes[0].InstanceID)
		if err != nil {
			return false, err
		}
		if len(inst.IPv4) == 0 || inst.IPv4[0].String() != host {
			return false, fmt.Errorf("instance IPv4 %v, want %s", inst.IPv4, host)
		}
		return true, nil
	})

	t.Run("workloads", func(t *testing.T) { testWorkloads(t, client, host) })

	// Deleting the cluster stops its processes and frees its port.
	if err := linodeClient(l).DeleteLKECluster(ctx, lke.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted cluster's API server to stop", func(context.Context) (bool, error) {
		return len(l.Clusters()) == 0 && !listening(strings.TrimPrefix(rc.Host, "https://")), nil
	})

	pids, err := readPIDFile(pidFilePath(l.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) < 3 { // etcd, kube-apiserver, kube-controller-manager
		t.Fatalf("recorded %d processes, want at least 3: %v", len(pids), pids)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if p.alive() {
			t.Errorf("process %d still runs after Close", p.PID)
		}
	}
	for _, u := range []string{l.LinodeURL, l.ChartsURL} {
		hostport := strings.TrimPrefix(u, "http://")
		hostport, _, _ = strings.Cut(hostport, "/")
		if listening(hostport) {
			t.Errorf("%s still listens after Close", hostport)
		}
	}
}

func testWorkloads(t *testing.T, client kubernetes.Interface, address string) {
	ctx := context.Background()
	ns := "default"
	labels := map[string]string{"app": "hello"}
	replicas := int32(3)
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "example.invalid/hello:1"}}},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       appsv1.StatefulSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	job := func(name string, annotations map[string]string) {
		t.Helper()
		if _, err := client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "run", Image: "example.invalid/job:1"}},
			}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	job("someone-elses", nil)
	job("marked", map[string]string{CompleteJobAnnotation: "true"})

	waitFor(t, 60*time.Second, "Deployment hello Available with 3 ready replicas", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		ok := s.ObservedGeneration == d.Generation && s.Replicas == 3 && s.ReadyReplicas == 3 &&
			s.AvailableReplicas == 3 && s.UpdatedReplicas == 3 && deploymentAvailable(d)
		return ok, fmt.Errorf("status %+v", s)
	})
	waitFor(t, 60*time.Second, "StatefulSet db ready", func(ctx context.Context) (bool, error) {
		s, err := client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := s.Status
		return st.ObservedGeneration == s.Generation && st.ReadyReplicas == 3 && st.UpdatedReplicas == 3 &&
			st.CurrentRevision == st.UpdateRevision && st.CurrentRevision != "", fmt.Errorf("status %+v", st)
	})
	waitFor(t, 60*time.Second, "LoadBalancer ingress", func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Services(ns).Get(ctx, "gateway", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		in := s.Status.LoadBalancer.Ingress
		// A NodeBalancer's address from its region's pool, not the cluster's (ccm_test.go has the rest).
		return len(in) == 1 && in[0].IP != "" && in[0].IP != address && in[0].Hostname != "", fmt.Errorf("ingress %+v", in)
	})
	waitFor(t, 60*time.Second, "Job marked complete", func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, "marked", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return jobComplete(j) && j.Status.Succeeded == 1, nil
	})
	// Events of one kind are handled in order: the unmarked Job was seen first and left alone.
	j, err := client.BatchV1().Jobs(ns).Get(ctx, "someone-elses", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if jobComplete(j) || j.Status.Succeeded != 0 {
		t.Errorf("unmarked Job was completed: %+v", j.Status)
	}
	// Only the Deployment's ReplicaSet has Pods (endpoints_test.go has the rest); the
	// StatefulSet and the Jobs have none.
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if o := metav1.GetControllerOf(&p); o == nil || o.Kind != "ReplicaSet" {
			t.Errorf("pod %s is owned by %+v, want a ReplicaSet", p.Name, o)
		}
	}
	if len(pods.Items) != 3 {
		t.Errorf("%d pods exist, want the Deployment's 3", len(pods.Items))
	}

	// A scale-up is followed.
	d, err := client.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	five := int32(5)
	d.Spec.Replicas = &five
	if _, err := client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "Deployment hello scaled to 5 ready", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == 5 && d.Status.ReadyReplicas == 5 &&
			deploymentAvailable(d), nil
	})
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeAddress(n corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return ""
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// listening reports whether something accepts TCP connections on hostport.
func listening(hostport string) bool {
	c, err := net.DialTimeout("tcp", hostport, time.Second)
	if err != nil {
		var ne net.Error
		_ = errors.As(err, &ne)
		return false
	}
	c.Close()
	return true
}
