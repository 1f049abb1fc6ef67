package labworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// Istiod's Deployment, as Istio's istiod chart names it, and the files of the istiod the lab
// runs for it under a cluster's directory.
const (
	IstiodNamespace = "istio-system"
	IstiodName      = "istiod"
	// IstiodDirName is the directory, in a lab cluster's directory, of its istiod: root/ (the
	// Pod's file system: its volumes projected at their mount paths), kubeconfig, istiod.log
	// and istiod.json (IstiodInfo, while it runs).
	IstiodDirName = "istiod"
)

// istiodTokenTTL is the life of the ServiceAccount tokens istiod is given; they are requested
// again every istiodTokenRefresh, as a kubelet refreshes projected tokens.
const (
	istiodTokenTTL     = time.Hour
	istiodTokenRefresh = 30 * time.Minute
)

// IstiodInfo describes the istiod running in a lab cluster (istiod.json in its IstiodDirName).
type IstiodInfo struct {
	PID int    `json:"pid"`
	Pod string `json:"pod"`
	// PodIP is the Pod's IP (from the cluster's pod range): its container ports at that IP
	// reach the process through the cluster's PodNetwork, which is how the API server calls
	// its webhooks.
	PodIP string `json:"podIP"`
	// Template is the hash of the Deployment's pod template it runs.
	Template string `json:"template"`
	// Monitoring is host:port of its monitoring server: /metrics and the /debug API
	// (/debug/clusterz, /debug/registryz, ...).
	Monitoring string `json:"monitoring"`
	// HTTP (readiness /ready), GRPC (plain-text xDS), SecureGRPC (xDS over TLS), Webhook (the
	// injection and validation webhooks, HTTPS) are host:port.
	HTTP       string    `json:"http"`
	GRPC       string    `json:"grpc"`
	SecureGRPC string    `json:"secureGRPC"`
	Webhook    string    `json:"webhook"`
	Started    time.Time `json:"started"`
}

// ReadIstiod reads the IstiodInfo of the istiod running in the lab cluster whose directory is
// clusterDir (LabCluster.Dir); an error wrapping fs.ErrNotExist when none runs.
func ReadIstiod(clusterDir string) (IstiodInfo, error) {
	var info IstiodInfo
	data, err := os.ReadFile(filepath.Join(clusterDir, IstiodDirName, "istiod.json"))
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(data, &info)
}

// Istiod plays the kubelet for istiod in a lab cluster: while the Deployment
// istio-system/istiod exists (with replicas), it runs one pilot-discovery as the kubelet
// would run that Deployment's Pod, and it runs it again whenever the pod template changes
// (reconcile's cacerts rotation bumps an annotation of it) or the process exits (after a
// back-off, as CrashLoopBackOff). "As the kubelet would":
//   - the container's args and env come from the pod template; fieldRef env (metadata.name,
//     metadata.namespace, spec.serviceAccountName, spec.nodeName, status.podIP, status.hostIP,
//     metadata.uid, labels and annotations), resourceFieldRef (a missing limit is the machine's
//     CPUs, as a node's allocatable), secretKeyRef, configMapKeyRef and envFrom are resolved;
//   - the working directory is root/, and every volume the container mounts is projected
//     under root/ at its mount path (Secrets, ConfigMaps, projected ServiceAccount tokens,
//     emptyDirs): Istio reads its files at paths relative to the working directory
//     (./etc/cacerts, ./var/run/secrets/tokens/istio-token, ...), so the plugged-in CA
//     (Secret cacerts at /etc/cacerts) is read from root/etc/cacerts unchanged;
//   - its in-cluster identity is its ServiceAccount: a token from the TokenRequest API,
//     written where a Pod has it (root/var/run/secrets/kubernetes.io/serviceaccount) and
//     named by the kubeconfig it is given (KUBECONFIG and --kubeconfig), refreshed in place.
//
// The listen addresses are the cluster's own loopback address with free ports (several
// clusters share the machine): --monitoringAddr, --httpAddr, --grpcAddr, --secureGRPCAddr,
// --httpsAddr and ctrlz replace the chart's. The mesh config (ConfigMap istio) and the injector
// ConfigMap are not mounted by Istio's chart: istiod reads them through the API, as in a
// real cluster. No Envoy runs: nothing connects to its xDS ports. The Deployment's status is
// still the Kubelet stand-in's.
type Istiod struct {
	Client kubernetes.Interface
	// RESTConfig is the cluster's: its Host and CA go into istiod's kubeconfig (never its
	// credentials).
	RESTConfig *rest.Config
	// Address is the cluster's loopback address; istiod listens there.
	Address string
	// Dir is the cluster's directory: istiod's files are in Dir/IstiodDirName.
	Dir string
	// Bin is pilot-discovery.
	Bin string
	// Network is the cluster's pod network: each istiod's Pod IP and container ports are routed
	// to the process while it runs. Nil routes nothing (nothing can call its webhooks).
	Network *PodNetwork
	// Started, if set, is called after each start of the process (the lab records PIDs).
	Started func()
	Log     *slog.Logger
}

type istiodProc struct {
	p      *cluster.Process
	hash   string
	pod    podIdentity
	tokens []tokenFile
	info   IstiodInfo
	spec   corev1.PodSpec
	meta   metav1.ObjectMeta
	// dir holds the Pod's files: root/ (its file system) and kubeconfig.
	dir string
}

// podIdentity is what the environment of the Pod refers to.
type podIdentity struct {
	name, namespace, uid, serviceAccount, node, ip, hostIP string
}

// tokenFile is a ServiceAccount token the process reads from a file, requested again on
// refresh.
type tokenFile struct {
	path      string
	audiences []string
	ttl       time.Duration
}

func (i *Istiod) log() *slog.Logger {
	if i.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return i.Log
}

func (i *Istiod) dir() string { return filepath.Join(i.Dir, IstiodDirName) }

// IsIstiodPod says whether the lab runs pilot-discovery for Pod o: a Pod of istiod's (label
// app=istiod in istio-system, as Istio's istiod chart labels its Pods, every revision's).
func IsIstiodPod(o *corev1.Pod) bool {
	return o.Namespace == IstiodNamespace && o.Labels["app"] == "istiod"
}

// istiodPorts are pilot-discovery's listen flags and the container port each serves by
// default (its flags' defaults, which Istio's chart declares as the container's ports).
var istiodPorts = []struct {
	flag string
	port int
}{
	{"monitoringAddr", 15014}, {"httpAddr", 8080}, {"grpcAddr", 15010}, {"secureGRPCAddr", 15012}, {"httpsAddr", 15017},
}

// Run runs istiod for every Pod of istiod's until ctx ends, then stops them.
func (i *Istiod) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(i.Client, 10*time.Minute,
		informers.WithNamespace(IstiodNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "app=istiod" }))
	inf := factory.Core().V1().Pods().Informer()
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	procs := map[types.UID]*istiodProc{}
	defer func() {
		for _, p := range procs {
			i.stop(p)
		}
		_ = os.Remove(filepath.Join(i.dir(), "istiod.json"))
	}()
	refresh := time.NewTicker(istiodTokenRefresh)
	defer refresh.Stop()
	type retryState struct {
		at      time.Time
		backoff time.Duration
	}
	const minBackoff, maxBackoff = time.Second, time.Minute
	retries := map[types.UID]*retryState{}
	exited := make(chan types.UID, 16)
	var timer *time.Timer
	var timerC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-timerC:
			timerC = nil
		case <-refresh.C:
			for _, p := range procs {
				if err := i.writeTokens(ctx, p); err != nil {
					i.log().Warn("istiod: refreshing its tokens", "pod", p.pod.name, "err", err)
				}
			}
			continue
		case uid := <-exited:
			p := procs[uid]
			if p == nil || p.p.Exited() == nil {
				continue
			}
			r := retries[uid]
			if r == nil {
				r = &retryState{backoff: minBackoff}
				retries[uid] = r
			}
			i.log().Warn("istiod exited; starting it again after a back-off", "pod", p.pod.name, "backoff", r.backoff,
				"log", cluster.Tail(filepath.Join(i.dir(), "istiod.log"), 5))
			i.stop(p)
			delete(procs, uid)
			r.at = time.Now().Add(r.backoff)
			r.backoff = min(2*r.backoff, maxBackoff)
		}
		// The Pods to run: bound to a Node, given an IP, not being deleted.
		want := map[types.UID]*corev1.Pod{}
		for _, obj := range inf.GetStore().List() {
			o := obj.(*corev1.Pod)
			if IsIstiodPod(o) && o.DeletionTimestamp == nil && o.Spec.NodeName != "" && o.Status.PodIP != "" &&
				o.Status.Phase != corev1.PodSucceeded && o.Status.Phase != corev1.PodFailed {
				want[o.UID] = o
			}
		}
		for uid, p := range procs {
			if want[uid] == nil {
				i.log().Info("istiod: its Pod is gone or being deleted; stopping it", "pod", p.pod.name)
				i.stop(p)
				delete(procs, uid)
			}
		}
		for uid := range retries {
			if want[uid] == nil {
				delete(retries, uid)
			}
		}
		next := time.Time{}
		for uid, o := range want {
			if procs[uid] != nil {
				continue
			}
			if r := retries[uid]; r != nil && time.Now().Before(r.at) {
				if next.IsZero() || r.at.Before(next) {
					next = r.at
				}
				continue
			}
			p, err := i.start(ctx, o)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r := retries[uid]
				if r == nil {
					r = &retryState{backoff: minBackoff}
					retries[uid] = r
				}
				i.log().Warn("istiod: cannot start it yet", "pod", o.Name, "err", err, "retry", r.backoff)
				r.at = time.Now().Add(r.backoff)
				r.backoff = min(2*r.backoff, maxBackoff)
				if next.IsZero() || r.at.Before(next) {
					next = r.at
				}
				continue
			}
			procs[uid] = p
			go func() {
				select {
				case <-p.p.Done():
					select {
					case exited <- uid:
					case <-ctx.Done():
					}
				case <-ctx.Done():
				}
			}()
		}
		i.writeInfo(procs)
		if !next.IsZero() {
			if timer != nil {
				timer.Stop()
			}
			timer = time.NewTimer(time.Until(next))
			timerC = timer.C
		}
	}
}

// writeInfo records the newest running istiod in istiod.json, or removes it when none runs.
func (i *Istiod) writeInfo(procs map[types.UID]*istiodProc) {
	var newest *istiodProc
	for _, p := range procs {
		if newest == nil || p.info.Started.After(newest.info.Started) {
			newest = p
		}
	}
	path := filepath.Join(i.dir(), "istiod.json")
	if newest == nil {
		_ = os.Remove(path)
		return
	}
	data, _ := json.MarshalIndent(newest.info, "", "  ")
	if err := writeFileAtomic(path, data); err != nil {
		i.log().Warn("istiod: writing istiod.json", "err", err)
	}
}

func (i *Istiod) stop(cur *istiodProc) {
	if cur == nil {
		return
	}
	if i.Network != nil {
		i.Network.Unroute(cur.info.PodIP)
	}
	if err := cur.p.Stop(); err != nil {
		i.log().Warn("istiod stop", "err", err)
	}
	_ = os.RemoveAll(cur.dir)
}

// start prepares Pod o's files, environment and args and starts pilot-discovery for it.
func (i *Istiod) start(ctx context.Context, o *corev1.Pod) (*istiodProc, error) {
	if len(o.Spec.Containers) == 0 {
		return nil, errors.New("istiod's Pod has no container")
	}
	c := o.Spec.Containers[0]
	for _, cc := range o.Spec.Containers {
		if cc.Name == "discovery" {
			c = cc
		}
	}
	sa := o.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	hash := o.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" {
		hash = string(o.UID)
	}
	cur := &istiodProc{hash: hash, spec: o.Spec, meta: o.ObjectMeta, pod: podIdentity{
		name: o.Name, namespace: o.Namespace, uid: string(o.UID), serviceAccount: sa, node: o.Spec.NodeName,
		ip: o.Status.PodIP, hostIP: o.Status.HostIP,
	}}
	dir := i.dir()
	cur.dir = filepath.Join(dir, "pods", o.Name)
	root := filepath.Join(cur.dir, "root")
	if err := os.RemoveAll(cur.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	// The Pod's ServiceAccount volume (the admission plugin would add it; the lab runs without).
	saDir := filepath.Join(root, "var/run/secrets/kubernetes.io/serviceaccount")
	ca := i.RESTConfig.CAData
	if len(ca) == 0 && i.RESTConfig.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(i.RESTConfig.CAFile); err != nil {
			return nil, err
		}
	}
	if err := writeFiles(saDir, map[string][]byte{"ca.crt": ca, "namespace": []byte(o.Namespace)}); err != nil {
		return nil, err
	}
	cur.tokens = append(cur.tokens, tokenFile{path: filepath.Join(saDir, "token"), ttl: istiodTokenTTL})
	if err := i.project(ctx, cur, root, c); err != nil {
		return nil, err
	}
	if err := i.writeTokens(ctx, cur); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(cur.dir, "kubeconfig")
	if err := i.writeKubeconfig(kubeconfig, ca, cur.tokens[0].path); err != nil {
		return nil, err
	}
	env, err := i.env(ctx, cur, c)
	if err != nil {
		return nil, err
	}
	env = setEnv(env, "KUBECONFIG", kubeconfig)

	ports, err := freePorts(i.Address, len(istiodPorts)+1)
	if err != nil {
		return nil, err
	}
	hp := func(p int) string { return net.JoinHostPort(i.Address, strconv.Itoa(p)) }
	listen := map[string]string{}
	flags := []string{"ctrlz_port", "ctrlz_address", "kubeconfig"}
	for k, f := range istiodPorts {
		listen[f.flag] = hp(ports[k])
		flags = append(flags, f.flag)
	}
	cur.info = IstiodInfo{Pod: o.Name, PodIP: cur.pod.ip, Template: hash, Monitoring: listen["monitoringAddr"], HTTP: listen["httpAddr"],
		GRPC: listen["grpcAddr"], SecureGRPC: listen["secureGRPCAddr"], Webhook: listen["httpsAddr"]}
	args := withoutFlags(c.Args, flags...)
	if len(args) == 0 {
		args = []string{"discovery"}
	}
	args = append(args, "--kubeconfig", kubeconfig)
	for _, f := range istiodPorts {
		args = append(args, "--"+f.flag, listen[f.flag])
	}
	args = append(args, "--ctrlz_address", i.Address, "--ctrlz_port", strconv.Itoa(ports[len(istiodPorts)]))

	logPath := filepath.Join(dir, "istiod.log")
	if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		fmt.Fprintf(f, "==== %s lab: starting pod %s (ip %s, template %s): %s %s\n", time.Now().UTC().Format(time.RFC3339),
			o.Name, cur.pod.ip, hash, i.Bin, strings.Join(args, " "))
		f.Close()
	}
	p, err := cluster.StartProcessWith("istiod "+o.Name, logPath, i.Bin, cluster.ProcessOptions{Env: env, Dir: root}, args...)
	if i.Started != nil {
		i.Started()
	}
	if err != nil {
		return nil, err
	}
	cur.p = p
	cur.info.PID, cur.info.Started = p.Pid(), time.Now().UTC()
	// The Pod's IP and container ports now reach the process, in the cluster's pod network.
	if i.Network != nil && cur.pod.ip != "" {
		for _, f := range istiodPorts {
			i.Network.Route(cur.pod.ip, f.port, listen[f.flag])
		}
	}
	i.log().Info("istiod started", "pod", o.Name, "ip", cur.pod.ip, "pid", cur.info.PID, "monitoring", cur.info.Monitoring)
	return cur, nil
}

// project writes every volume container c mounts under root at its mount path.
func (i *Istiod) project(ctx context.Context, cur *istiodProc, root string, c corev1.Container) error {
	vols := map[string]corev1.Volume{}
	for _, v := range cur.spec.Volumes {
		vols[v.Name] = v
	}
	ns := cur.pod.namespace
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return fmt.Errorf("volume mount %s: no such volume", m.Name)
		}
		target := filepath.Join(root, m.MountPath)
		if m.SubPath != "" {
			i.log().Warn("istiod: subPath mounts are not projected", "volume", m.Name)
			continue
		}
		if err := os.MkdirAll(target, 0o700); err != nil {
			return err
		}
		switch {
		case v.Secret != nil:
			files, err := i.secretFiles(ctx, ns, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
			if err != nil {
				return fmt.Errorf("volume %s: %w", m.Name, err)
			}
			if err := writeFiles(target, files); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			files, err := i.configMapFiles(ctx, ns, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
			if err != nil {
				return fmt.Errorf("volume %s: %w", m.Name, err)
			}
			if err := writeFiles(target, files); err != nil {
				return err
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				var files map[string][]byte
				var err error
				switch {
				case src.ServiceAccountToken != nil:
					t := src.ServiceAccountToken
					ttl := istiodTokenTTL
					if t.ExpirationSeconds != nil {
						ttl = time.Duration(*t.ExpirationSeconds) * time.Second
					}
					var aud []string
					if t.Audience != "" {
						aud = []string{t.Audience}
					}
					cur.tokens = append(cur.tokens, tokenFile{path: filepath.Join(target, t.Path), audiences: aud, ttl: ttl})
				case src.Secret != nil:
					files, err = i.secretFiles(ctx, ns, src.Secret.Name, src.Secret.Items, src.Secret.Optional)
				case src.ConfigMap != nil:
					files, err = i.configMapFiles(ctx, ns, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional)
				default:
					i.log().Debug("istiod: projected source not played", "volume", m.Name)
				}
				if err != nil {
					return fmt.Errorf("volume %s: %w", m.Name, err)
				}
				if err := writeFiles(target, files); err != nil {
					return err
				}
			}
		case v.EmptyDir != nil:
			// the directory made above
		default:
			i.log().Debug("istiod: volume kind not played; its mount path stays empty", "volume", m.Name)
		}
	}
	return nil
}

func (i *Istiod) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	s, err := i.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	return pick(s.Data, items), nil
}

func (i *Istiod) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	cm, err := i.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return pick(data, items), nil
}

// pick is data as files: every key, or only items (at their paths).
func pick(data map[string][]byte, items []corev1.KeyToPath) map[string][]byte {
	if len(items) == 0 {
		return data
	}
	out := map[string][]byte{}
	for _, it := range items {
		if v, ok := data[it.Key]; ok {
			out[it.Path] = v
		}
	}
	return out
}

// writeTokens requests every token of cur from the TokenRequest API and writes it in place.
func (i *Istiod) writeTokens(ctx context.Context, cur *istiodProc) error {
	for _, t := range cur.tokens {
		secs := int64(t.ttl / time.Second)
		tr, err := i.Client.CoreV1().ServiceAccounts(cur.pod.namespace).CreateToken(ctx, cur.pod.serviceAccount,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: t.audiences, ExpirationSeconds: &secs}},
			metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("token of ServiceAccount %s/%s: %w", cur.pod.namespace, cur.pod.serviceAccount, err)
		}
		if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
			return err
		}
		if err := writeFileAtomic(t.path, []byte(tr.Status.Token)); err != nil {
			return err
		}
	}
	return nil
}

// writeKubeconfig writes istiod's kubeconfig: the cluster's server and CA, its token file.
func (i *Istiod) writeKubeconfig(path string, ca []byte, tokenPath string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: i.RESTConfig.Host, CertificateAuthorityData: ca}
	cfg.AuthInfos["istiod"] = &clientcmdapi.AuthInfo{TokenFile: tokenPath}
	cfg.Contexts["istiod"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "istiod", Namespace: IstiodNamespace}
	cfg.CurrentContext = "istiod"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// env is the container's environment as the kubelet resolves it, plus HOSTNAME.
func (i *Istiod) env(ctx context.Context, cur *istiodProc, c corev1.Container) ([]string, error) {
	env := []string{"HOSTNAME=" + cur.pod.name}
	ns := cur.pod.namespace
	for _, ef := range c.EnvFrom {
		var data map[string][]byte
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, err = i.configMapFiles(ctx, ns, ef.ConfigMapRef.Name, nil, ef.ConfigMapRef.Optional)
		case ef.SecretRef != nil:
			data, err = i.secretFiles(ctx, ns, ef.SecretRef.Name, nil, ef.SecretRef.Optional)
		}
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = setEnv(env, ef.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		v, ok, err := i.envValue(ctx, cur, c, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			env = setEnv(env, e.Name, v)
		}
	}
	return env, nil
}

func (i *Istiod) envValue(ctx context.Context, cur *istiodProc, c corev1.Container, e corev1.EnvVar) (string, bool, error) {
	vf := e.ValueFrom
	if vf == nil {
		return e.Value, true, nil
	}
	ns := cur.pod.namespace
	switch {
	case vf.FieldRef != nil:
		path := vf.FieldRef.FieldPath
		switch path {
		case "metadata.name":
			return cur.pod.name, true, nil
		case "metadata.namespace":
			return ns, true, nil
		case "metadata.uid":
			return cur.pod.uid, true, nil
		case "spec.serviceAccountName":
			return cur.pod.serviceAccount, true, nil
		case "spec.nodeName":
			return cur.pod.node, true, nil
		case "status.podIP", "status.podIPs":
			return cur.pod.ip, true, nil
		case "status.hostIP", "status.hostIPs":
			if cur.pod.hostIP != "" {
				return cur.pod.hostIP, true, nil
			}
			return i.Address, true, nil
		}
		for prefix, m := range map[string]map[string]string{"metadata.labels": cur.meta.Labels, "metadata.annotations": cur.meta.Annotations} {
			if k, ok := strings.CutPrefix(path, prefix+"['"); ok {
				return m[strings.TrimSuffix(k, "']")], true, nil
			}
		}
		return "", false, fmt.Errorf("fieldRef %s not played by the lab", path)
	case vf.ResourceFieldRef != nil:
		return resourceValue(c, vf.ResourceFieldRef), true, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		data, err := i.secretFiles(ctx, ns, r.Name, nil, r.Optional)
		v, ok := data[r.Key]
		if err == nil && !ok && (r.Optional == nil || !*r.Optional) {
			err = fmt.Errorf("secret %s has no key %s", r.Name, r.Key)
		}
		return string(v), ok, err
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		data, err := i.configMapFiles(ctx, ns, r.Name, nil, r.Optional)
		v, ok := data[r.Key]
		if err == nil && !ok && (r.Optional == nil || !*r.Optional) {
			err = fmt.Errorf("configmap %s has no key %s", r.Name, r.Key)
		}
		return string(v), ok, err
	}
	return "", false, nil
}

// resourceValue resolves a resourceFieldRef as the kubelet does: a missing limit is the node's
// allocatable, here this machine's CPUs (the lab's Nodes say 4, the machine may have fewer) and
// the Nodes' 8Gi of memory; the value is rounded up to a whole divisor.
func resourceValue(c corev1.Container, r *corev1.ResourceFieldSelector) string {
	kind, name, _ := strings.Cut(r.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		switch name {
		case "cpu":
			q = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
		case "memory":
			q = resource.MustParse("8Gi")
		default:
			return "0"
		}
	}
	div := r.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if name == "cpu" {
		m, d := q.MilliValue(), div.MilliValue()
		return strconv.FormatInt((m+d-1)/d, 10)
	}
	v, d := q.Value(), div.Value()
	return strconv.FormatInt((v+d-1)/d, 10)
}

// setEnv sets name in env (KEY=VALUE entries), replacing an earlier value: the last wins, as
// in a container.
func setEnv(env []string, name, value string) []string {
	for k, e := range env {
		if strings.HasPrefix(e, name+"=") {
			env[k] = name + "=" + value
			return env
		}
	}
	return append(env, name+"="+value)
}

// withoutFlags is args without the given flags, in both the --flag=value and --flag value
// forms (and with one dash).
func withoutFlags(args []string, flags ...string) []string {
	drop := map[string]bool{}
	for _, f := range flags {
		drop[f] = true
	}
	var out []string
	for k := 0; k < len(args); k++ {
		a := args[k]
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !drop[name] {
			out = append(out, a)
			continue
		}
		if !hasValue && k+1 < len(args) && !strings.HasPrefix(args[k+1], "-") {
			k++ // its value
		}
	}
	return out
}

// freePorts are n distinct free TCP ports of host, all held until all are found.
func freePorts(host string, n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("free port on %s: %w", host, err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeFiles writes each file (a name may hold slashes) under dir, 0600.
func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if rel, err := filepath.Rel(dir, p); err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("file %q outside %s", name, dir)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data (0600) so a reader never sees half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
