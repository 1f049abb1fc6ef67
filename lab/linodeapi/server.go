// Package linodeapi is a Linode API v4 server of our own: LKE clusters, node pools,
// the instances behind their nodes, DNS Manager domains and records, NodeBalancers
// (made by the lab, as LKE's cloud controller manager makes them for LoadBalancer
// Services) and the catalogue endpoints, answered with the JSON shapes, status codes
// and headers of api.linode.com, so that the real linodego client (and everything
// built on it) runs against it unchanged. The real API's documented rate limits are
// enforced by default (Options.NoRateLimits turns them off); faults, slowness and other
// rate limits can be injected; what a cluster really is (a kube-apiserver in the lab) is
// left to a Backend. Fields the real API answers only under /v4beta are listed in
// betaOnlyFields.
package linodeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is a well-behaved API with no token
// accepted; set Token.
type Options struct {
	// Token is the one bearer token accepted; any other gets 401 "Invalid Token".
	Token string
	// ProvisionDelay: after create, nodes are not_ready without instance ids and the
	// kubeconfig and api-endpoints answer 503; after it (and once the Backend has
	// provisioned the cluster) nodes get instance ids and the kubeconfig is served.
	ProvisionDelay time.Duration
	// NodeReadyDelay is the extra time between a node's instance id and its "ready".
	NodeReadyDelay time.Duration
	// FaultRate is the share of requests answered with a 5xx (500, 502, 504; JSON body).
	FaultRate float64
	// SlowRate is the share of requests delayed by SlowDelay before being answered.
	SlowRate  float64
	SlowDelay time.Duration
	// RateLimit > 0 answers a request beyond RateLimit within RateWindow with 429 and
	// Retry-After, in place of the documented limits. X-RateLimit-* headers are sent on
	// every answer either way.
	RateLimit  int
	RateWindow time.Duration
	// NoRateLimits turns off the real API's published limits (documentedLimits), which
	// are enforced by default when RateLimit is 0: for benchmarks, and for tests that
	// send more requests a minute than a real account may on purpose.
	NoRateLimits bool
	// Seed drives fault randomness and generated node ids.
	Seed int64
	// Backend makes clusters real; nil gives clusters whose kubeconfig points nowhere.
	Backend Backend
	// Clock replaces time.Now for timestamps and node readiness (tests).
	Clock func() time.Time
}

// Backend is what a cluster is behind the API.
type Backend interface {
	// Provision makes the cluster real (the lab starts a kube-apiserver); it may take
	// time and is called in the background after create. It returns the kubeconfig and
	// the public IPv4 of each node.
	Provision(ctx context.Context, c ClusterInfo) (Provisioned, error)
	Deprovision(ctx context.Context, clusterID int) error
}

// ClusterInfo describes a cluster to its Backend at provisioning time.
type ClusterInfo struct {
	ID         int
	Label      string
	Region     string
	K8sVersion string
	Nodes      int
}

// Provisioned is what a Backend made of a cluster.
type Provisioned struct {
	Kubeconfig []byte
	// NodeIPs are the nodes' public IPv4 addresses; fewer than the node count are
	// reused cyclically, none gives generated documentation addresses.
	NodeIPs []string
	// APIEndpoints defaults to the kubeconfig's server when empty.
	APIEndpoints []string
}

// RequestRecord is one request the server answered.
type RequestRecord struct {
	Method string
	Path   string
	Query  string
	Status int
	Time   time.Time
}

// Server is the API. It implements http.Handler for /v4/... and /v4beta/... .
type Server struct {
	opts    Options
	backend Backend
	now     func() time.Time

	ctx    context.Context // cancelled by Close; parent of every provisioning
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	rng        *rand.Rand
	faultRate  float64
	rateLimit  int
	rateWindow time.Duration
	winStart   time.Time
	winCount   int
	classWins  map[classKey]*classWindow // documented limits' windows, by caller and limit class
	requests   []RequestRecord
	closed     bool

	clusters     map[int]*cluster
	nextCluster  int
	nextPool     int
	nextInstance int
	nodeIDs      map[string]bool

	domains       map[int]*domain
	nextDomain    int
	nextRecord    int
	nodeBalancers map[int]*nodeBalancer
	nextNB        int
	nbAddrs       map[string]int // addresses handed out per region, for the next one

	eventLog  []event
	nextEvent int
}

// New returns a Server with the given options.
func New(o Options) *Server {
	now := o.Clock
	if now == nil {
		now = time.Now
	}
	b := o.Backend
	if b == nil {
		b = nowhereBackend{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:          o,
		backend:       b,
		now:           now,
		ctx:           ctx,
		cancel:        cancel,
		rng:           rand.New(rand.NewSource(o.Seed)),
		faultRate:     o.FaultRate,
		rateLimit:     o.RateLimit,
		rateWindow:    o.RateWindow,
		clusters:      map[int]*cluster{},
		nextCluster:   433100,
		nextPool:      855490,
		nextInstance:  94907000,
		nodeIDs:       map[string]bool{},
		domains:       map[int]*domain{},
		nextDomain:    2861000,
		nextRecord:    31582000,
		nodeBalancers: map[int]*nodeBalancer{},
		nextNB:        1093000,
		nbAddrs:       map[string]int{},
		nextEvent:     812000000,
	}
}

// Requests returns every request seen since the start or the last ResetRequests.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.requests...)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// SetNodeReadyDelay changes NodeReadyDelay, for every node from now on (it is judged when a
// node is read).
func (s *Server) SetNodeReadyDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.NodeReadyDelay = d
}

// SetFaultRate changes the share of requests answered with a 5xx.
func (s *Server) SetFaultRate(f float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultRate = f
}

// SetRateLimit sets a rate limit of n requests a window in place of the documented
// limits, and starts a new window; n <= 0 goes back to the documented limits (or to none
// with NoRateLimits).
func (s *Server) SetRateLimit(n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit, s.rateWindow = n, window
	s.winStart, s.winCount = time.Time{}, 0
}

// Close stops background provisioning and deprovisions every cluster left through
// the Backend. The handler keeps answering, but new clusters are never provisioned.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cancel()
	// provisionStarted is final now: provision sets it under mu only while its
	// context, a child of s.ctx, is not cancelled. A cluster deleted from here on is
	// still deprovisioned here, once (stopProvisionLocked leaves it to Close).
	var ids []int
	for id, c := range s.clusters {
		if c.provisionStarted {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	s.wg.Wait() // provisioning returned; deprovisions of clusters deleted before Close done
	slices.Sort(ids)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		_ = s.backend.Deprovision(ctx, id)
	}
}

const (
	defaultRateLimit  = 1600 // advertised when no limit is enforced, as recorded LKE answers show
	defaultRateWindow = time.Minute
	maxBody           = 1 << 20
)

// statusRecorder remembers the status written, for Requests.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// ServeHTTP answers one API request: rate limit, authentication, injected slowness
// and faults, then the endpoint itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, RequestRecord{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status, Time: s.now(),
		})
		s.mu.Unlock()
	}()
	w = rec

	path, ok := apiPath(r.URL.Path)
	limited, retryAfter := s.countRequest(w.Header(), classKey{caller(r), limitClass(r.Method, path)})
	if limited {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeError(w, http.StatusTooManyRequests, apiErr("Too many requests", ""))
		return
	}

	if !ok {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	if !s.authorized(r, path) {
		writeError(w, http.StatusUnauthorized, apiErr("Invalid Token", ""))
		return
	}

	slow, fault := s.dice()
	if slow && s.opts.SlowDelay > 0 {
		t := time.NewTimer(s.opts.SlowDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if fault != 0 {
		writeError(w, fault, apiErr(faultReason[fault], ""))
		return
	}
	s.route(w, r, path)
}

var faultReason = map[int]string{
	http.StatusInternalServerError: "An error occurred",
	http.StatusBadGateway:          "Bad Gateway",
	http.StatusGatewayTimeout:      "Gateway Timeout",
}

// classWindow is one fixed rate window of a limit class.
type classWindow struct {
	start time.Time
	count int
}

// documentedLimits are the basic limits Akamai publishes for the Linode API, per user
// (by OAuth token, or by IP address for public operations), each a fixed window:
// GETs of paginated collections 200 a minute, every other operation 1600 a minute.
// Source: techdocs.akamai.com/linode-api/reference/rate-limits ("Rate limits": "Every
// Linode API operation applies a rate limit on a per-user basis as determined by the
// OAuth token for authenticated requests, or the IP address for public operations";
// "if an operation has a rate limit of 1600 requests per minute, then up to 1600
// requests over a one minute window are permitted. Subsequent requests after the limit
// return a 429 error"; Retry-After is "the remaining number of seconds until the
// current rate limit window resets"). The basic table itself did not survive in the
// stored copy of that page; the 200/1600 figures are from a summary of the same page
// (api-evangelist/linode rate-limits, generated 2026-09-17 from the page updated
// 2026-09-15) and agree with the X-Ratelimit-Limit: 1600 of recorded LKE answers. The
// operation-specific limits on that page (create a Linode 20 per 15 s, create a volume
// 100 a minute, list images 20 a minute, list StackScripts 60 a minute, /stats 50 a
// minute, open a ticket 2 a minute) are for operations the lab does not serve; domains,
// records and NodeBalancers count as collections or general requests like the rest.
var documentedLimits = map[string]struct {
	n   int
	per time.Duration
}{
	"collection": {200, time.Minute},
	"general":    {1600, time.Minute},
}

// classKey is one caller's window of one limit class.
type classKey struct{ caller, class string }

// caller is who a request counts against: its token, or its address when it sends none
// (the public catalogue).
func caller(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return "token " + h
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip " + host
}

// collections are the paginated collections the server lists; "*" is any id.
var collections = [][]string{
	{"lke", "clusters"}, {"lke", "clusters", "*", "pools"}, {"lke", "clusters", "*", "api-endpoints"},
	{"lke", "versions"}, {"lke", "types"}, {"lke", "tiers", "*", "versions"},
	{"regions"}, {"linode", "types"}, {"linode", "instances"},
	{"domains"}, {"domains", "*", "records"},
	{"nodebalancers"}, {"nodebalancers", "types"}, {"nodebalancers", "*", "configs"},
	{"account", "events"},
}

// limitClass names the documented limit a request counts against.
func limitClass(method string, path []string) string {
	if method == http.MethodGet {
		for _, c := range collections {
			if len(c) == len(path) && matchSegments(c, path) {
				return "collection"
			}
		}
	}
	return "general"
}

func matchSegments(pattern, path []string) bool {
	for i, p := range pattern {
		if p != "*" && p != path[i] {
			return false
		}
	}
	return true
}

// countRequest advances the fixed rate window and sets the X-RateLimit headers.
func (s *Server) countRequest(h http.Header, key classKey) (limited bool, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	limit, window, enforce := s.rateLimit, s.rateWindow, s.rateLimit > 0
	start, count := &s.winStart, &s.winCount
	if !enforce && !s.opts.NoRateLimits {
		d := documentedLimits[key.class]
		limit, window, enforce = d.n, d.per, true
		if s.classWins == nil {
			s.classWins = map[classKey]*classWindow{}
		}
		cw := s.classWins[key]
		if cw == nil {
			cw = &classWindow{}
			s.classWins[key] = cw
		}
		start, count = &cw.start, &cw.count
	}
	if limit <= 0 {
		limit = defaultRateLimit
	}
	if window <= 0 {
		window = defaultRateWindow
	}
	if start.IsZero() || !now.Before(start.Add(window)) {
		*start, *count = now, 0
	}
	*count++
	end := start.Add(window)
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-*count, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(end.UnixNano())/1e9)), 10))
	if enforce && *count > limit {
		return true, max(int(math.Ceil(end.Sub(now).Seconds())), 1)
	}
	return false, 0
}

// dice decides whether this request is slowed and whether it fails, and with what.
func (s *Server) dice() (slow bool, fault int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.SlowRate > 0 && s.rng.Float64() < s.opts.SlowRate {
		slow = true
	}
	if s.faultRate > 0 && s.rng.Float64() < s.faultRate {
		fault = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout}[s.rng.Intn(3)]
	}
	return slow, fault
}

// publicPaths answer without a token, as the real catalogue endpoints do; a token
// that is sent must still be valid.
var publicPaths = []string{"regions", "linode/types", "lke/versions", "lke/types", "nodebalancers/types"}

func (s *Server) authorized(r *http.Request, path []string) bool {
	h := r.Header.Get("Authorization")
	if h == "" {
		joined := strings.Join(path, "/")
		for _, p := range publicPaths {
			if joined == p || strings.HasPrefix(joined, p+"/") {
				return r.Method == http.MethodGet
			}
		}
		return false
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "bearer ")
	}
	return ok && s.opts.Token != "" && tok == s.opts.Token
}

// apiPath strips the version prefix and splits the rest into segments.
func apiPath(p string) ([]string, bool) {
	var rest string
	switch {
	case strings.HasPrefix(p, "/v4/"):
		rest = p[len("/v4/"):]
	case strings.HasPrefix(p, "/v4beta/"):
		rest = p[len("/v4beta/"):]
	default:
		return nil, false
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return nil, false
	}
	return strings.Split(rest, "/"), true
}

// isBeta tells a /v4beta request from a /v4 one; the two differ in a few fields.
func isBeta(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v4beta/") }

// apiError is the real error envelope.
type apiError struct {
	Errors []errorReason `json:"errors"`
}

type errorReason struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

func apiErr(reason, field string) *apiError {
	return &apiError{Errors: []errorReason{{Reason: reason, Field: field}}}
}

func notFound() *apiError { return apiErr("Not found", "") }

func writeError(w http.ResponseWriter, code int, e *apiError) {
	writeJSON(w, code, e)
}

// writeJSON answers with exactly "application/json": linodego compares the
// Content-Type with its Accept header literally.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"errors": [{"reason": "An error occurred"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func methodNotAllowed(w http.ResponseWriter, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, apiErr("Method Not Allowed", ""))
}

// decodeStrict decodes a request body, refusing unknown fields and wrong types so that
// a client's mistake shows up as a 400 naming the field.
func decodeStrict(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		msg := err.Error()
		switch {
		case strings.HasPrefix(msg, "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
			return apiErr(f+" is not a recognized field", f)
		case asTypeError(err, &te):
			return apiErr(fmt.Sprintf("Must be of type %s", jsonKind(te.Type.Kind().String())), te.Field)
		case msg == "EOF":
			return apiErr("Request body is required", "")
		default:
			return apiErr("Invalid JSON", "")
		}
	}
	if dec.More() {
		return apiErr("Invalid JSON", "")
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "float64":
		return "integer"
	case "slice":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}

// timeFormat is the API's timestamp form (UTC, no zone).
const timeFormat = "2006-01-02T15:04:05"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }
