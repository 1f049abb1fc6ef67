package entry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// HealthRecord is where the state store keeps the members' health: written when a member's
// health changes, never on a check that changes nothing, so a quiet fleet writes nothing.
const HealthRecord = "entry/health.json"

type healthFile struct {
	Members map[string]*world.MemberHealth `json:"members"`
}

// LoadHealth reads the members' health from the store (none when nothing was judged yet).
func LoadHealth(store kube.Files) (map[string]*world.MemberHealth, error) {
	if store == nil {
		return nil, nil
	}
	b, err := store.ReadFile(HealthRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f healthFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", HealthRecord, err)
	}
	return f.Members, nil
}

// Probe runs one health check of addr (an IP) as hc says: an HTTP(S) GET of hc.Path with Host
// host (2xx and 3xx pass; HTTPS certificates are not verified, as cloud health checks do not),
// or a TCP connection. It returns nil when the check passes.
func Probe(ctx context.Context, hc spec.HealthCheck, host, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout.Duration)
	defer cancel()
	target := net.JoinHostPort(addr, strconv.Itoa(hc.Port))
	dialer := &net.Dialer{}
	if hc.Protocol == spec.CheckTCP {
		c, err := dialer.DialContext(ctx, "tcp", target)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", target, unwrapNet(err))
		}
		return c.Close()
	}
	scheme := "http"
	tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
	if hc.Protocol == spec.CheckHTTPS {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{ServerName: host, InsecureSkipVerify: true} //nolint:gosec // health checks do not verify, as cloud load balancers' do not
	}
	defer tr.CloseIdleConnections()
	url := scheme + "://" + target + hc.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Host = host
	req.Header.Set("User-Agent", "reconcile-health-check")
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, unwrapNet(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// unwrapNet keeps the useful end of a dial error ("connection refused", "i/o timeout").
func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// Transition is a member whose health changed.
type Transition struct {
	Member  string
	Healthy bool
	Reason  string
	At      time.Time
}

func (t Transition) String() string {
	if t.Healthy {
		return "member " + t.Member + " is healthy again"
	}
	return "member " + t.Member + " is unhealthy: " + t.Reason
}

// Tracker counts each member's checks in a row and decides when its health changes: after
// UnhealthyAfter failures a healthy member is unhealthy, after HealthyAfter passes an
// unhealthy one is healthy. It starts from the health the store keeps and writes the store
// only on a change. Safe for concurrent use.
type Tracker struct {
	store kube.Files
	now   func() time.Time

	mu      sync.Mutex
	health  map[string]*world.MemberHealth
	inARow  map[string]int // passes (>0) or failures (<0) in a row since the last change
	checks  map[string]int
	lastErr map[string]string
}

// NewTracker starts from the health in store.
func NewTracker(store kube.Files, now func() time.Time) (*Tracker, error) {
	h, err := LoadHealth(store)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = map[string]*world.MemberHealth{}
	}
	if now == nil {
		now = time.Now
	}
	return &Tracker{store: store, now: now, health: h, inARow: map[string]int{}, checks: map[string]int{}, lastErr: map[string]string{}}, nil
}

// Record counts one check of member's addrs (err nil: passed) under hc and returns the
// transition it caused, if any. A transition is written to the store before it is returned;
// a store that cannot be written makes Record return the error and no transition (the next
// check tries again).
func (t *Tracker) Record(hc spec.HealthCheck, member string, addrs []string, err error) (*Transition, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.checks[member]++
	cur := t.health[member]
	healthy := cur == nil || cur.Healthy
	n := t.inARow[member]
	if err == nil {
		n = max(n, 0) + 1
		delete(t.lastErr, member)
	} else {
		n = min(n, 0) - 1
		t.lastErr[member] = err.Error()
	}
	t.inARow[member] = n
	var next *world.MemberHealth
	switch {
	case healthy && n <= -hc.UnhealthyAfter:
		next = &world.MemberHealth{Healthy: false, Since: t.now().UTC(), Reason: err.Error(), Addresses: slices.Clone(addrs)}
	case !healthy && n >= hc.HealthyAfter:
		next = &world.MemberHealth{Healthy: true, Since: t.now().UTC(), Addresses: slices.Clone(addrs)}
	default:
		if cur != nil && !healthy && len(addrs) > 0 && !slices.Equal(cur.Addresses, addrs) {
			cur.Addresses = slices.Clone(addrs) // in memory only: written with the next change
		}
		return nil, nil
	}
	prev := t.health[member]
	t.health[member] = next
	if werr := t.writeLocked(); werr != nil {
		if prev == nil {
			delete(t.health, member)
		} else {
			t.health[member] = prev
		}
		t.inARow[member] = n - sign(n) // counted again by the next check
		return nil, fmt.Errorf("recording %s's health: %w", member, werr)
	}
	t.inARow[member] = 0
	return &Transition{Member: member, Healthy: next.Healthy, Reason: next.Reason, At: next.Since}, nil
}

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}

func (t *Tracker) writeLocked() error {
	b, err := json.MarshalIndent(healthFile{Members: t.health}, "", "  ")
	if err != nil {
		return err
	}
	return t.store.WriteFile(HealthRecord, append(b, '\n'))
}

// Status is one member's health for status and metrics.
type Status struct {
	Member    string
	Healthy   bool
	Since     time.Time
	Reason    string
	InARow    int
	Checks    int
	LastError string
}

// Statuses are every tracked member's health, sorted by member.
func (t *Tracker) Statuses() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := map[string]bool{}
	for m := range t.health {
		names[m] = true
	}
	for m := range t.checks {
		names[m] = true
	}
	var out []Status
	for m := range names {
		s := Status{Member: m, Healthy: true, InARow: t.inARow[m], Checks: t.checks[m], LastError: t.lastErr[m]}
		if h := t.health[m]; h != nil {
			s.Healthy, s.Since, s.Reason = h.Healthy, h.Since, h.Reason
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	return out
}

// Forget drops members no longer in the fleet, so their health neither shows nor comes back.
func (t *Tracker) Forget(keep []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for m := range t.health {
		if !slices.Contains(keep, m) {
			delete(t.health, m)
			changed = true
		}
	}
	for m := range t.checks {
		if !slices.Contains(keep, m) {
			delete(t.checks, m)
			delete(t.inARow, m)
			delete(t.lastErr, m)
		}
	}
	if !changed {
		return nil
	}
	return t.writeLocked()
}

// CheckRound checks every member of targets at once (each member passes when any of its
// addresses does) and records the results; it returns the transitions.
func (t *Tracker) CheckRound(ctx context.Context, e *spec.Entry, targets map[string][]string) ([]Transition, error) {
	type result struct {
		member string
		addrs  []string
		err    error
	}
	results := make(chan result, len(targets))
	for m, addrs := range targets {
		go func() {
			var err error
			for _, a := range addrs {
				if err = Probe(ctx, e.HealthCheck, e.FQDN(), a); err == nil {
					break
				}
			}
			if len(addrs) == 0 {
				err = errors.New("no address to check")
			}
			results <- result{m, addrs, err}
		}()
	}
	var out []Transition
	var errs []string
	for range targets {
		r := <-results
		if ctx.Err() != nil {
			continue // a check cut short by shutdown says nothing of the member
		}
		tr, err := t.Record(e.HealthCheck, r.member, r.addrs, r.err)
		if err != nil {
			errs = append(errs, err.Error())
		}
		if tr != nil {
			out = append(out, *tr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	if len(errs) > 0 {
		sort.Strings(errs)
		return out, errors.New(strings.Join(errs, "; "))
	}
	return out, nil
}
