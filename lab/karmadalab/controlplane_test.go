package karmadalab

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	clusterv1alpha1 "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	policyv1alpha1 "github.com/karmada-io/karmada/pkg/apis/policy/v1alpha1"
	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

func TestControlPlanePushJoinStaticWeights(t *testing.T) {
	etcd, bins, kbins := labEtcd(t)
	ctx := context.Background()

	start := time.Now()
	cp, err := StartControlPlane(ctx, ControlPlaneOptions{
		Name: "push", Dir: testDir(t, "karmada"), Address: "127.0.0.30",
		Etcd: etcd, Bins: bins, Karmada: kbins,
	})
	if err != nil {
		t.Fatal(err)
	}
	pids := cp.PIDs()
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("process %d still runs after Stop", pid)
			}
		}
	})
	t.Logf("control plane ready in %s at %s", time.Since(start).Round(time.Millisecond), cp.Endpoint())
	if !strings.HasPrefix(cp.Endpoint(), "https://127.0.0.30:") {
		t.Errorf("endpoint %s not on the given address", cp.Endpoint())
	}
	if len(pids) != 6 {
		t.Errorf("PIDs() = %v, want 6 components", pids)
	}

	kc, err := karmadaclient.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("Cluster API: %v", err)
	}

	members := []struct {
		name, address string
		weight        int64
		want          int32
	}{
		{"us", "127.0.0.31", 2, 4},
		{"ap", "127.0.0.32", 1, 2},
		{"eu", "127.0.0.33", 2, 4},
	}
	clients := map[string]kubernetes.Interface{}
	for _, m := range members {
		c := startMember(t, etcd, bins, m.name, m.address)
		clients[m.name] = joinPush(t, ctx, kc, cp, c)
	}
	// Stop Karmada before the members (cleanups run last-in first-out): its watches on the member
	// API servers would hold their graceful shutdown.
	t.Cleanup(func() { _ = cp.Stop() })
	for _, m := range members {
		waitFor(t, 60*time.Second, "cluster "+m.name+" Ready", func(ctx context.Context) (bool, error) {
			c, err := kc.ClusterV1alpha1().Clusters().Get(ctx, m.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return meta.IsStatusConditionTrue(c.Status.Conditions, clusterv1alpha1.ClusterConditionReady), nil
		})
	}

	var weights []policyv1alpha1.StaticClusterWeight
	var names []string
	for _, m := range members {
		names = append(names, m.name)
		weights = append(weights, policyv1alpha1.StaticClusterWeight{
			TargetCluster: policyv1alpha1.ClusterAffinity{ClusterNames: []string{m.name}}, Weight: m.weight,
		})
	}
	policy := &policyv1alpha1.PropagationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1alpha1.PropagationSpec{
			ResourceSelectors: []policyv1alpha1.ResourceSelector{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
			Placement: policyv1alpha1.Placement{
				ClusterAffinity: &policyv1alpha1.ClusterAffinity{ClusterNames: names},
				ReplicaScheduling: &policyv1alpha1.ReplicaSchedulingStrategy{
					ReplicaSchedulingType:     policyv1alpha1.ReplicaSchedulingTypeDivided,
					ReplicaDivisionPreference: policyv1alpha1.ReplicaDivisionPreferenceWeighted,
					WeightPreference:          &policyv1alpha1.ClusterPreferences{StaticWeightList: weights},
				},
			},
		},
	}
	created, err := kc.PolicyV1alpha1().PropagationPolicies("default").Create(ctx, policy, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The mutating webhook runs: it labels the policy with a permanent id.
	if created.Labels[policyv1alpha1.PropagationPolicyPermanentIDLabel] == "" {
		t.Errorf("policy has no permanent-id label: the webhook did not run (labels %v)", created.Labels)
	}

	karmadaKube, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](10),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	if _, err := karmadaKube.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		waitFor(t, 90*time.Second, "deployment web in "+m.name, func(ctx context.Context) (bool, error) {
			d, err := clients[m.name].AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if got := ptr.Deref(d.Spec.Replicas, -1); got != m.want {
				return false, nil
			}
			return true, nil
		})
		d, _ := clients[m.name].AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		t.Logf("member %s: web has %d replicas", m.name, ptr.Deref(d.Spec.Replicas, -1))
	}

	// Garbage collection runs in the Karmada API: deleting the template removes its binding.
	if err := karmadaKube.AppsV1().Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "resource bindings collected", func(ctx context.Context) (bool, error) {
		rbs, err := kc.WorkV1alpha2().ResourceBindings("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(rbs.Items) == 0, nil
	})
}

// joinPush does by hand what a Push join does: a service account with cluster-admin in the
// member, its controller-filled token Secret, the credentials Secret in karmada-cluster and the
// Cluster object. It returns a client of the member.
func joinPush(t *testing.T, ctx context.Context, kc karmadaclient.Interface, cp *ControlPlane, member *cluster.Cluster) kubernetes.Interface {
	t.Helper()
	name := member.Name()
	mc, err := kubernetes.NewForConfig(member.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	const ns, sa = "karmada-cluster", "karmada-push"
	if _, err := mc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "karmada-push"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sa + "-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var token, caBundle []byte
	waitFor(t, 30*time.Second, "token of "+sa+" in "+name, func(ctx context.Context) (bool, error) {
		s, err := mc.CoreV1().Secrets(ns).Get(ctx, sa+"-token", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		token, caBundle = s.Data[corev1.ServiceAccountTokenKey], s.Data[corev1.ServiceAccountRootCAKey]
		return len(token) > 0 && len(caBundle) > 0, nil
	})
	// The token works against the member before Karmada is told about it.
	tokenCfg := &rest.Config{Host: member.Endpoint(), BearerToken: string(token), TLSClientConfig: rest.TLSClientConfig{CAData: caBundle}}
	if _, err := kubernetes.NewForConfigOrDie(tokenCfg).CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("member %s token: %v", name, err)
	}

	kk, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = kk.CoreV1().Secrets(ClusterNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ClusterNamespace},
		Data:       map[string][]byte{clusterv1alpha1.SecretTokenKey: token, clusterv1alpha1.SecretCADataKey: caBundle},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = kc.ClusterV1alpha1().Clusters().Create(ctx, &clusterv1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: clusterv1alpha1.ClusterSpec{
			SyncMode:    clusterv1alpha1.Push,
			APIEndpoint: member.Endpoint(),
			SecretRef:   &clusterv1alpha1.LocalSecretReference{Namespace: ClusterNamespace, Name: name},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}
