package labworld

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// CompleteJobAnnotation marks a Job the Kubelet stand-in completes: with the value "true"
// the Job reads as succeeded as soon as it is seen. Every other Job is left alone (the
// Karmada chart's Jobs belong to the karmadalab Player, which does their effect first).
const CompleteJobAnnotation = "lab.reconcile.dev/complete-job"

// StandInControllers are the kube-controller-manager controllers a lab cluster runs without:
// they create Pods, which would stay Pending forever with no scheduler and no kubelet. The
// Kubelet stand-in writes the status these controllers (and the kubelets behind them) would.
// The deployment controller keeps running: it makes the ReplicaSets Helm's readiness check
// looks for and derives the Deployment status from theirs.
var StandInControllers = []string{
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
}

// ControllerManagerArgs are the extra kube-controller-manager flags of a lab cluster that
// runs the Kubelet stand-in.
func ControllerManagerArgs() []string {
	v := "*"
	for _, c := range StandInControllers {
		v += ",-" + c
	}
	return []string{"--controllers", v}
}

// The lab's faults of a cluster live in the cluster itself, in this ConfigMap, so
// `reconcile-lab fault replicas|ingress` reaches a running lab's Kubelet stand-in and
// CloudController without a channel of its own.
const (
	FaultsNamespace = "kube-system"
	FaultsConfigMap = "reconcile-lab-faults"
	// FaultReplicasKey set to "unavailable" keeps every ReplicaSet's replicas unavailable.
	FaultReplicasKey    = "replicas"
	ReplicasUnavailable = "unavailable"
	ReplicasAvailable   = "available"
	// FaultIngressKey set to "down" closes every load balancer frontend of the cluster.
	FaultIngressKey = "ingress"
	IngressDown     = "down"
	IngressUp       = "up"
)

// SetReplicasFault makes the Kubelet stand-in of the cluster behind client keep its
// ReplicaSets' replicas unavailable (ready and available 0, so their Deployments report
// none available), or report them available again.
func SetReplicasFault(ctx context.Context, client kubernetes.Interface, unavailable bool) error {
	value := ReplicasAvailable
	if unavailable {
		value = ReplicasUnavailable
	}
	return setFault(ctx, client, FaultReplicasKey, value)
}

// SetIngressFault closes every load balancer frontend of the cluster behind client (down:
// connections to its NodeBalancers' addresses are refused, as in a region outage), or opens
// them again. The cluster's CloudController watches it.
func SetIngressFault(ctx context.Context, client kubernetes.Interface, down bool) error {
	value := IngressUp
	if down {
		value = IngressDown
	}
	return setFault(ctx, client, FaultIngressKey, value)
}

// setFault sets one key of the cluster's FaultsConfigMap, leaving the other faults as they are.
func setFault(ctx context.Context, client kubernetes.Interface, key, value string) error {
	cms := client.CoreV1().ConfigMaps(FaultsNamespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: FaultsConfigMap, Namespace: FaultsNamespace},
		Data: map[string]string{key: value}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err == nil || !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cms.Get(ctx, FaultsConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Data[key] == value {
			return nil
		}
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		cur.Data[key] = value
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// faultsInformer watches the cluster's FaultsConfigMap alone.
func faultsInformer(client kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithNamespace(FaultsNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + FaultsConfigMap
		}))
}

// Kubelet stands in for every kubelet of a lab cluster, without creating or running any Pod:
//   - a ReplicaSet reads as fully ready (replicas = ready = available = spec.replicas), so the
//     deployment controller marks its Deployment Available with all replicas ready; while the
//     cluster's FaultsConfigMap says replicas: unavailable, none is ready or available;
//   - a StatefulSet reads as ready with all replicas current and updated;
//   - a DaemonSet reads as scheduled and ready on every Node;
//   - a Job annotated CompleteJobAnnotation="true" reads as succeeded;
//   - a LoadBalancer Service gets the cluster's Address as its ingress IP.
//
// The lab cluster must run kube-controller-manager with ControllerManagerArgs.
type Kubelet struct {
	Client kubernetes.Interface
	// Address is the cluster's loopback address: its nodes' IP and its load balancers' IP.
	Address string
	Log     *slog.Logger
}

type objectKey struct {
	kind, namespace, name string
}

// Run keeps statuses up to date until ctx ends.
func (k Kubelet) Run(ctx context.Context) error {
	log := k.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactory(k.Client, 10*time.Minute)
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[objectKey]())
	defer queue.ShutDown()

	watch := func(kind string, inf cache.SharedIndexInformer) error {
		enqueue := func(obj any) {
			if m, err := metaOf(obj); err == nil {
				queue.Add(objectKey{kind, m.GetNamespace(), m.GetName()})
			}
		}
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		})
		return err
	}
	rs := factory.Apps().V1().ReplicaSets()
	sts := factory.Apps().V1().StatefulSets()
	ds := factory.Apps().V1().DaemonSets()
	jobs := factory.Batch().V1().Jobs()
	svcs := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	faults := faultsInformer(k.Client)
	faultCMs := faults.Core().V1().ConfigMaps()
	unavailable := func() bool {
		cm, err := faultCMs.Lister().ConfigMaps(FaultsNamespace).Get(FaultsConfigMap)
		return err == nil && cm.Data[FaultReplicasKey] == ReplicasUnavailable
	}
	// A fault set or lifted changes every ReplicaSet's status.
	requeueAll := func(any) {
		if all, err := rs.Lister().List(labels.Everything()); err == nil {
			for _, o := range all {
				queue.Add(objectKey{"ReplicaSet", o.Namespace, o.Name})
			}
		}
	}
	if _, err := faultCMs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: requeueAll, UpdateFunc: func(_, o any) { requeueAll(o) }, DeleteFunc: requeueAll,
	}); err != nil {
		return err
	}
	for kind, inf := range map[string]cache.SharedIndexInformer{
		"ReplicaSet": rs.Informer(), "StatefulSet": sts.Informer(), "DaemonSet": ds.Informer(),
		"Job": jobs.Informer(), "Service": svcs.Informer(),
	} {
		if err := watch(kind, inf); err != nil {
			return err
		}
	}
	_ = nodes.Informer()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kubelet stand-in: cache of %v not synced: %w", typ, context.Cause(ctx))
		}
	}
	faults.Start(ctx.Done())
	defer faults.Shutdown()
	for typ, ok := range faults.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kubelet stand-in: cache of %v not synced: %w", typ, context.Cause(ctx))
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()

	sync := func(ctx context.Context, key objectKey) error {
		switch key.kind {
		case "ReplicaSet":
			o, err := rs.Lister().ReplicaSets(key.namespace).Get(key.name)
			if err != nil {
				return ignoreNotFound(err)
			}
			if st, changed := replicaSetStatus(o, unavailable()); changed {
				c := o.DeepCopy()
				c.Status = st
				_, err = k.Client.AppsV1().ReplicaSets(key.namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
			}
			return ignoreNotFound(err)
		case "StatefulSet":
			o, err := sts.Lister().StatefulSets(key.namespace).Get(key.name)
			if err != nil {
				return ignoreNotFound(err)
			}
			if st, changed := statefulSetStatus(o); changed {
				c := o.DeepCopy()
				c.Status = st
				_, err = k.Client.AppsV1().StatefulSets(key.namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
			}
			return ignoreNotFound(err)
		case "DaemonSet":
			o, err := ds.Lister().DaemonSets(key.namespace).Get(key.name)
			if err != nil {
				return ignoreNotFound(err)
			}
			ns, err := nodes.Lister().List(labels.Everything())
			if err != nil {
				return err
			}
			if st, changed := daemonSetStatus(o, int32(len(ns))); changed {
				c := o.DeepCopy()
				c.Status = st
				_, err = k.Client.AppsV1().DaemonSets(key.namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
			}
			return ignoreNotFound(err)
		case "Job":
			o, err := jobs.Lister().Jobs(key.namespace).Get(key.name)
			if err != nil {
				return ignoreNotFound(err)
			}
			if st, changed := jobStatus(o, time.Now()); changed {
				c := o.DeepCopy()
				c.Status = st
				_, err = k.Client.BatchV1().Jobs(key.namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
			}
			return ignoreNotFound(err)
		case "Service":
			o, err := svcs.Lister().Services(key.namespace).Get(key.name)
			if err != nil {
				return ignoreNotFound(err)
			}
			if st, changed := serviceStatus(o, k.Address); changed {
				c := o.DeepCopy()
				c.Status = st
				_, err = k.Client.CoreV1().Services(key.namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
			}
			return ignoreNotFound(err)
		}
		return nil
	}
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return nil
		}
		if err := sync(ctx, key); err != nil && ctx.Err() == nil {
			log.Debug("kubelet stand-in: retrying", "kind", key.kind, "namespace", key.namespace, "name", key.name, "err", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("not an object: %T", obj)
	}
	return m, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// replicaSetStatus is the status of a ReplicaSet whose Pods all run and are ready.
func replicaSetStatus(o *appsv1.ReplicaSet, unavailable bool) (appsv1.ReplicaSetStatus, bool) {
	n := replicasOf(o.Spec.Replicas)
	ready := n
	if unavailable {
		ready = 0 // the lab's fault: the Pods never become ready
	}
	st := o.Status
	want := appsv1.ReplicaSetStatus{
		Replicas: n, FullyLabeledReplicas: n, ReadyReplicas: ready, AvailableReplicas: ready,
		ObservedGeneration: o.Generation, Conditions: st.Conditions,
	}
	if st.Replicas == n && st.FullyLabeledReplicas == n && st.ReadyReplicas == ready &&
		st.AvailableReplicas == ready && st.ObservedGeneration == o.Generation && st.TerminatingReplicas == nil {
		return st, false
	}
	return want, true
}

// statefulSetStatus is the status of a StatefulSet whose Pods are all ready at the current revision.
func statefulSetStatus(o *appsv1.StatefulSet) (appsv1.StatefulSetStatus, bool) {
	n := replicasOf(o.Spec.Replicas)
	rev := fmt.Sprintf("%s-lab-%d", o.Name, o.Generation)
	st := o.Status
	if st.Replicas == n && st.ReadyReplicas == n && st.AvailableReplicas == n && st.CurrentReplicas == n &&
		st.UpdatedReplicas == n && st.ObservedGeneration == o.Generation && st.CurrentRevision == rev &&
		st.UpdateRevision == rev {
		return st, false
	}
	return appsv1.StatefulSetStatus{
		ObservedGeneration: o.Generation,
		Replicas:           n, ReadyReplicas: n, AvailableReplicas: n, CurrentReplicas: n, UpdatedReplicas: n,
		CurrentRevision: rev, UpdateRevision: rev, CollisionCount: st.CollisionCount, Conditions: st.Conditions,
	}, true
}

// daemonSetStatus is the status of a DaemonSet with a ready Pod on each of the cluster's nodes.
func daemonSetStatus(o *appsv1.DaemonSet, nodes int32) (appsv1.DaemonSetStatus, bool) {
	st := o.Status
	if st.DesiredNumberScheduled == nodes && st.CurrentNumberScheduled == nodes && st.NumberReady == nodes &&
		st.NumberAvailable == nodes && st.UpdatedNumberScheduled == nodes && st.NumberUnavailable == 0 &&
		st.NumberMisscheduled == 0 && st.ObservedGeneration == o.Generation {
		return st, false
	}
	return appsv1.DaemonSetStatus{
		ObservedGeneration:     o.Generation,
		DesiredNumberScheduled: nodes, CurrentNumberScheduled: nodes, NumberReady: nodes,
		NumberAvailable: nodes, UpdatedNumberScheduled: nodes,
		CollisionCount: st.CollisionCount, Conditions: st.Conditions,
	}, true
}

// jobStatus completes a Job annotated CompleteJobAnnotation="true" that has not finished.
// kube-apiserver accepts Complete=True only together with SuccessCriteriaMet=True, a start
// and a completion time.
func jobStatus(o *batchv1.Job, now time.Time) (batchv1.JobStatus, bool) {
	if o.Annotations[CompleteJobAnnotation] != "true" {
		return o.Status, false
	}
	for _, c := range o.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return o.Status, false
		}
	}
	t := metav1.NewTime(now)
	st := o.Status
	if st.StartTime == nil {
		st.StartTime = &t
	}
	st.CompletionTime = &t
	st.Active = 0
	st.Succeeded = 1
	if o.Spec.Completions != nil && *o.Spec.Completions > 1 {
		st.Succeeded = *o.Spec.Completions
	}
	ready := int32(0)
	st.Ready = &ready
	msg := "completed by the lab's kubelet stand-in (" + CompleteJobAnnotation + ")"
	st.Conditions = append(st.Conditions,
		batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
			Message: msg, LastProbeTime: t, LastTransitionTime: t},
		batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
			Message: msg, LastProbeTime: t, LastTransitionTime: t},
	)
	return st, true
}

// serviceStatus gives a LoadBalancer Service the cluster's address as its ingress IP, as a
// cloud load balancer in front of the cluster's nodes would.
func serviceStatus(o *corev1.Service, address string) (corev1.ServiceStatus, bool) {
	if o.Spec.Type != corev1.ServiceTypeLoadBalancer || address == "" {
		return o.Status, false
	}
	in := o.Status.LoadBalancer.Ingress
	if len(in) == 1 && in[0].IP == address && in[0].Hostname == "" {
		return o.Status, false
	}
	st := o.Status
	ipMode := corev1.LoadBalancerIPModeVIP
	st.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: address, IPMode: &ipMode}}
	return st, true
}
