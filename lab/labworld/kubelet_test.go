package labworld

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func TestPodRangeOf(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.19.1": "10.1.0.0/16", "127.0.0.100": "10.100.0.0/16", "127.0.1.0": "10.0.0.0/16", "": "10.2.0.0/16", "::1": "10.2.0.0/16",
	} {
		if got := PodRangeOf(addr).String(); got != want {
			t.Errorf("PodRangeOf(%q) = %s, want %s", addr, got, want)
		}
	}
}

func TestNextPodIP(t *testing.T) {
	t.Parallel()
	r := PodRangeOf("127.0.0.7")
	used := map[string]bool{}
	var got []string
	for range 3 {
		ip := nextPodIP(r, used)
		used[ip] = true
		got = append(got, ip)
	}
	if strings.Join(got, ",") != "10.7.1.1,10.7.1.2,10.7.1.3" {
		t.Errorf("first pod IPs %v", got)
	}
	delete(used, "10.7.1.2")
	if ip := nextPodIP(r, used); ip != "10.7.1.2" {
		t.Errorf("a freed IP is not reused: %s", ip)
	}
	for i := 1; i <= 254; i++ {
		used[fmt.Sprintf("10.7.1.%d", i)] = true
	}
	if ip := nextPodIP(r, used); ip != "10.7.2.1" {
		t.Errorf("after 10.7.1.254: %s, want 10.7.2.1 (no .255, no .0)", ip)
	}
	_, small, _ := net.ParseCIDR("10.9.9.0/24")
	if ip := nextPodIP(small, nil); ip != "" {
		t.Errorf("a /24 gives %s", ip)
	}
	_, two, _ := net.ParseCIDR("10.9.8.0/23")
	full := map[string]bool{}
	for i := 1; i <= 254; i++ {
		full[fmt.Sprintf("10.9.9.%d", i)] = true
	}
	if ip := nextPodIP(two, full); ip != "" {
		t.Errorf("a full range gives %s", ip)
	}
}

func TestPickNode(t *testing.T) {
	t.Parallel()
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	pod := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.PodSpec{NodeName: node}}
	}
	nodes := []*corev1.Node{node("b"), node("a")}
	if n := pickNode(nodes, nil, nil); n != "a" {
		t.Errorf("empty cluster: %q, want a", n)
	}
	if n := pickNode(nodes, []*corev1.Pod{pod("p", "a")}, nil); n != "b" {
		t.Errorf("a has one: %q, want b", n)
	}
	// A bind the informer does not show yet counts.
	if n := pickNode(nodes, []*corev1.Pod{pod("p", "a"), pod("q", "")}, map[string]string{"ns/q": "b"}); n != "a" {
		t.Errorf("one each: %q, want a", n)
	}
	if n := pickNode(nil, nil, nil); n != "" {
		t.Errorf("no nodes: %q", n)
	}
}

// TestPodStatus: a bound Pod reads as Running and Ready with its IPs; under the replicas fault
// it is Running but not Ready; the result is a fixed point, and transition times move only
// with what they describe.
func TestPodStatus(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u1", Generation: 1},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}, {Name: "side", Image: "s:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}}
	ready := func(st corev1.PodStatus) (bool, metav1.Time) {
		for _, c := range st.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue, c.LastTransitionTime
			}
		}
		t.Fatalf("no Ready condition: %+v", st.Conditions)
		return false, metav1.Time{}
	}
	st, changed := podStatus(pod, "127.0.0.9", "10.9.1.1", "", t0)
	if r, _ := ready(st); !changed || !r || st.Phase != corev1.PodRunning || st.PodIP != "10.9.1.1" || len(st.PodIPs) != 1 ||
		st.HostIP != "127.0.0.9" || st.StartTime == nil || len(st.ContainerStatuses) != 2 || !st.ContainerStatuses[1].Ready ||
		st.ContainerStatuses[0].State.Running == nil || st.QOSClass != corev1.PodQOSBestEffort {
		t.Fatalf("changed %v, status %+v", changed, st)
	}
	pod.Status = st
	if _, again := podStatus(pod, "127.0.0.9", "10.9.1.7", "", t0.Add(time.Minute)); again {
		t.Error("a second pass changes the status (or the pod IP) again")
	}
	st, changed = podStatus(pod, "127.0.0.9", "", faultNotReady, t0.Add(time.Minute))
	if r, since := ready(st); !changed || r || !since.Time.Equal(t0.Add(time.Minute)) || st.ContainerStatuses[0].Ready ||
		st.Phase != corev1.PodRunning || st.PodIP != "10.9.1.1" || !st.StartTime.Time.Equal(t0) {
		t.Fatalf("under the fault: changed %v, status %+v", changed, st)
	}
	pod.Status = st
	if _, again := podStatus(pod, "127.0.0.9", "", faultNotReady, t0.Add(2*time.Minute)); again {
		t.Error("a second pass under the fault changes the status again")
	}
	if st, changed := podStatus(pod, "127.0.0.9", "", "", t0.Add(3*time.Minute)); !changed || !st.ContainerStatuses[0].Ready {
		t.Errorf("fault lifted: changed %v, status %+v", changed, st)
	}
}

func TestStatefulSetStatus(t *testing.T) {
	t.Parallel()
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "etcd", Generation: 3},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr[int32](3)}}
	st, changed := statefulSetStatus(s)
	if !changed || st.ReadyReplicas != 3 || st.UpdatedReplicas != 3 || st.CurrentReplicas != 3 ||
		st.AvailableReplicas != 3 || st.ObservedGeneration != 3 || st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision {
		t.Fatalf("status %+v (changed %v)", st, changed)
	}
	s.Status = st
	if _, again := statefulSetStatus(s); again {
		t.Error("a second pass changes the status again")
	}
	s.Generation = 4
	if st2, again := statefulSetStatus(s); !again || st2.UpdateRevision == st.UpdateRevision {
		t.Errorf("a new generation keeps revision %q (changed %v)", st2.UpdateRevision, again)
	}
}

func TestDaemonSetStatus(t *testing.T) {
	t.Parallel()
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	st, changed := daemonSetStatus(d, 3)
	if !changed || st.DesiredNumberScheduled != 3 || st.NumberReady != 3 || st.NumberAvailable != 3 || st.UpdatedNumberScheduled != 3 {
		t.Fatalf("status %+v (changed %v)", st, changed)
	}
	d.Status = st
	if _, again := daemonSetStatus(d, 3); again {
		t.Error("a second pass changes the status again")
	}
	if st, again := daemonSetStatus(d, 4); !again || st.NumberReady != 4 {
		t.Errorf("a fourth node: %+v (changed %v)", st, again)
	}
}

func TestJobStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	complete := batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	failed := batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}
	tests := []struct {
		name        string
		annotations map[string]string
		status      batchv1.JobStatus
		want        bool
	}{
		{"unmarked is someone else's", nil, batchv1.JobStatus{}, false},
		{"marked false", map[string]string{CompleteJobAnnotation: "false"}, batchv1.JobStatus{}, false},
		{"marked", map[string]string{CompleteJobAnnotation: "true"}, batchv1.JobStatus{}, true},
		{"marked, already complete", map[string]string{CompleteJobAnnotation: "true"}, complete, false},
		{"marked, failed stays failed", map[string]string{CompleteJobAnnotation: "true"}, failed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}, Status: tt.status}
			st, changed := jobStatus(j, now)
			if changed != tt.want {
				t.Fatalf("changed = %v, want %v", changed, tt.want)
			}
			if !changed {
				return
			}
			// kube-apiserver wants both conditions, a start and a completion time.
			var met, done bool
			for _, c := range st.Conditions {
				met = met || c.Type == batchv1.JobSuccessCriteriaMet && c.Status == corev1.ConditionTrue
				done = done || c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
			}
			if !met || !done || st.StartTime == nil || st.CompletionTime == nil || st.Succeeded != 1 {
				t.Errorf("status %+v", st)
			}
			j.Status = st
			if _, again := jobStatus(j, now); again {
				t.Error("a second pass changes the status again")
			}
		})
	}
}

func TestServiceStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typ     corev1.ServiceType
		ingress []corev1.LoadBalancerIngress
		want    bool
	}{
		{"load balancer without ingress", corev1.ServiceTypeLoadBalancer, nil, true},
		{"load balancer with another IP", corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "10.0.0.9"}}, true},
		{"load balancer done", corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "127.0.0.42"}}, false},
		{"cluster IP", corev1.ServiceTypeClusterIP, nil, false},
		{"node port", corev1.ServiceTypeNodePort, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &corev1.Service{Spec: corev1.ServiceSpec{Type: tt.typ}}
			s.Status.LoadBalancer.Ingress = tt.ingress
			st, changed := serviceStatus(s, "127.0.0.42")
			if changed != tt.want {
				t.Fatalf("changed = %v, want %v", changed, tt.want)
			}
			if changed && (len(st.LoadBalancer.Ingress) != 1 || st.LoadBalancer.Ingress[0].IP != "127.0.0.42") {
				t.Errorf("ingress %+v", st.LoadBalancer.Ingress)
			}
		})
	}
}

func TestControllerManagerArgs(t *testing.T) {
	t.Parallel()
	args := ControllerManagerArgs()
	if len(args) != 2 || args[0] != "--controllers" || !strings.HasPrefix(args[1], "*,") {
		t.Fatalf("args %q", args)
	}
	for _, c := range []string{"statefulset-controller", "daemonset-controller", "job-controller"} {
		if !strings.Contains(args[1], ",-"+c) {
			t.Errorf("%s is not disabled: %q", c, args[1])
		}
	}
	// The deployment, replicaset and endpointslice controllers make the ReplicaSets, Pods and
	// EndpointSlices whose Pods the stand-in runs.
	for _, c := range []string{"deployment-controller", "replicaset-controller", "endpointslice-controller"} {
		if strings.Contains(args[1], "-"+c) {
			t.Errorf("the %s must run: %q", c, args[1])
		}
	}
}

func TestNextAddress(t *testing.T) {
	t.Parallel()
	b := &Backend{Addresses: AddressRange{First: net.IPv4(127, 0, 0, 40), Last: net.IPv4(127, 0, 0, 42)},
		used: map[string]bool{}}
	var got []string
	for range 3 {
		a, err := b.nextAddressLocked()
		if err != nil {
			t.Fatal(err)
		}
		b.used[a] = true
		got = append(got, a)
	}
	if strings.Join(got, ",") != "127.0.0.40,127.0.0.41,127.0.0.42" {
		t.Errorf("addresses %v", got)
	}
	if a, err := b.nextAddressLocked(); err == nil {
		t.Errorf("a fourth address %s from a range of three", a)
	}
	delete(b.used, "127.0.0.41")
	if a, err := b.nextAddressLocked(); err != nil || a != "127.0.0.41" {
		t.Errorf("freed address: %q, %v", a, err)
	}
	nonLoopback := &Backend{Addresses: AddressRange{First: net.IPv4(10, 0, 0, 1), Last: net.IPv4(10, 0, 0, 2)}}
	if _, err := nonLoopback.nextAddressLocked(); err == nil {
		t.Error("a non-loopback range is accepted")
	}
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"127.0.0.100-127.0.0.199", false},
		{"127.0.0.100", true},
		{"10.0.0.1-10.0.0.9", true},
		{"127.0.0.1-nope", true},
		{"::1-::1", true},
	}
	for _, tt := range tests {
		if _, err := parseRange(tt.in); (err != nil) != tt.wantErr {
			t.Errorf("parseRange(%q): err %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}
