package labworld

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// NodeBalancerAPI is the part of the lab's Linode API the CloudController uses;
// *linodeapi.Server is one.
type NodeBalancerAPI interface {
	CreateNodeBalancer(linodeapi.NodeBalancerSpec) (linodeapi.NodeBalancer, error)
	DeleteNodeBalancer(id int) bool
	NodeBalancers() []linodeapi.NodeBalancer
}

// LoadBalancerCleanupFinalizer is the finalizer Kubernetes' service controller (in every
// cloud controller manager, LKE's too) puts on a LoadBalancer Service, so the load balancer
// is deleted before the Service is gone.
const LoadBalancerCleanupFinalizer = "service.kubernetes.io/load-balancer-cleanup"

// LoadBalancerTagsAnnotation holds extra NodeBalancer tags, comma-separated, as Linode's CCM reads it.
const LoadBalancerTagsAnnotation = "service.beta.kubernetes.io/linode-loadbalancer-tags"

// serviceUIDTagPrefix tags a NodeBalancer with the UID of the Service it is for: the lab
// finds it again by that tag after a restart (Linode's CCM finds it by the status's IP).
const serviceUIDTagPrefix = "service-uid:"

// CloudController plays LKE's cloud controller manager for one lab cluster: every Service
// of type LoadBalancer (without a loadBalancerClass) gets a NodeBalancer in the lab's Linode
// API, in the cluster's region, labelled ccm-<12 hex> and tagged with the cluster (lke<ID>)
// as Linode's CCM does, and its IPv4 and hostname in status.loadBalancer.ingress. The
// NodeBalancer goes when the Service is deleted (the service controller's finalizer holds
// the Service until then) or stops being a LoadBalancer. Nothing forwards traffic to the
// cluster; with Answer, a responder per NodeBalancer answers health checks on its address
// (Frontends), following the Service's Deployments and the cluster's ingress fault
// (SetIngressFault).
type CloudController struct {
	Client        kubernetes.Interface
	NodeBalancers NodeBalancerAPI
	ClusterID     int
	Region        string
	// Answer has each NodeBalancer's address answer as its frontend would (Frontends): the
	// addresses must be local, as the Backend's loopback ones are. Without it a NodeBalancer
	// is an address only.
	Answer bool
	Log    *slog.Logger
}

func (cc CloudController) clusterTag() string { return clusterName(cc.ClusterID) }

// Run keeps NodeBalancers and Service statuses in step until ctx ends.
func (cc CloudController) Run(ctx context.Context) error {
	log := cc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactory(cc.Client, 10*time.Minute)
	svcs := factory.Core().V1().Services()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if m, err := metaOf(obj); err == nil {
			queue.Add(types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}
	if _, err := svcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	var answer *answering
	if cc.Answer {
		var err error
		if answer, err = cc.startAnswering(factory, svcs.Lister(), queue, log); err != nil {
			return err
		}
		defer answer.close()
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cloud controller: cache of %v not synced: %w", typ, context.Cause(ctx))
		}
	}
	if answer != nil {
		if err := answer.start(ctx); err != nil {
			return err
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	// NodeBalancers of Services that went while no controller ran.
	if err := cc.collect(svcs.Lister().List(labels.Everything())); err != nil {
		log.Warn("cloud controller: collecting NodeBalancers", "err", err)
	}
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return nil
		}
		svc, err := svcs.Lister().Services(key.Namespace).Get(key.Name)
		gone := apierrors.IsNotFound(err)
		if answer != nil && (gone || err == nil && !wantsLoadBalancer(svc)) {
			// Its frontend stops before its NodeBalancer goes, so the address is free when
			// another NodeBalancer gets it.
			answer.fronts.Remove(key.String())
		}
		switch {
		case gone:
			svc, err = nil, cc.collect(svcs.Lister().List(labels.Everything()))
		case err == nil:
			err = cc.sync(ctx, svc)
		}
		if answer != nil {
			// A port another process holds is tried again later.
			err = errors.Join(err, answer.update(key, svc))
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("cloud controller: retrying", "service", key, "err", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// wantsLoadBalancer: a LoadBalancer Service the default cloud provider serves, not being deleted.
func wantsLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

func (cc CloudController) sync(ctx context.Context, svc *corev1.Service) error {
	if !wantsLoadBalancer(svc) {
		for _, nb := range cc.nodeBalancersOf(svc.UID) {
			cc.NodeBalancers.DeleteNodeBalancer(nb.ID)
			cc.log().Info("NodeBalancer deleted", "service", svc.Namespace+"/"+svc.Name, "nodebalancer", nb.ID, "ipv4", nb.IPv4)
		}
		if svc.DeletionTimestamp == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			c := svc.DeepCopy()
			c.Status.LoadBalancer = corev1.LoadBalancerStatus{}
			if _, err := cc.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
				return ignoreNotFound(err)
			}
		}
		return cc.setFinalizer(ctx, svc, false)
	}
	// The finalizer first: a Service deleted from now on waits for its NodeBalancer to go.
	if err := cc.setFinalizer(ctx, svc, true); err != nil {
		return err
	}
	nbs := cc.nodeBalancersOf(svc.UID)
	var nb linodeapi.NodeBalancer
	if len(nbs) > 0 {
		nb = nbs[0]
	} else {
		var err error
		nb, err = cc.NodeBalancers.CreateNodeBalancer(linodeapi.NodeBalancerSpec{
			Region: cc.Region, Label: nodeBalancerLabel(cc.ClusterID, svc.UID), Tags: cc.tags(svc),
		})
		if err != nil {
			return err
		}
		cc.log().Info("NodeBalancer created", "service", svc.Namespace+"/"+svc.Name, "nodebalancer", nb.ID,
			"label", nb.Label, "ipv4", nb.IPv4, "hostname", nb.Hostname)
	}
	want := loadBalancerStatus(nb)
	if equalIngress(svc.Status.LoadBalancer.Ingress, want.Ingress) {
		return nil
	}
	// Fetched anew: setFinalizer may have moved the resourceVersion past the lister's.
	cur, err := cc.Client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		return ignoreNotFound(err)
	}
	cur.Status.LoadBalancer = want
	_, err = cc.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return ignoreNotFound(err)
}

func (cc CloudController) log() *slog.Logger {
	if cc.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cc.Log
}

// collect deletes the NodeBalancers of this cluster whose Service no longer wants one.
func (cc CloudController) collect(svcs []*corev1.Service, err error) error {
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, s := range svcs {
		if wantsLoadBalancer(s) {
			live[string(s.UID)] = true
		}
	}
	for _, nb := range cc.NodeBalancers.NodeBalancers() {
		if !slices.Contains(nb.Tags, cc.clusterTag()) {
			continue
		}
		for _, t := range nb.Tags {
			if uid, ok := strings.CutPrefix(t, serviceUIDTagPrefix); ok && !live[uid] {
				cc.NodeBalancers.DeleteNodeBalancer(nb.ID)
				cc.log().Info("NodeBalancer deleted: its Service is gone", "nodebalancer", nb.ID, "ipv4", nb.IPv4)
			}
		}
	}
	return nil
}

// nodeBalancersOf are the NodeBalancers of this cluster made for the Service with uid.
func (cc CloudController) nodeBalancersOf(uid types.UID) []linodeapi.NodeBalancer {
	var out []linodeapi.NodeBalancer
	for _, nb := range cc.NodeBalancers.NodeBalancers() {
		if slices.Contains(nb.Tags, cc.clusterTag()) && slices.Contains(nb.Tags, serviceUIDTagPrefix+string(uid)) {
			out = append(out, nb)
		}
	}
	return out
}

func (cc CloudController) tags(svc *corev1.Service) []string {
	tags := []string{cc.clusterTag(), serviceUIDTagPrefix + string(svc.UID)}
	for _, t := range strings.Split(svc.Annotations[LoadBalancerTagsAnnotation], ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// nodeBalancerLabel has the form of Linode CCM's labels (ccm-<12 hex digits>), derived from
// the cluster and the Service's UID instead of the clock, so it is the same after a restart.
func nodeBalancerLabel(clusterID int, uid types.UID) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s", clusterID, uid)))
	return "ccm-" + hex.EncodeToString(sum[:6])
}

// loadBalancerStatus is the status Linode's CCM writes: the NodeBalancer's IPv4 and hostname.
func loadBalancerStatus(nb linodeapi.NodeBalancer) corev1.LoadBalancerStatus {
	mode := corev1.LoadBalancerIPModeVIP
	return corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: nb.IPv4, Hostname: nb.Hostname, IPMode: &mode}}}
}

func equalIngress(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname && (x.IPMode == nil) == (y.IPMode == nil) &&
			(x.IPMode == nil || *x.IPMode == *y.IPMode)
	})
}

// setFinalizer adds or removes LoadBalancerCleanupFinalizer.
func (cc CloudController) setFinalizer(ctx context.Context, svc *corev1.Service, on bool) error {
	if slices.Contains(svc.Finalizers, LoadBalancerCleanupFinalizer) == on {
		return nil
	}
	cur, err := cc.Client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if err != nil {
		return ignoreNotFound(err)
	}
	if cur.UID != svc.UID {
		return nil // another Service of that name: its own event follows
	}
	has := slices.Contains(cur.Finalizers, LoadBalancerCleanupFinalizer)
	switch {
	case on && !has:
		cur.Finalizers = append(cur.Finalizers, LoadBalancerCleanupFinalizer)
	case !on && has:
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == LoadBalancerCleanupFinalizer })
	default:
		return nil
	}
	_, err = cc.Client.CoreV1().Services(svc.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	return ignoreNotFound(err)
}

// showNodeBalancers prints the lab's NodeBalancers: the addresses of LoadBalancer Services.
func showNodeBalancers(ctx context.Context, lc *linodego.Client, out io.Writer) {
	nbs, err := lc.ListNodeBalancers(ctx, nil)
	if err != nil {
		fmt.Fprintf(out, "\nNodeBalancers: not readable: %v\n", err)
		return
	}
	fmt.Fprintf(out, "\nNodeBalancers (LoadBalancer Services; their addresses answer health checks, nothing forwards traffic):\n")
	if len(nbs) == 0 {
		fmt.Fprintln(out, "  none")
		return
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  LABEL\tREGION\tIPV4\tHOSTNAME\tTAGS")
	for _, nb := range nbs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", orDash(nb.Label), nb.Region, orDash(nb.IPv4), orDash(nb.Hostname), strings.Join(nb.Tags, ","))
	}
	tw.Flush()
}

func orDash(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// answering is the part of a CloudController with Answer: the frontends of its
// NodeBalancers, and what they follow (the Services' Deployments, the ingress fault).
type answering struct {
	cc          CloudController
	fronts      *Frontends
	deployments appslisters.DeploymentLister
	faults      informers.SharedInformerFactory
	faultCMs    corelisters.ConfigMapLister
}

// startAnswering registers the informers the frontends follow: a change of a Deployment
// requeues the LoadBalancer Services of its namespace, a change of the faults every one.
func (cc CloudController) startAnswering(factory informers.SharedInformerFactory, svcs corelisters.ServiceLister,
	queue workqueue.TypedRateLimitingInterface[types.NamespacedName], log *slog.Logger) (*answering, error) {
	requeue := func(ns string) {
		var list []*corev1.Service
		var err error
		if ns == "" {
			list, err = svcs.List(labels.Everything())
		} else {
			list, err = svcs.Services(ns).List(labels.Everything())
		}
		if err != nil {
			return
		}
		for _, s := range list {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				queue.Add(types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
			}
		}
	}
	onDeployment := func(obj any) {
		if m, err := metaOf(obj); err == nil {
			requeue(m.GetNamespace())
		}
	}
	deps := factory.Apps().V1().Deployments()
	if _, err := deps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onDeployment, UpdateFunc: func(_, obj any) { onDeployment(obj) }, DeleteFunc: onDeployment,
	}); err != nil {
		return nil, err
	}
	faults := faultsInformer(cc.Client)
	cms := faults.Core().V1().ConfigMaps()
	all := func(any) { requeue("") }
	if _, err := cms.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: all, UpdateFunc: func(_, o any) { all(o) }, DeleteFunc: all,
	}); err != nil {
		return nil, err
	}
	return &answering{cc: cc, fronts: &Frontends{Log: log}, deployments: deps.Lister(), faults: faults, faultCMs: cms.Lister()}, nil
}

// start runs the faults' informer until ctx ends.
func (a *answering) start(ctx context.Context) error {
	a.faults.Start(ctx.Done())
	for typ, ok := range a.faults.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cloud controller: cache of %v not synced: %w", typ, context.Cause(ctx))
		}
	}
	return nil
}

func (a *answering) close() {
	a.faults.Shutdown()
	a.fronts.Close()
}

// update makes the frontend of the Service key (nil: gone) match its NodeBalancer, its
// Deployments and the ingress fault.
func (a *answering) update(key types.NamespacedName, svc *corev1.Service) error {
	if svc == nil || !wantsLoadBalancer(svc) {
		a.fronts.Remove(key.String())
		return nil
	}
	nbs := a.cc.nodeBalancersOf(svc.UID)
	if len(nbs) == 0 {
		a.fronts.Remove(key.String())
		return nil
	}
	addr := net.ParseIP(nbs[0].IPv4)
	if addr == nil || !addr.IsLoopback() {
		// The lab's range was full: the NodeBalancer got a pool address nothing here can serve.
		a.fronts.Remove(key.String())
		return nil
	}
	return a.fronts.Set(key.String(), frontendSpecOf(svc, nbs[0].IPv4, a.ready(svc), a.down()))
}

// ready: a Deployment of the Service's namespace whose Pods the Service selects has a replica
// available (as the Kubelet stand-in and the deployment controller report it).
func (a *answering) ready(svc *corev1.Service) bool {
	if len(svc.Spec.Selector) == 0 {
		return false // no selector, no endpoints
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	deps, err := a.deployments.Deployments(svc.Namespace).List(labels.Everything())
	if err != nil {
		return false
	}
	for _, d := range deps {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) && d.Status.AvailableReplicas > 0 {
			return true
		}
	}
	return false
}

func (a *answering) down() bool {
	cm, err := a.faultCMs.ConfigMaps(FaultsNamespace).Get(FaultsConfigMap)
	return err == nil && cm.Data[FaultIngressKey] == IngressDown
}
