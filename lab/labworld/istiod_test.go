package labworld

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestWithoutFlags(t *testing.T) {
	t.Parallel()
	in := []string{"discovery", "--monitoringAddr=:15014", "--domain", "cluster.local", "--grpcAddr", ":15010",
		"-httpAddr=:8080", "--keepaliveMaxServerConnectionAge", "30m", "--log_as_json"}
	got := withoutFlags(in, "monitoringAddr", "grpcAddr", "httpAddr")
	want := []string{"discovery", "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m", "--log_as_json"}
	if !slices.Equal(got, want) {
		t.Errorf("withoutFlags = %q, want %q", got, want)
	}
}

func TestResourceValue(t *testing.T) {
	t.Parallel()
	c := corev1.Container{Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("2Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("3Gi")},
	}}
	for _, tc := range []struct {
		res, divisor, want string
	}{
		{"limits.cpu", "", strconv.Itoa(runtime.NumCPU())}, // no limit: the node's allocatable
		{"requests.cpu", "1", "1"},                         // 500m rounded up
		{"requests.cpu", "1m", "500"},
		{"limits.memory", "1Mi", "3072"},
		{"requests.memory", "", strconv.Itoa(2 << 30)},
	} {
		r := &corev1.ResourceFieldSelector{Resource: tc.res}
		if tc.divisor != "" {
			r.Divisor = resource.MustParse(tc.divisor)
		}
		if got := resourceValue(c, r); got != tc.want {
			t.Errorf("%s / %q = %s, want %s", tc.res, tc.divisor, got, tc.want)
		}
	}
}

// fakePilotDiscovery stands in for pilot-discovery: it records what it was started with (its
// working directory, args, environment, the cacerts and tokens under its working directory)
// in ../seen (the istiod directory), then sleeps.
const fakePilotDiscovery = `#!/bin/sh
{
	echo "cwd=$(pwd)"
	echo "args=$*"
	env | sort
	echo "cacert=$(cat etc/cacerts/root-cert.pem)"
	test -s var/run/secrets/kubernetes.io/serviceaccount/token && echo satoken=yes
	test -s var/run/secrets/tokens/istio-token && echo istiotoken=yes
	test -d var/run/secrets/istio-dns && echo emptydir=yes
	test -e var/run/secrets/remote/config || echo remote=absent
} > ../seen.tmp
mv ../seen.tmp ../seen
exec sleep 600
`

// TestLabIstiod: the Istiod player runs "pilot-discovery" (a stand-in script here; the real
// one runs in cmd/reconcile's TestLabIstiod) for a Deployment shaped like Istio's chart's, in a
// real lab cluster: args and env from the pod template with the listen addresses moved to the
// cluster's address, fieldRefs resolved, volumes projected under its working directory (the
// plugged-in CA at ./etc/cacerts), a kubeconfig that authenticates as the istiod
// ServiceAccount; a pod-template change restarts it with the new cacerts; deleting the
// Deployment stops it. 127.0.21.x belongs to this test.
func TestLabIstiod(t *testing.T) {
	needBinaries(t)
	l, err := Up(context.Background(), Options{
		Dir: t.TempDir(), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		Addresses: AddressRange{First: net.IPv4(127, 0, 21, 1), Last: net.IPv4(127, 0, 21, 9)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	createCluster(t, l, "istiod-test", 1)
	cs := l.Clusters()
	if len(cs) != 1 {
		t.Fatalf("clusters %+v, want one", cs)
	}
	lc := cs[0]
	client, err := kubernetes.NewForConfig(lc.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "pilot-discovery")
	if err := os.WriteFile(bin, []byte(fakePilotDiscovery), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := IstiodNamespace
	mustDo := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	mustDo(client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "istiod"}}, metav1.CreateOptions{}))
	mustDo(client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cacerts"},
		Data: map[string][]byte{"root-cert.pem": []byte("ROOT-1")}}, metav1.CreateOptions{}))
	optional, aud, exp := true, "istio-ca", int64(43200)
	labels := map[string]string{"app": "istiod"}
	replicas := int32(1)
	mustDo(client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: IstiodName},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ServiceAccountName: "istiod",
				Containers: []corev1.Container{{Name: "discovery", Image: "registry.istio.io/testing/pilot:latest",
					Args: []string{"discovery", "--monitoringAddr=:15014", "--domain", "cluster.local"},
					Env: []corev1.EnvVar{
						{Name: "REVISION", Value: "default"},
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
						{Name: "SERVICE_ACCOUNT", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
						{Name: "KUBECONFIG", Value: "/var/run/secrets/remote/config"},
						{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
							Resource: "limits.cpu", Divisor: resource.MustParse("1")}}},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "istio-token", MountPath: "/var/run/secrets/tokens", ReadOnly: true},
						{Name: "local-certs", MountPath: "/var/run/secrets/istio-dns"},
						{Name: "cacerts", MountPath: "/etc/cacerts", ReadOnly: true},
						{Name: "istio-kubeconfig", MountPath: "/var/run/secrets/remote", ReadOnly: true},
					}}},
				Volumes: []corev1.Volume{
					{Name: "local-certs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
					{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: aud, ExpirationSeconds: &exp, Path: "istio-token"}}}}}},
					{Name: "cacerts", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "cacerts", Optional: &optional}}},
					{Name: "istio-kubeconfig", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "istio-kubeconfig", Optional: &optional}}},
				},
			}}},
	}, metav1.CreateOptions{}))

	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	is := &Istiod{Client: client, RESTConfig: lc.RESTConfig, Address: lc.Address, Dir: t.TempDir(), Bin: bin}
	go func() { done <- is.Run(runCtx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	dir := filepath.Join(is.Dir, IstiodDirName)

	// seenWith waits for the stand-in's record of a start whose cacert is want.
	seenWith := func(want string) (map[string]string, IstiodInfo) {
		t.Helper()
		var seen map[string]string
		var info IstiodInfo
		waitFor(t, 30*time.Second, "istiod started with cacert "+want, func(context.Context) (bool, error) {
			var err error
			if info, err = ReadIstiod(is.Dir); err != nil {
				return false, err
			}
			data, err := os.ReadFile(filepath.Join(dir, "pods", info.Pod, "seen"))
			if err != nil {
				return false, err
			}
			seen = map[string]string{}
			for _, line := range strings.Split(string(data), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					seen[k] = v
				}
			}
			return seen["cacert"] == want, nil
		})
		return seen, info
	}
	seen, info := seenWith("ROOT-1")
	podDir := filepath.Join(dir, "pods", info.Pod)
	for k, want := range map[string]string{
		"cwd": filepath.Join(podDir, "root"), "REVISION": "default", "POD_NAME": info.Pod, "POD_NAMESPACE": ns,
		"SERVICE_ACCOUNT": "istiod", "HOSTNAME": info.Pod, "KUBECONFIG": filepath.Join(podDir, "kubeconfig"),
		"GOMAXPROCS": strconv.Itoa(runtime.NumCPU()), "satoken": "yes", "istiotoken": "yes", "emptydir": "yes", "remote": "absent",
	} {
		if seen[k] != want {
			t.Errorf("istiod started with %s=%q, want %q", k, seen[k], want)
		}
	}
	if !strings.HasPrefix(info.Pod, "istiod-") || !strings.HasPrefix(info.Monitoring, lc.Address+":") ||
		!PodRangeOf(lc.Address).Contains(net.ParseIP(info.PodIP)) {
		t.Errorf("istiod.json: %+v", info)
	}
	args := seen["args"]
	for _, want := range []string{"discovery ", "--domain cluster.local", "--monitoringAddr " + info.Monitoring, "--httpAddr " + info.HTTP,
		"--grpcAddr " + info.GRPC, "--secureGRPCAddr " + info.SecureGRPC, "--httpsAddr " + info.Webhook,
		"--kubeconfig " + filepath.Join(podDir, "kubeconfig"), "--ctrlz_address " + lc.Address} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, ":15014") {
		t.Errorf("args %q keep the chart's monitoring address", args)
	}
	if _, ok := seen["PATH"]; ok {
		t.Errorf("istiod inherited this process's environment (PATH)")
	}
	// Its kubeconfig is the istiod ServiceAccount.
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(podDir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	review, err := own.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo.Username; u != "system:serviceaccount:istio-system:istiod" {
		t.Errorf("istiod's kubeconfig authenticates as %q", u)
	}

	// A cacerts rotation: the Secret changes, then the pod template (an annotation); the
	// restarted istiod reads the new cacerts, the old process is gone.
	mustDo(client.CoreV1().Secrets(ns).Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cacerts"},
		Data: map[string][]byte{"root-cert.pem": []byte("ROOT-2")}}, metav1.UpdateOptions{}))
	mustDo(client.AppsV1().Deployments(ns).Patch(ctx, IstiodName, types.MergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"lab.reconcile.dev/rotated":"1"}}}}}`), metav1.PatchOptions{}))
	_, info2 := seenWith("ROOT-2")
	if info2.PID == info.PID || info2.Template == info.Template || info2.Pod == info.Pod {
		t.Errorf("after the template change: %+v, before: %+v", info2, info)
	}
	// The new Pod ready, the ReplicaSet controller deletes the old one: its istiod stops.
	waitFor(t, 30*time.Second, "the old istiod stopped with its Pod", func(context.Context) (bool, error) {
		return syscall.Kill(info.PID, 0) != nil, nil
	})

	// The Deployment deleted: istiod stops.
	if err := client.AppsV1().Deployments(ns).Delete(ctx, IstiodName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "istiod stopped", func(context.Context) (bool, error) {
		_, err := ReadIstiod(is.Dir)
		return errors.Is(err, fs.ErrNotExist) && syscall.Kill(info2.PID, 0) != nil, nil
	})
	stop()
}
