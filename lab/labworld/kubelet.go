package labworld

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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
// they create Pods the Kubelet stand-in does not run (a StatefulSet's, a DaemonSet's, a Job's),
// which would stay Pending forever. The Kubelet stand-in writes the status these controllers
// (and the kubelets behind them) would.
//
// The replicaset controller does run, and so do the deployment, endpointslice and garbage
// collector controllers: the ReplicaSet controller creates (and on scale-down deletes) the Pods
// of every ReplicaSet and derives the ReplicaSet's status from them; the Kubelet stand-in
// schedules those Pods onto the cluster's Nodes and reports them Running and Ready with an
// address of the cluster's pod range; the endpointslice controller makes each Service's
// EndpointSlices from the ready Pods it selects (what istiod reads); the deployment controller
// derives the Deployment status (what Helm and Karmada read) from the ReplicaSets'. This is the
// most faithful arrangement without a kubelet: every object but the Pods' status and binding is
// written by the controller that writes it in a real cluster, so Pods, EndpointSlices and
// Deployment availability always agree. (The alternative, the stand-in writing Pods for each
// ReplicaSet itself, would duplicate the ReplicaSet controller's scale-up/down and adoption and
// keep writing ReplicaSet status that does not come from Pods.)
var StandInControllers = []string{
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
	// FaultReplicasKey set to "unavailable" keeps every Pod unready, so no ReplicaSet has a
	// replica available and no Service a ready endpoint.
	FaultReplicasKey    = "replicas"
	ReplicasUnavailable = "unavailable"
	ReplicasAvailable   = "available"
	// FaultIngressKey set to "down" closes every load balancer frontend of the cluster.
	FaultIngressKey = "ingress"
	IngressDown     = "down"
	IngressUp       = "up"
)

// SetReplicasFault makes the Kubelet stand-in of the cluster behind client report every Pod
// Running but not Ready, as if every readiness probe failed (the ReplicaSet controller then
// counts 0 ready and available, so their Deployments report none available, and the
// endpointslice controller marks every endpoint not ready), or report them Ready again.
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

// Kubelet stands in for the scheduler and every kubelet of a lab cluster, without running
// any container:
//   - a Pod (the ReplicaSet controller's) is bound to the Node with the fewest Pods, then reads
//     as Running with every container started and ready, a pod IP from PodRange and its
//     Node's InternalIP as host IP; while the cluster's FaultsConfigMap says replicas:
//     unavailable, every Pod reads as Running but not Ready (readiness failing);
//   - a Pod being deleted is removed at once (its containers "stop" immediately), as the
//     kubelet confirms a graceful deletion;
//   - a StatefulSet reads as ready with all replicas current and updated;
//   - a DaemonSet reads as scheduled and ready on every Node;
//   - a Job annotated CompleteJobAnnotation="true" reads as succeeded;
//   - a LoadBalancer Service gets the cluster's Address as its ingress IP.
//
// StatefulSets, DaemonSets and Jobs get no Pods (their controllers do not run): only
// Deployments and ReplicaSets have Pods, hence EndpointSlices.
//
// The lab cluster must run kube-controller-manager with ControllerManagerArgs.
type Kubelet struct {
	Client kubernetes.Interface
	// Address is the cluster's loopback address: its load balancers' IP. Empty leaves
	// LoadBalancer Services alone.
	Address string
	// PodRange is the cluster's pod network, from which Pods get their IPs. Nil means
	// PodRangeOf(Address), or LKEPodRange if Address is empty.
	PodRange *net.IPNet
	// Runs, if set, says which Pods the lab runs a real process for (istiod's, with
	// Options.Istiod): such a Pod reads Ready only while its containers' readiness probes pass,
	// probed as a kubelet probes them, through Network (a container without a readiness probe
	// is ready once its process serves a port). Every other Pod reads Ready at once.
	Runs    func(*corev1.Pod) bool
	Network *PodNetwork
	Log     *slog.Logger
}

// LKEPodRange is the pod network of every LKE cluster.
var LKEPodRange = &net.IPNet{IP: net.IPv4(10, 2, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}

// PodRangeOf is the pod network of the lab cluster on loopback address: 10.<a>.0.0/16 for
// 127.x.y.<a>. LKE gives every cluster 10.2.0.0/16 (fine in a multi-network mesh, where each
// cluster is its own network), but distinct ranges let a lab's pod IPs tell their cluster
// apart; one lab's clusters take consecutive addresses of one range, so their last bytes
// differ. Pod IPs start at 10.<a>.1.1: 10.<a>.0.0/24 is left out, so a cluster on 127.x.y.0
// keeps clear of the lab clusters' Service range 10.0.0.0/24. An address that is not IPv4
// gets LKEPodRange.
func PodRangeOf(address string) *net.IPNet {
	ip := net.ParseIP(address).To4()
	if ip == nil {
		return LKEPodRange
	}
	return &net.IPNet{IP: net.IPv4(10, ip[3], 0, 0).To4(), Mask: net.CIDRMask(16, 32)}
}

// nextPodIP is the lowest address of r from its second /24 on, other than a .0 or a .255,
// that used does not hold; "" when r is full (or smaller than a /23).
func nextPodIP(r *net.IPNet, used map[string]bool) string {
	base := r.IP.To4()
	ones, bits := r.Mask.Size()
	if base == nil || bits != 32 || ones > 23 {
		return ""
	}
	first := ipUint(base)
	size := uint64(1) << (32 - ones)
	for off := uint64(256); off < size; off++ {
		ip := first + uint32(off)
		if b := ip & 0xff; b == 0 || b == 255 {
			continue
		}
		if a := uintIP(ip).String(); !used[a] {
			return a
		}
	}
	return ""
}

// pickNode is the Node with the fewest Pods (those pods show bound, and those in bound), the
// first by name among equals; "" without Nodes.
func pickNode(nodes []*corev1.Node, pods []*corev1.Pod, bound map[string]string) string {
	count := map[string]int{}
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" {
			count[n]++
		} else if n := bound[p.Namespace+"/"+p.Name]; n != "" {
			count[n]++
		}
	}
	best := ""
	for _, n := range nodes {
		if n.DeletionTimestamp != nil {
			continue
		}
		if best == "" || count[n.Name] < count[best] || count[n.Name] == count[best] && n.Name < best {
			best = n.Name
		}
	}
	return best
}

func nodeInternalIP(n *corev1.Node) string {
	ext := ""
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP:
			return a.Address
		case corev1.NodeExternalIP:
			ext = a.Address
		}
	}
	return ext
}

// faultNotReady is why every Pod is unready under the lab's replicas fault.
const faultNotReady = "the lab's replicas fault: readiness fails (" + FaultsNamespace + "/" + FaultsConfigMap + ")"

// podStatus is the status of a Pod bound to a node at hostIP whose containers all run, ready
// or, when notReady says why (the lab's replicas fault, a failing readiness probe), not; ip is
// its pod IP unless it has one. Transition times change only with what they describe.
func podStatus(o *corev1.Pod, hostIP, ip, notReady string, now time.Time) (corev1.PodStatus, bool) {
	ready := notReady == ""
	st := *o.Status.DeepCopy()
	if st.PodIP != "" {
		ip = st.PodIP
	}
	t := metav1.NewTime(now)
	st.Phase = corev1.PodRunning
	st.ObservedGeneration = o.Generation
	st.HostIP, st.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if st.StartTime == nil {
		st.StartTime = &t
	}
	condition := func(typ corev1.PodConditionType, ok bool, reason, message string) {
		status := corev1.ConditionFalse
		if ok {
			status = corev1.ConditionTrue
		}
		for i := range st.Conditions {
			c := &st.Conditions[i]
			if c.Type != typ {
				continue
			}
			if c.Status != status {
				c.Status, c.LastTransitionTime = status, t
			}
			c.Reason, c.Message, c.ObservedGeneration = reason, message, o.Generation
			return
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: typ, Status: status, Reason: reason,
			Message: message, LastTransitionTime: t, ObservedGeneration: o.Generation})
	}
	reason, message := "", ""
	if !ready {
		reason, message = "ContainersNotReady", notReady
	}
	condition(corev1.PodReadyToStartContainers, true, "", "")
	condition(corev1.PodInitialized, true, "", "")
	condition(corev1.ContainersReady, ready, reason, message)
	condition(corev1.PodReady, ready, reason, message)
	condition(corev1.PodScheduled, true, "", "")

	containers := make([]corev1.ContainerStatus, 0, len(o.Spec.Containers))
	for _, c := range o.Spec.Containers {
		started := *st.StartTime
		for _, old := range st.ContainerStatuses {
			if old.Name == c.Name && old.State.Running != nil {
				started = old.State.Running.StartedAt
			}
		}
		containers = append(containers, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
			ContainerID: "lab://" + string(o.UID) + "/" + c.Name, Ready: ready, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}})
	}
	st.ContainerStatuses = containers
	return st, !equality.Semantic.DeepEqual(o.Status, st)
}

func ptrTo[T any](v T) *T { return &v }

type objectKey struct {
	kind, namespace, name string
}

// Run keeps statuses up to date until ctx ends.
func (k Kubelet) Run(ctx context.Context) error {
	log := k.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	podRange := k.PodRange
	if podRange == nil {
		podRange = LKEPodRange
		if k.Address != "" {
			podRange = PodRangeOf(k.Address)
		}
	}
	factory := informers.NewSharedInformerFactory(k.Client, 10*time.Minute)
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[objectKey]())
	defer queue.ShutDown()

	enqueuer := func(kind string) func(any) {
		return func(obj any) {
			if m, err := metaOf(obj); err == nil {
				queue.Add(objectKey{kind, m.GetNamespace(), m.GetName()})
			}
		}
	}
	watch := func(kind string, inf cache.SharedIndexInformer) error {
		enqueue := enqueuer(kind)
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		})
		return err
	}
	pods := factory.Core().V1().Pods()
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
	// A fault set or lifted changes every Pod's readiness; a new Node may take Pending Pods.
	requeuePods := func(any) {
		if all, err := pods.Lister().List(labels.Everything()); err == nil {
			for _, o := range all {
				queue.Add(objectKey{"Pod", o.Namespace, o.Name})
			}
		}
	}
	if _, err := faultCMs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: requeuePods, UpdateFunc: func(_, o any) { requeuePods(o) }, DeleteFunc: requeuePods,
	}); err != nil {
		return err
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: requeuePods}); err != nil {
		return err
	}
	// A Pod's deletion frees its IP.
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: enqueuer("Pod")}); err != nil {
		return err
	}
	for kind, inf := range map[string]cache.SharedIndexInformer{
		"Pod": pods.Informer(), "StatefulSet": sts.Informer(), "DaemonSet": ds.Informer(),
		"Job": jobs.Informer(), "Service": svcs.Informer(),
	} {
		if err := watch(kind, inf); err != nil {
			return err
		}
	}
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

	// One worker syncs, so these need no lock.
	probes := &prober{network: k.Network, failures: map[string]int{}, passes: map[string]int{}, ready: map[string]bool{}}
	assigned := map[string]string{} // namespace/name -> the IP given, until the informer shows it
	bound := map[string]string{}    // namespace/name -> the Node bound to, until the informer shows it

	syncPod := func(ctx context.Context, key objectKey) error {
		id := key.namespace + "/" + key.name
		o, err := pods.Lister().Pods(key.namespace).Get(key.name)
		if apierrors.IsNotFound(err) {
			delete(assigned, id)
			delete(bound, id)
			probes.forget(id)
			return nil
		}
		if err != nil {
			return err
		}
		podClient := k.Client.CoreV1().Pods(key.namespace)
		if o.DeletionTimestamp != nil {
			// Deleted: the containers stop at once and the kubelet confirms the deletion.
			zero := int64(0)
			err := podClient.Delete(ctx, o.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
				Preconditions: &metav1.Preconditions{UID: &o.UID}})
			if apierrors.IsConflict(err) { // another Pod of that name by now
				return nil
			}
			return ignoreNotFound(err)
		}
		if o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed {
			return nil
		}
		all, err := nodes.Lister().List(labels.Everything())
		if err != nil {
			return err
		}
		if o.Spec.NodeName == "" {
			if bound[id] != "" {
				return nil // bound; the informer shows it soon
			}
			ps, err := pods.Lister().List(labels.Everything())
			if err != nil {
				return err
			}
			node := pickNode(all, ps, bound)
			if node == "" {
				return fmt.Errorf("pod %s: no Node to bind it to", id) // retried, and requeued when a Node comes
			}
			err = podClient.Bind(ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, UID: o.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: node},
			}, metav1.CreateOptions{})
			if err != nil {
				return ignoreNotFound(err)
			}
			bound[id] = node
			return nil // its update event brings it back, bound
		}
		delete(bound, id)
		hostIP := ""
		for _, n := range all {
			if n.Name == o.Spec.NodeName {
				hostIP = nodeInternalIP(n)
			}
		}
		if hostIP == "" {
			return nil // not on one of the cluster's Nodes: no kubelet of ours runs it
		}
		ip := o.Status.PodIP
		if ip == "" {
			ip = assigned[id]
		}
		if ip == "" {
			ps, err := pods.Lister().List(labels.Everything())
			if err != nil {
				return err
			}
			used := map[string]bool{}
			for _, p := range ps {
				used[p.Status.PodIP] = true
			}
			for _, a := range assigned {
				used[a] = true
			}
			if ip = nextPodIP(podRange, used); ip == "" {
				return fmt.Errorf("pod %s: pod range %v is full", id, podRange)
			}
		}
		assigned[id] = ip
		if o.Status.PodIP == ip {
			delete(assigned, id) // the Pod holds it now
		}
		notReady := ""
		switch {
		case unavailable():
			notReady = faultNotReady
		case k.Runs != nil && k.Runs(o):
			notReady = probes.check(ctx, o, ip)
			queue.AddAfter(key, probes.period(o))
		}
		st, changed := podStatus(o, hostIP, ip, notReady, time.Now())
		if !changed {
			return nil
		}
		c := o.DeepCopy()
		c.Status = st
		_, err = podClient.UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return ignoreNotFound(err)
	}

	sync := func(ctx context.Context, key objectKey) error {
		switch key.kind {
		case "Pod":
			return syncPod(ctx, key)
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
