package helm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/progress"
	"github.com/reconcile-dev/reconcile/state/world"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// DefaultTimeout bounds an install, upgrade, rollback or uninstall when none is given.
const DefaultTimeout = 5 * time.Minute

// maxHistory is how many revisions of a release are kept (as Secrets).
const maxHistory = 10

// Release is a release as wanted.
type Release struct {
	Name, Namespace string
	Chart           *chart.Chart
	// Values are the user-supplied values (what `helm get values` shows).
	Values map[string]any
	// Timeout bounds each Helm operation, hooks and waits included (default DefaultTimeout).
	Timeout time.Duration
	// Wait waits for the release's resources to be ready; WaitForJobs for its Jobs too.
	Wait, WaitForJobs bool
	// CreateNamespace creates the namespace on install.
	CreateNamespace bool
}

// Outcome says what Ensure did.
type Outcome int

const (
	// Unchanged: the release was deployed as wanted; nothing was written.
	Unchanged Outcome = iota
	// Installed: the release was absent and is installed.
	Installed
	// Upgraded: chart version or values differed and the release is upgraded.
	Upgraded
	// Recovered: the release was pending or failed, and is repaired (uninstall and install,
	// or rollback and upgrade).
	Recovered
)

func (o Outcome) String() string {
	switch o {
	case Unchanged:
		return "unchanged"
	case Installed:
		return "installed"
	case Upgraded:
		return "upgraded"
	case Recovered:
		return "recovered"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Client runs Helm operations against one cluster. It is safe for concurrent use: every call
// builds its own Helm configuration, bound to the call's context.
type Client struct {
	cfg *rest.Config
	log *slog.Logger
}

// New returns a Client for the cluster cfg reaches; releases are stored as Secrets.
func New(cfg *rest.Config, log *slog.Logger) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("helm: no rest.Config")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Client{cfg: rest.CopyConfig(cfg), log: log}, nil
}

// operation is the Helm configuration of one operation in one namespace; end it with done.
type operation struct {
	cfg  *action.Configuration
	done context.CancelFunc
	log  *slog.Logger

	mu sync.Mutex
	// awaits is the last thing Helm's wait said it is waiting for (a Deployment not ready,
	// a hook Job not complete); Helm says it at debug level only.
	awaits string
}

// helmWaitSays are the parts of Helm's debug messages that say what its wait is waiting for.
var helmWaitSays = []string{"not ready", "not completed", "is failed", "does not have", "not bound",
	"Watching for changes", "beginning wait"}

// heard keeps msg when it says what Helm's wait awaits.
func (o *operation) heard(msg string) {
	for _, s := range helmWaitSays {
		if strings.Contains(msg, s) {
			o.mu.Lock()
			o.awaits = strings.TrimSpace(msg)
			o.mu.Unlock()
			return
		}
	}
}

func (o *operation) lastAwaited() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.awaits == "" {
		return ""
	}
	return "helm: " + o.awaits
}

// watch logs, every progress interval until the returned func is called, that the release
// operation is still going on and what Helm last said it waits for (the Helm SDK says that
// only at debug level, so a stuck install was silent until its timeout).
func (o *operation) watch(ctx context.Context, verb string, r Release) (stop func()) {
	o.mu.Lock()
	o.awaits = ""
	o.mu.Unlock()
	what := "helm " + verb + " of " + r.Namespace + "/" + r.Name
	return progress.Every(ctx, o.log, progress.Interval(ctx), what, r.Timeout, o.lastAwaited)
}

func (c *Client) operation(ctx context.Context, namespace string) (*operation, error) {
	ctx, cancel := context.WithCancel(ctx)
	rc := rest.CopyConfig(c.cfg)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &boundTransport{ctx: ctx, next: rt} })
	cfg := new(action.Configuration)
	log := c.log.With("namespace", namespace)
	op := &operation{cfg: cfg, done: cancel, log: c.log}
	debug := func(format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		op.heard(msg)
		log.Debug("helm: " + msg)
	}
	if err := cfg.Init(&restGetter{cfg: rc, namespace: namespace}, namespace, "secret", debug); err != nil {
		cancel()
		return nil, err
	}
	return op, nil
}

// history returns the release's revisions, oldest first; none when it does not exist.
func (o *operation) history(name string) ([]*release.Release, error) {
	h, err := o.cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(h, func(i, j int) bool { return h[i].Version < h[j].Version })
	return h, nil
}

// Ensure makes the release deployed with r's chart version and values: installs it when
// absent, upgrades it when chart or values differ from what is stored (so changes made by
// hand are undone), repairs it when a crash or failure left it pending or failed, and writes
// nothing when it is already as wanted.
func (c *Client) Ensure(ctx context.Context, r Release) (Outcome, error) {
	if r.Name == "" || r.Namespace == "" {
		return Unchanged, errors.New("helm: release needs a name and a namespace")
	}
	if r.Chart == nil || r.Chart.Metadata == nil {
		return Unchanged, fmt.Errorf("release %s/%s: no chart", r.Namespace, r.Name)
	}
	if r.Timeout <= 0 {
		r.Timeout = DefaultTimeout
	}
	want, err := normalize(r.Values)
	if err != nil {
		return Unchanged, fmt.Errorf("release %s/%s: values: %w", r.Namespace, r.Name, err)
	}
	r.Chart = cloneChart(r.Chart)
	out, err := c.ensure(ctx, r, want)
	if err != nil {
		return out, classify(fmt.Errorf("release %s/%s: %w", r.Namespace, r.Name, err))
	}
	if out != Unchanged {
		c.log.Info("helm release", "release", r.Namespace+"/"+r.Name, "outcome", out.String(),
			"chart", r.Chart.Metadata.Name, "version", r.Chart.Metadata.Version)
	}
	return out, nil
}

func (c *Client) ensure(ctx context.Context, r Release, want map[string]any) (Outcome, error) {
	op, err := c.operation(ctx, r.Namespace)
	if err != nil {
		return Unchanged, err
	}
	defer op.done()
	h, err := op.history(r.Name)
	if err != nil {
		return Unchanged, err
	}
	if len(h) == 0 {
		return Installed, op.install(ctx, r, want, false)
	}
	last := h[len(h)-1]
	switch last.Info.Status {
	case release.StatusDeployed:
		same, err := matches(last, r.Chart, want)
		if err != nil || same {
			return Unchanged, err
		}
		return Upgraded, op.upgrade(ctx, r, want)
	case release.StatusUninstalled:
		// Uninstalled with its history kept: install again over that history.
		return Installed, op.install(ctx, r, want, true)
	}

	good, was := lastGood(h), last.Info.Status
	c.log.Warn("helm release needs recovery", "release", r.Namespace+"/"+r.Name,
		"status", last.Info.Status.String(), "revision", last.Version)
	if good == nil || last.Info.Status == release.StatusPendingInstall || last.Info.Status == release.StatusUninstalling {
		// Never deployed (or half removed): nothing to return to, start afresh.
		if err := op.uninstall(r.Name, r.Timeout); err != nil {
			return Recovered, fmt.Errorf("recover %s release: uninstall: %w", was, err)
		}
		if err := op.install(ctx, r, want, false); err != nil {
			return Recovered, fmt.Errorf("recover %s release: install: %w", was, err)
		}
		return Recovered, nil
	}
	if last.Info.Status.IsPending() {
		// Record the interrupted revision as failed, as Helm would have had it not been
		// interrupted; a rollback leaves it pending otherwise.
		last.SetStatus(release.StatusFailed, "interrupted while "+last.Info.Status.String()+"; rolled back by reconcile")
		if err := op.cfg.Releases.Update(last); err != nil {
			return Recovered, fmt.Errorf("recover %s release: mark revision %d failed: %w", was, last.Version, err)
		}
	}
	rb := action.NewRollback(op.cfg)
	rb.Version = good.Version
	rb.Timeout = r.Timeout
	rb.Wait, rb.WaitForJobs = r.Wait, r.WaitForJobs
	rb.MaxHistory = maxHistory
	stop := op.watch(ctx, "rollback", r)
	err = rb.Run(r.Name)
	stop()
	if err != nil {
		return Recovered, fmt.Errorf("recover %s release: rollback to revision %d: %w", was, good.Version, err)
	}
	if same, err := matches(good, r.Chart, want); err != nil || same {
		return Recovered, err
	}
	if err := op.upgrade(ctx, r, want); err != nil {
		return Recovered, fmt.Errorf("recover %s release: upgrade after rollback: %w", was, err)
	}
	return Recovered, nil
}

// lastGood is the latest revision that was once deployed.
func lastGood(h []*release.Release) *release.Release {
	for i := len(h) - 1; i >= 0; i-- {
		if s := h[i].Info.Status; s == release.StatusDeployed || s == release.StatusSuperseded {
			return h[i]
		}
	}
	return nil
}

// matches reports whether a stored release has ch's name and version and exactly the values want.
func matches(rel *release.Release, ch *chart.Chart, want map[string]any) (bool, error) {
	if rel.Chart == nil || rel.Chart.Metadata == nil {
		return false, nil
	}
	if rel.Chart.Metadata.Name != ch.Metadata.Name || rel.Chart.Metadata.Version != ch.Metadata.Version {
		return false, nil
	}
	have, err := normalize(rel.Config)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(have, want), nil
}

// normalize round-trips values through JSON, so 1 and 1.0, int and float64, typed and untyped
// maps compare equal; nil becomes an empty map.
func normalize(v map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if len(v) == 0 {
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (o *operation) install(ctx context.Context, r Release, want map[string]any, replace bool) error {
	in := action.NewInstall(o.cfg)
	in.ReleaseName, in.Namespace = r.Name, r.Namespace
	in.Timeout = r.Timeout
	in.Wait, in.WaitForJobs = r.Wait, r.WaitForJobs
	in.CreateNamespace = r.CreateNamespace
	in.Replace = replace
	defer o.watch(ctx, "install", r)()
	_, err := in.RunWithContext(ctx, r.Chart, want)
	return err
}

func (o *operation) upgrade(ctx context.Context, r Release, want map[string]any) error {
	up := action.NewUpgrade(o.cfg)
	up.Namespace = r.Namespace
	up.Timeout = r.Timeout
	up.Wait, up.WaitForJobs = r.Wait, r.WaitForJobs
	up.MaxHistory = maxHistory
	// Exactly the values given: without this Helm reuses the stored ones when want is empty.
	up.ResetValues = true
	defer o.watch(ctx, "upgrade", r)()
	_, err := up.RunWithContext(ctx, r.Name, r.Chart, want)
	return err
}

func (o *operation) uninstall(name string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	un := action.NewUninstall(o.cfg)
	un.Timeout = timeout
	// Done only when confirmed gone.
	un.Wait = true
	un.IgnoreNotFound = true
	_, err := un.Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	return err
}

// Uninstall removes the release and its history and waits until its resources are gone;
// an absent release is not an error.
func (c *Client) Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error {
	op, err := c.operation(ctx, namespace)
	if err != nil {
		return err
	}
	defer op.done()
	h, err := op.history(name)
	if err != nil {
		return classify(fmt.Errorf("release %s/%s: %w", namespace, name, err))
	}
	if len(h) == 0 {
		return nil
	}
	bound := timeout
	if bound <= 0 {
		bound = DefaultTimeout
	}
	stop := op.watch(ctx, "uninstall", Release{Name: name, Namespace: namespace, Timeout: bound})
	err = op.uninstall(name, timeout)
	stop()
	if err != nil {
		return classify(fmt.Errorf("release %s/%s: uninstall: %w", namespace, name, err))
	}
	c.log.Info("helm release", "release", namespace+"/"+name, "outcome", "uninstalled")
	return nil
}

// Get returns the latest revision of a release; nil, nil when there is none.
func (c *Client) Get(ctx context.Context, name, namespace string) (*world.Release, error) {
	op, err := c.operation(ctx, namespace)
	if err != nil {
		return nil, err
	}
	defer op.done()
	h, err := op.history(name)
	if err != nil {
		return nil, fmt.Errorf("release %s/%s: %w", namespace, name, err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return observed(h[len(h)-1])
}

// List returns the latest revision of every release in the given namespaces, keyed
// "namespace/name", read as the observer reads them (releasesIn).
func (c *Client) List(ctx context.Context, namespaces ...string) (map[string]*world.Release, error) {
	cs, err := kube.Clientset(c.cfg)
	if err != nil {
		return nil, err
	}
	return releasesIn(ctx, cs, namespaces)
}

func observed(r *release.Release) (*world.Release, error) {
	s := &world.Release{Name: r.Name, Namespace: r.Namespace}
	if r.Chart != nil && r.Chart.Metadata != nil {
		s.Chart, s.ChartVersion = r.Chart.Metadata.Name, r.Chart.Metadata.Version
	}
	if r.Info != nil {
		s.Status = r.Info.Status.String()
	}
	if len(r.Config) > 0 {
		v, err := normalize(r.Config)
		if err != nil {
			return nil, fmt.Errorf("release %s/%s: values: %w", r.Namespace, r.Name, err)
		}
		s.Values = v
	}
	return s, nil
}
