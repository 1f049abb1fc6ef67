package labworld

import (
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

func TestReplicaSetStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		replicas    *int32
		generation  int64
		status      appsv1.ReplicaSetStatus
		wantN       int32
		wantChanged bool
	}{
		{"new", ptr[int32](3), 1, appsv1.ReplicaSetStatus{}, 3, true},
		{"nil replicas means one", nil, 1, appsv1.ReplicaSetStatus{}, 1, true},
		{"scaled to zero", ptr[int32](0), 2, appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, FullyLabeledReplicas: 2, ObservedGeneration: 1}, 0, true},
		{"done", ptr[int32](2), 4, appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, FullyLabeledReplicas: 2, ObservedGeneration: 4}, 2, false},
		{"new generation", ptr[int32](2), 5, appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, FullyLabeledReplicas: 2, ObservedGeneration: 4}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Generation: tt.generation},
				Spec: appsv1.ReplicaSetSpec{Replicas: tt.replicas}, Status: tt.status}
			st, changed := replicaSetStatus(rs, false)
			if changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if st.Replicas != tt.wantN || st.ReadyReplicas != tt.wantN || st.AvailableReplicas != tt.wantN ||
				st.FullyLabeledReplicas != tt.wantN || st.ObservedGeneration != tt.generation {
				t.Errorf("status %+v, want %d everywhere at generation %d", st, tt.wantN, tt.generation)
			}
			// Applying the result reaches a fixed point.
			rs.Status = st
			if _, again := replicaSetStatus(rs, false); again {
				t.Error("a second pass changes the status again")
			}
		})
	}
}

// TestReplicaSetStatusUnavailable: under the lab's replicas fault a ReplicaSet has its
// replicas but none ready or available, and lifting the fault makes them available.
func TestReplicaSetStatusUnavailable(t *testing.T) {
	t.Parallel()
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr[int32](4)},
		Status: appsv1.ReplicaSetStatus{Replicas: 4, ReadyReplicas: 4, AvailableReplicas: 4, FullyLabeledReplicas: 4, ObservedGeneration: 2}}
	st, changed := replicaSetStatus(rs, true)
	if !changed || st.Replicas != 4 || st.ReadyReplicas != 0 || st.AvailableReplicas != 0 {
		t.Fatalf("under the fault: changed %v, status %+v", changed, st)
	}
	rs.Status = st
	if _, again := replicaSetStatus(rs, true); again {
		t.Error("a second pass under the fault changes the status again")
	}
	if st, changed := replicaSetStatus(rs, false); !changed || st.AvailableReplicas != 4 {
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
	for _, c := range []string{"replicaset-controller", "statefulset-controller", "job-controller"} {
		if !strings.Contains(args[1], ",-"+c) {
			t.Errorf("%s is not disabled: %q", c, args[1])
		}
	}
	if strings.Contains(args[1], "-deployment-controller") {
		t.Errorf("the deployment controller must run (it makes the ReplicaSets Helm waits on): %q", args[1])
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
