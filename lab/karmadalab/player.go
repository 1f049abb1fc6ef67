package karmadalab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// playerInterval is how often the Player looks at its cluster. It is level-triggered: every pass
// compares what the cluster declares with what runs.
const playerInterval = 500 * time.Millisecond

// Player plays the kubelet for the Karmada Helm chart in one lab cluster. What it owns, and
// nothing else:
//   - the chart's Jobs (<R>-pre-install, <R>-pre-upgrade, <R>-post-install, <R>-post-delete,
//     <R>-static-resource): it does their effect, then marks them complete;
//   - in host mode, one ControlPlane per release, started once the release's <R>-apiserver
//     Deployment and <R>-cert Secret exist, on the cluster's Address at the <R>-apiserver
//     Service's nodePort, and stopped when that Deployment goes;
//   - in agent mode, one karmada-agent process per Deployment running karmada-agent, stopped
//     when the Deployment goes.
//
// Deployment and StatefulSet status (readiness) is not its business: a lab cluster's Kubelet
// stand-in (lab/labworld) writes it for every workload.
type Player struct {
	Etcd    *cluster.Etcd
	Bins    cluster.Binaries
	Karmada cluster.KarmadaBinaries
	// Dir holds a directory per cluster and release with the processes' files and logs.
	Dir string
	Log *slog.Logger

	mu      sync.Mutex
	serving map[*player]bool
}

// PIDs are the process ids (each also a process group id) of every control plane component and
// agent the Player's Serve calls run now.
func (p *Player) PIDs() []int {
	p.mu.Lock()
	players := make([]*player, 0, len(p.serving))
	for pl := range p.serving {
		players = append(players, pl)
	}
	p.mu.Unlock()
	var pids []int
	for _, pl := range players {
		pids = append(pids, pl.pids()...)
	}
	return pids
}

// ClusterRef is a lab cluster whose single node has ExternalIP = Address.
type ClusterRef struct {
	Name, Address string
	RESTConfig    *rest.Config
}

// hostRelease is a Karmada control plane the Player runs for a host-mode release.
type hostRelease struct {
	uid  string // of the <R>-apiserver Deployment it was started for
	port int    // the <R>-apiserver Service's nodePort it serves on (0: a free port)
	cp   *ControlPlane
}

// agentRun is a karmada-agent the Player runs for an agent Deployment.
type agentRun struct {
	uid, template string // the Deployment's UID and a hash of its pod template
	proc          *cluster.Process
}

// player is the state of one Serve call.
type player struct {
	p      *Player
	c      ClusterRef
	client kubernetes.Interface
	log    *slog.Logger
	dir    string

	mu     sync.Mutex
	hosts  map[string]*hostRelease // namespace/release
	agents map[string]*agentRun    // namespace/deployment
	failed map[string]string       // key -> last error, logged once per change
}

// Serve plays the kubelet for the Karmada chart in c until ctx ends, then stops every control
// plane and agent it started and returns ctx's error.
func (p *Player) Serve(ctx context.Context, c ClusterRef) error {
	if c.RESTConfig == nil || c.Name == "" || c.Address == "" {
		return errors.New("karmadalab player: cluster Name, Address and RESTConfig are required")
	}
	client, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(p.Dir, c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pl := &player{p: p, c: c, client: client, log: log.With("cluster", c.Name), dir: dir,
		hosts: map[string]*hostRelease{}, agents: map[string]*agentRun{}, failed: map[string]string{}}
	p.mu.Lock()
	if p.serving == nil {
		p.serving = map[*player]bool{}
	}
	p.serving[pl] = true
	p.mu.Unlock()
	defer func() {
		pl.stopAll()
		p.mu.Lock()
		delete(p.serving, pl)
		p.mu.Unlock()
	}()
	ticker := time.NewTicker(playerInterval)
	defer ticker.Stop()
	for {
		pl.pass(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// report logs an error once per key until it changes or clears.
func (pl *player) report(key string, err error) {
	if err == nil {
		delete(pl.failed, key)
		return
	}
	if pl.failed[key] != err.Error() {
		pl.failed[key] = err.Error()
		pl.log.Warn("karmada player", "object", key, "error", err)
	}
}

func (pl *player) pass(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	deploys, err := pl.client.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		pl.report("deployments", err)
		return
	}
	jobs, err := pl.client.BatchV1().Jobs(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		pl.report("jobs", err)
		return
	}
	byName := map[string]*appsv1.Deployment{}
	for i := range deploys.Items {
		d := &deploys.Items[i]
		byName[d.Namespace+"/"+d.Name] = d
	}

	// Jobs first: the pre-install hook's Secrets are what a control plane starts from.
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if jobFinished(j) {
			continue
		}
		key := "job/" + j.Namespace + "/" + j.Name
		pl.report(key, pl.playJob(ctx, j, byName))
	}

	// Host mode: a control plane per <R>-apiserver Deployment of the chart.
	seenHosts := map[string]bool{}
	for _, d := range deploys.Items {
		release, ok := chartAPIServer(&d)
		if !ok {
			continue
		}
		key := d.Namespace + "/" + release
		seenHosts[key] = true
		pl.report("host/"+key, pl.ensureHost(ctx, d.Namespace, release, string(d.UID)))
	}
	pl.mu.Lock()
	for key, h := range pl.hosts {
		if !seenHosts[key] {
			pl.log.Info("karmada release gone: stopping its control plane", "release", key)
			_ = h.cp.Stop()
			delete(pl.hosts, key)
		}
	}
	pl.mu.Unlock()

	// Agent mode: a karmada-agent per Deployment that runs one.
	seenAgents := map[string]bool{}
	for i := range deploys.Items {
		d := &deploys.Items[i]
		args, ok := agentArgs(d)
		if !ok {
			continue
		}
		key := d.Namespace + "/" + d.Name
		seenAgents[key] = true
		pl.report("agent/"+key, pl.ensureAgent(ctx, d, args))
	}
	pl.mu.Lock()
	for key, a := range pl.agents {
		if !seenAgents[key] {
			pl.log.Info("karmada agent Deployment gone: stopping the agent", "deployment", key)
			_ = a.proc.Stop()
			delete(pl.agents, key)
		}
	}
	pl.mu.Unlock()
}

func (pl *player) stopAll() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var wg sync.WaitGroup
	for key, h := range pl.hosts {
		wg.Add(1)
		go func() { defer wg.Done(); _ = h.cp.Stop() }()
		delete(pl.hosts, key)
	}
	for key, a := range pl.agents {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.proc.Stop() }()
		delete(pl.agents, key)
	}
	wg.Wait()
}

func (pl *player) pids() []int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var pids []int
	for _, h := range pl.hosts {
		pids = append(pids, h.cp.PIDs()...)
	}
	for _, a := range pl.agents {
		pids = append(pids, a.proc.Pid())
	}
	return pids
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// chartJobSuffixes are the Jobs of the Karmada chart, after its release name.
var chartJobSuffixes = []string{"-pre-install", "-pre-upgrade", "-post-install", "-post-delete", "-static-resource"}

// chartJob reports the release and kind of a Karmada chart Job: its name is <R><suffix> and its
// pod template runs the chart's kubectl image under the <R>-hook-job service account.
func chartJob(j *batchv1.Job) (release, suffix string, ok bool) {
	for _, s := range chartJobSuffixes {
		if r, found := strings.CutSuffix(j.Name, s); found && r != "" && j.Spec.Template.Spec.ServiceAccountName == r+"-hook-job" {
			return r, s, true
		}
	}
	return "", "", false
}

// playJob does a chart Job's effect and then marks it complete.
func (pl *player) playJob(ctx context.Context, j *batchv1.Job, deploys map[string]*appsv1.Deployment) error {
	release, suffix, ok := chartJob(j)
	if !ok {
		return nil
	}
	ns := j.Namespace
	switch suffix {
	case "-pre-install":
		if err := pl.generateCerts(ctx, j, ns, release); err != nil {
			return err
		}
	case "-static-resource":
		// Its effect (CRDs, namespaces, APIService, webhooks in the Karmada API) is part of
		// StartControlPlane: complete it once that control plane runs.
		pl.mu.Lock()
		h := pl.hosts[ns+"/"+release]
		pl.mu.Unlock()
		if h == nil {
			return nil // not yet; a later pass completes it
		}
	case "-post-delete":
		for _, s := range []string{release + "-cert", release + "-webhook-cert", release + "-kubeconfig"} {
			err := pl.client.CoreV1().Secrets(ns).Delete(ctx, s, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("post-delete: %w", err)
			}
		}
	}
	// pre-upgrade and post-install: the control plane already runs with its certificates.
	if err := completeJob(ctx, pl.client, j); err != nil {
		return err
	}
	pl.log.Info("karmada chart job completed", "job", ns+"/"+j.Name)
	return nil
}

// completeJob marks a Job succeeded through its status subresource, with the fields
// kube-apiserver requires for that (both SuccessCriteriaMet and Complete).
func completeJob(ctx context.Context, client kubernetes.Interface, j *batchv1.Job) error {
	now := metav1.Now()
	j = j.DeepCopy()
	if j.Status.StartTime == nil {
		j.Status.StartTime = &now
	}
	j.Status.CompletionTime = &now
	j.Status.Succeeded = 1
	j.Status.Active = 0
	j.Status.Conditions = append(j.Status.Conditions,
		batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: "CompletionsReached", Message: "played by the karmadalab player"},
		batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: "CompletionsReached", Message: "played by the karmadalab player"},
	)
	_, err := client.BatchV1().Jobs(j.Namespace).UpdateStatus(ctx, j, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("complete job %s/%s: %w", j.Namespace, j.Name, err)
	}
	return nil
}

// certHostsMarker precedes the karmada certificate's hosts, already tpl-rendered by Helm, in the
// pre-install Job's script (the cfssl CSR for CN=system:admin).
const certHostsMarker = `"CN":"system:admin","hosts":`

// CertHosts returns the hosts the chart's pre-install Job signs the karmada certificate for.
func CertHosts(j *batchv1.Job) ([]string, error) {
	var containers []corev1.Container
	containers = append(containers, j.Spec.Template.Spec.InitContainers...)
	containers = append(containers, j.Spec.Template.Spec.Containers...)
	for _, c := range containers {
		for _, s := range append(append([]string{}, c.Command...), c.Args...) {
			i := strings.Index(s, certHostsMarker)
			if i < 0 {
				continue
			}
			var hosts []string
			if err := json.NewDecoder(strings.NewReader(s[i+len(certHostsMarker):])).Decode(&hosts); err != nil {
				return nil, fmt.Errorf("job %s: certificate hosts: %w", j.Name, err)
			}
			return hosts, nil
		}
	}
	return nil, fmt.Errorf("job %s: no certificate hosts in its script", j.Name)
}

// generateCerts does the pre-install Job's effect: new CAs and the karmada certificate for the
// Job's hosts, filled into the <R>-config templates cert.yaml, webhook-cert.yaml and
// kubeconfig.yaml, which are applied as Secrets into ns.
func (pl *player) generateCerts(ctx context.Context, j *batchv1.Job, ns, release string) error {
	hosts, err := CertHosts(j)
	if err != nil {
		return err
	}
	cm, err := pl.client.CoreV1().ConfigMaps(ns).Get(ctx, release+"-config", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("pre-install: %w", err)
	}
	certs, err := GenerateCerts(hosts)
	if err != nil {
		return err
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	fill := strings.NewReplacer(
		"{{ ca_crt }}", b64(certs.CACert),
		"{{ ca_key }}", b64(certs.CAKey),
		"{{ crt }}", b64(certs.ServerCert),
		"{{ key }}", b64(certs.ServerKey),
		"{{ front_proxy_ca_crt }}", b64(certs.FrontProxyCA),
		"{{ front_proxy_crt }}", b64(certs.FrontProxyClientCert),
		"{{ front_proxy_key }}", b64(certs.FrontProxyClientKey),
	)
	for _, file := range []string{"cert.yaml", "webhook-cert.yaml", "kubeconfig.yaml"} {
		tmpl, ok := cm.Data[file]
		if !ok {
			return fmt.Errorf("pre-install: configmap %s-config has no %s", release, file)
		}
		var s corev1.Secret
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(fill.Replace(tmpl))), 4096).Decode(&s); err != nil {
			return fmt.Errorf("pre-install: %s: %w", file, err)
		}
		s.Namespace = ns
		if err := putSecret(ctx, pl.client, &s); err != nil {
			return fmt.Errorf("pre-install: %w", err)
		}
	}
	pl.log.Info("karmada certificates generated", "release", ns+"/"+release, "hosts", hosts)
	return nil
}

// putSecret creates s or replaces the data of the existing Secret of that name.
func putSecret(ctx context.Context, client kubernetes.Interface, s *corev1.Secret) error {
	for k, v := range s.StringData {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	secrets := client.CoreV1().Secrets(s.Namespace)
	_, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.Data, cur.Type = s.Data, s.Type
	_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// chartAPIServer reports whether d is a Karmada chart's <R>-apiserver Deployment (a
// kube-apiserver using the chart's certificates) and returns R.
func chartAPIServer(d *appsv1.Deployment) (string, bool) {
	release, ok := strings.CutSuffix(d.Name, "-apiserver")
	if !ok || release == "" || strings.HasSuffix(release, "-aggregated") {
		return "", false
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		cmd := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
		if strings.Contains(cmd, "kube-apiserver") && strings.Contains(cmd, "karmada.crt") {
			return release, true
		}
	}
	return "", false
}

// certsFromSecret reads the chart's <R>-cert Secret.
func certsFromSecret(s *corev1.Secret) (*Certs, error) {
	c := &Certs{
		CACert: s.Data["server-ca.crt"], CAKey: s.Data["server-ca.key"],
		ServerCert: s.Data["karmada.crt"], ServerKey: s.Data["karmada.key"],
		FrontProxyCA: s.Data["front-proxy-ca.crt"], FrontProxyClientCert: s.Data["front-proxy-client.crt"],
		FrontProxyClientKey: s.Data["front-proxy-client.key"],
	}
	if len(c.CACert) == 0 || len(c.CAKey) == 0 || len(c.ServerCert) == 0 || len(c.ServerKey) == 0 {
		return nil, fmt.Errorf("secret %s lacks server-ca or karmada certificates", s.Name)
	}
	return c, nil
}

// ensureHost starts the release's control plane unless one runs for this Deployment and port.
func (pl *player) ensureHost(ctx context.Context, ns, release, uid string) error {
	key := ns + "/" + release
	// Helm creates the Service before the Deployment; without it the port is not known yet.
	svc, err := pl.client.CoreV1().Services(ns).Get(ctx, release+"-apiserver", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	port := 0
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				port = int(p.NodePort)
				break
			}
		}
	}
	pl.mu.Lock()
	h := pl.hosts[key]
	pl.mu.Unlock()
	if h != nil && h.uid == uid && h.port == port {
		return nil
	}
	if h != nil { // the release was replaced or moved to another port
		_ = h.cp.Stop()
		pl.mu.Lock()
		delete(pl.hosts, key)
		pl.mu.Unlock()
	}
	secret, err := pl.client.CoreV1().Secrets(ns).Get(ctx, release+"-cert", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // the pre-install Job has not been played yet
	}
	if err != nil {
		return err
	}
	certs, err := certsFromSecret(secret)
	if err != nil {
		return err
	}
	short := uid
	if len(short) > 8 {
		short = short[:8]
	}
	name := pl.c.Name + "-" + release + "-" + short // a fresh etcd prefix for every install
	pl.log.Info("starting karmada control plane", "release", key, "address", pl.c.Address, "port", port)
	cp, err := StartControlPlane(ctx, ControlPlaneOptions{
		Name: name, Dir: filepath.Join(pl.dir, ns+"-"+release+"-"+short), Address: pl.c.Address, Port: port,
		Etcd: pl.p.Etcd, Bins: pl.p.Bins, Karmada: pl.p.Karmada, Certs: certs, Log: pl.log,
	})
	if err != nil {
		return err
	}
	pl.mu.Lock()
	pl.hosts[key] = &hostRelease{uid: uid, port: port, cp: cp}
	pl.mu.Unlock()
	return nil
}

// agentArgs returns the flags of the karmada-agent a Deployment runs, if it runs one.
func agentArgs(d *appsv1.Deployment) (map[string]string, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		all := append(append([]string{}, c.Command...), c.Args...)
		if !strings.Contains(strings.Join(all, " "), "karmada-agent") {
			continue
		}
		flags := map[string]string{}
		for _, a := range all {
			if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
				flags[k] = v
			}
		}
		return flags, true
	}
	return nil, false
}

// agentKubeconfigSecret is the Secret a karmada-agent Deployment mounts at the directory of its
// --karmada-kubeconfig.
func agentKubeconfigSecret(d *appsv1.Deployment, path string) (secret, key string, err error) {
	dir, file := filepath.Split(path)
	dir = filepath.Clean(dir)
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if filepath.Clean(m.MountPath) != dir && filepath.Clean(m.MountPath) != filepath.Clean(path) {
				continue
			}
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					k := file
					if m.SubPath != "" {
						k = m.SubPath
					}
					return v.Secret.SecretName, k, nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("deployment %s mounts no Secret at %s", d.Name, path)
}

// ensureAgent runs a karmada-agent for d unless one runs for it already.
func (pl *player) ensureAgent(ctx context.Context, d *appsv1.Deployment, flags map[string]string) error {
	key := d.Namespace + "/" + d.Name
	uid := string(d.UID)
	// A changed pod template rolls the Deployment out: a new Pod reads the kubeconfig afresh.
	tmpl, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(tmpl)
	template := hex.EncodeToString(sum[:])
	pl.mu.Lock()
	a := pl.agents[key]
	pl.mu.Unlock()
	switch {
	case a != nil && a.uid == uid && a.template == template:
		if a.proc.Exited() == nil {
			return nil
		}
		pl.log.Warn("karmada-agent exited: restarting it", "deployment", key, "error", a.proc.Exited())
	case a != nil && a.uid == uid:
		pl.log.Info("karmada-agent pod template changed: restarting it", "deployment", key)
	}
	if a != nil {
		_ = a.proc.Stop()
	}
	if flags["cluster-name"] == "" || flags["karmada-kubeconfig"] == "" {
		return fmt.Errorf("deployment %s: karmada-agent without --cluster-name or --karmada-kubeconfig", key)
	}
	secretName, secretKey, err := agentKubeconfigSecret(d, flags["karmada-kubeconfig"])
	if err != nil {
		return err
	}
	s, err := pl.client.CoreV1().Secrets(d.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	karmadaKC, ok := s.Data[secretKey]
	if !ok {
		return fmt.Errorf("secret %s has no key %s", secretName, secretKey)
	}
	dir := filepath.Join(pl.dir, "agent-"+d.Namespace+"-"+d.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	karmadaPath, err := writeSecret(dir, "karmada.kubeconfig", karmadaKC)
	if err != nil {
		return err
	}
	memberKC, err := kubeconfigFromREST(pl.c.Name, pl.c.RESTConfig)
	if err != nil {
		return err
	}
	memberPath, err := writeSecret(dir, "member.kubeconfig", memberKC)
	if err != nil {
		return err
	}
	health, err := cluster.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig", memberPath,
		"--karmada-kubeconfig", karmadaPath,
		"--cluster-name", flags["cluster-name"],
		"--leader-elect=false",
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
		"--cluster-status-update-frequency", "10s",
	}
	if ep := flags["cluster-api-endpoint"]; ep != "" {
		args = append(args, "--cluster-api-endpoint", ep)
	}
	if pl.p.Karmada.Agent == "" {
		return errors.New("no karmada-agent binary")
	}
	proc, err := cluster.StartProcess("karmada-agent "+key, filepath.Join(dir, "karmada-agent.log"), pl.p.Karmada.Agent, args...)
	if err != nil {
		return err
	}
	pl.log.Info("karmada-agent started", "deployment", key, "member", flags["cluster-name"])
	pl.mu.Lock()
	pl.agents[key] = &agentRun{uid: uid, template: template, proc: proc}
	pl.mu.Unlock()
	return nil
}

// kubeconfigFromREST serializes a client-go config (server, CA, client certificate or token).
func kubeconfigFromREST(name string, rc *rest.Config) ([]byte, error) {
	host := rc.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: host, CertificateAuthority: rc.CAFile,
		CertificateAuthorityData: rc.CAData, TLSServerName: rc.ServerName, InsecureSkipTLSVerify: rc.Insecure}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: rc.CertFile, ClientCertificateData: rc.CertData,
		ClientKey: rc.KeyFile, ClientKeyData: rc.KeyData, Token: rc.BearerToken, TokenFile: rc.BearerTokenFile}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
