// Package linode observes and changes the fleet's LKE clusters through the Linode API
// (github.com/linode/linodego). Ownership is a pair of tags on the cluster; nothing without
// the fleet's tag is ever read into the world or touched.
package linode

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/linode/linodego"
	"golang.org/x/time/rate"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// Files is the part of the state store the driver uses: the pool cache and kubeconfigs.
// Names are slash-separated and relative to the fleet's state directory; WriteFile writes 0600.
type Files interface {
	WriteFile(name string, data []byte) error
	ReadFile(name string) ([]byte, error)
	Exists(name string) bool
}

// Config configures a Driver. Zero fields take the defaults noted on them.
type Config struct {
	// Fleet is the fleet's name: the ownership tags the driver writes and the clusters it
	// finds and changes are the fleet's (required).
	Fleet string
	// Token is the Linode API token. It is sent as a header and never logged.
	Token string
	// APIURL is the API base, e.g. https://api.linode.com/v4 (the default).
	APIURL string
	// RequestsPerSecond limits every request the driver sends (default 10).
	RequestsPerSecond float64
	// WaitTimeout bounds every wait: a kubeconfig, ready nodes, a pool, a delete (default 20m).
	WaitTimeout time.Duration
	// PollInterval is the pause between two polls of a wait (default 10s).
	PollInterval time.Duration
	// RetryWait and RetryMaxWait clamp linodego's wait before retrying a 429 (defaults 3s, 30s).
	RetryWait, RetryMaxWait time.Duration
	// RetryCount bounds linodego's retries of one call on 429/503 (default 10); after
	// that the error comes back as transient and the executor's backoff takes over.
	RetryCount int
	// PoolCacheTTL is how long cached node pools are trusted without re-listing (default 10m).
	PoolCacheTTL time.Duration
	// PriceCacheTTL is how long the prices cached in the store are used before they are
	// read again (default 24h).
	PriceCacheTTL time.Duration
	// RequestTimeout bounds one HTTP request (default 60s).
	RequestTimeout time.Duration
	// Transport is the base HTTP transport (default http.DefaultTransport), e.g. for a TLS test server.
	Transport http.RoundTripper
	// Requests, when set, is told of every request sent to the API, retries included: its
	// endpoint class (see EndpointClass) and the answer's status code (0 when none came).
	Requests func(class string, status int)
	// Store keeps the pool cache and the kubeconfigs (required).
	Store Files
	// ReadOnly is for the observer of a dry run: a kubeconfig it fetches goes only into Store
	// (an in-memory overlay then), never to fleet.yaml's kubeconfigDir.
	ReadOnly bool
	// Declared names the clusters fleet.yaml declares. The driver refuses to delete any of
	// them, whatever a step says: a hand-edited or forged plan cannot delete a live member.
	Declared []string
	// Logger receives debug and info lines; never a token or a kubeconfig (default: discard).
	Logger *slog.Logger
	// Now is the clock for cache ages (default time.Now).
	Now func() time.Time
	// ReadRetry retries the observer's reads that failed with a retryable error (a 5xx,
	// 429 after linodego's own retries) as the executor retries steps; nil reads once.
	ReadRetry state.Retry
}

// Defaults applied by New.
const (
	DefaultAPIURL            = "https://api.linode.com/v4"
	DefaultRequestsPerSecond = 10
	DefaultWaitTimeout       = 20 * time.Minute
	DefaultPollInterval      = 10 * time.Second
	DefaultRetryWait         = 3 * time.Second
	DefaultRetryMaxWait      = 30 * time.Second
	DefaultRetryCount        = 10
	DefaultPoolCacheTTL      = 10 * time.Minute
	DefaultRequestTimeout    = 60 * time.Second
	// DefaultTokenEnv is read when the fleet names no token source.
	DefaultTokenEnv = "LINODE_TOKEN"
)

// Driver observes and converges LKE clusters. It is safe for concurrent use: the executor
// applies several clusters at once.
type Driver struct {
	cfg Config
	log *slog.Logger
	// api retries 429 (honouring Retry-After, clamped to the configured waits) and 503.
	api *linodego.Client
	// poll never retries, so a 503 "not yet available" comes back at once.
	poll *linodego.Client

	mu sync.Mutex
	// created are the node pools each update step created, by step and cluster, so that
	// a retry of the step recognises them (see plan.ClusterChange.ExistingPools).
	created map[string]map[int]bool
}

// New builds a Driver from cfg; both of its API clients share one rate limiter.
func New(cfg Config) (*Driver, error) {
	if cfg.Token == "" {
		return nil, errors.New("linode: no API token")
	}
	if cfg.Store == nil {
		return nil, errors.New("linode: no state store")
	}
	if cfg.Fleet == "" {
		return nil, errors.New("linode: no fleet name")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.RequestsPerSecond <= 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = DefaultRetryWait
	}
	if cfg.RetryMaxWait <= 0 {
		cfg.RetryMaxWait = DefaultRetryMaxWait
	}
	if cfg.RetryMaxWait < cfg.RetryWait {
		cfg.RetryMaxWait = cfg.RetryWait
	}
	if cfg.RetryCount <= 0 {
		cfg.RetryCount = DefaultRetryCount
	}
	if cfg.PoolCacheTTL <= 0 {
		cfg.PoolCacheTTL = DefaultPoolCacheTTL
	}
	if cfg.PriceCacheTTL <= 0 {
		cfg.PriceCacheTTL = DefaultPriceCacheTTL
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	burst := int(math.Ceil(cfg.RequestsPerSecond))
	base := cfg.Transport
	if cfg.Requests != nil {
		base = &countedTransport{base: base, count: cfg.Requests}
	}
	hc := &http.Client{
		Transport: &limitedTransport{base: base, lim: rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), burst)},
		Timeout:   cfg.RequestTimeout,
	}
	api, err := newClient(hc, cfg)
	if err != nil {
		return nil, err
	}
	api.SetRetryWaitTime(cfg.RetryWait).SetRetryMaxWaitTime(cfg.RetryMaxWait).SetRetryCount(cfg.RetryCount)
	// A second client, not a copy: copies share resty's settings (reference §1.1).
	poll, err := newClient(hc, cfg)
	if err != nil {
		return nil, err
	}
	poll.SetRetryCount(0)
	return &Driver{cfg: cfg, log: cfg.Logger, api: api, poll: poll, created: make(map[string]map[int]bool)}, nil
}

func newClient(hc *http.Client, cfg Config) (*linodego.Client, error) {
	c := linodego.NewClient(hc)
	if _, err := c.UseURL(cfg.APIURL); err != nil {
		return nil, fmt.Errorf("linode: API URL: %w", err)
	}
	c.SetToken(cfg.Token)
	c.SetPollDelay(cfg.PollInterval)
	// lke/versions and lke/types are cached in-process by default; we never want stale answers.
	c.UseCache(false)
	return &c, nil
}

// limitedTransport makes every request, retries included, wait for the shared rate limiter.
type limitedTransport struct {
	base http.RoundTripper
	lim  *rate.Limiter
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// Reserve and wait rather than rate.Limiter.Wait, which fails at once when the wait
	// would pass the deadline: a bounded wait must end with the last API answer, not that.
	res := t.lim.Reserve()
	if delay := res.Delay(); delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			res.Cancel()
			return nil, r.Context().Err()
		}
	}
	return t.base.RoundTrip(r)
}

// countedTransport tells Config.Requests of every request that left the rate limiter.
type countedTransport struct {
	base  http.RoundTripper
	count func(class string, status int)
}

func (t *countedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(r)
	status := 0
	if err == nil {
		status = res.StatusCode
	}
	t.count(EndpointClass(r.URL.Path), status)
	return res, err
}

// EndpointClass names the part of the API a request path is for, coarsely enough to be a
// metric label: "lke-clusters" (clusters, their kubeconfig and endpoints), "lke-pools" (node
// pools and nodes), "lke-meta" (versions, types), "instances", or "other".
func EndpointClass(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// Skip the API version ("v4", "v4beta") and whatever prefix the base URL has before it.
	for i, p := range parts {
		if p == "lke" || p == "linode" {
			parts = parts[i:]
			break
		}
	}
	switch {
	case len(parts) >= 2 && parts[0] == "linode" && parts[1] == "instances":
		return "instances"
	case len(parts) < 2 || parts[0] != "lke":
		return "other"
	case parts[1] != "clusters":
		return "lke-meta"
	case len(parts) >= 4 && (parts[3] == "pools" || parts[3] == "nodes"):
		return "lke-pools"
	}
	return "lke-clusters"
}

// TokenFromSpec reads the API token the fleet points at: tokenFile when set, else the
// environment variable tokenEnv (default LINODE_TOKEN). Errors name the source, never the token.
func TokenFromSpec(l *spec.Linode) (string, error) {
	var file, env string
	if l != nil {
		file, env = l.TokenFile, l.TokenEnv
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("linode token file %s does not exist", file)
			}
			// The error of a read carries the path and the cause, not the content.
			return "", fmt.Errorf("linode token file %s: %w", file, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("linode token file %s is empty", file)
		}
		return tok, nil
	}
	if env == "" {
		env = DefaultTokenEnv
	}
	tok := strings.TrimSpace(os.Getenv(env))
	if tok == "" {
		return "", fmt.Errorf("linode token: environment variable %s is not set or empty (set it, or tokenFile in provider.linode)", env)
	}
	return tok, nil
}

// ConfigFromSpec is the Config of fleet's driver that the fleet's provider.linode asks
// for: its token, API URL, rate and wait timeout (zero values take New's defaults).
func ConfigFromSpec(fleet string, l *spec.Linode, store Files, logger *slog.Logger) (Config, error) {
	tok, err := TokenFromSpec(l)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Fleet: fleet, Token: tok, Store: store, Logger: logger}
	if l != nil {
		cfg.APIURL = l.APIURL
		cfg.RequestsPerSecond = l.RequestsPerSecond
		cfg.WaitTimeout = l.WaitTimeout.Duration
		cfg.PollInterval = l.PollInterval.Duration
	}
	return cfg, nil
}
