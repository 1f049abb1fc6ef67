// Package labworld is the lab as a whole: one etcd, the lab's Linode API whose clusters are
// real lab clusters (kube-apiserver and kube-controller-manager on their own loopback
// address, a Kubelet stand-in, the Karmada player), and the chart repository, all on this
// machine. `reconcile-lab up/status/down/serve/show` is Main.
package labworld

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labdns"
	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// Default listen addresses of the lab's servers; examples/lab/fleet.yaml points at them.
const (
	DefaultLinodeListen = "127.0.0.1:18400"
	DefaultChartsListen = "127.0.0.1:18401"
	// IstioVersion is the version stamped on the lab's Istio charts (Istio's own, from the
	// istio.io/istio module; see lab/charts): what a lab fleet pins as mesh.version.
	IstioVersion = charts.DefaultIstioVersion
)

// Options configure a lab.
type Options struct {
	// Dir holds everything the lab writes (etcd data, clusters, charts); created 0700.
	Dir string
	// LinodeListen and ChartsListen default to DefaultLinodeListen and DefaultChartsListen;
	// "127.0.0.1:0" picks a free port.
	LinodeListen, ChartsListen string
	// DNSListen is the lab DNS server's UDP and TCP address; default 127.0.0.1:0 (a free port).
	DNSListen string
	// Token is the Linode API's bearer token; empty makes a random one.
	Token string
	// ProvisionDelay is the Linode API's delay before a new cluster is started.
	ProvisionDelay time.Duration
	// LinodeFaultRate is the share of Linode API requests answered with a 5xx (500, 502,
	// 504), so the whole lab world can be run under faults; 0 answers every request.
	LinodeFaultRate float64
	// LinodeRateLimit > 0 answers Linode API requests beyond this many a minute with 429
	// and Retry-After, in place of the real API's documented limits.
	LinodeRateLimit int
	// NoLinodeRateLimits turns off the documented limits the Linode API enforces by default
	// (`reconcile-lab up --linode-rate-limits=false`).
	NoLinodeRateLimits bool
	// Addresses are the clusters' loopback addresses (default DefaultAddresses).
	Addresses AddressRange
	// Karmada runs the karmadalab Player in every lab cluster, so the Karmada chart installs
	// and runs there (it needs the Karmada binaries). `reconcile-lab serve` sets it.
	Karmada bool
	// Istiod runs istiod (pilot-discovery, built by lab/tools/build.sh istio) in every lab
	// cluster where istio-system/istiod's Deployment exists (labworld.Istiod). `reconcile-lab
	// serve` sets it when pilot-discovery is built.
	Istiod bool
	// Player, when set, runs in every lab cluster instead.
	Player ClusterPlayer
	Log    *slog.Logger
}

// Lab is a running lab.
type Lab struct {
	LinodeURL string // http://127.0.0.1:18400/v4
	Token     string
	ChartsURL string // http://127.0.0.1:18401
	// DNS is the lab DNS server's address (UDP and TCP), answering for the Linode API's zones.
	DNS string
	// KarmadaVersion is the version of the Karmada chart the repository serves.
	KarmadaVersion string

	dir     string
	etcd    *cluster.Etcd
	backend *Backend
	api     *linodeapi.Server
	dns     *labdns.Server
	servers []*http.Server
	pids    *pidFile
	stopRec context.CancelFunc
	recDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Up starts the lab in this process: etcd, the Linode API with the lab Backend, and the chart
// repository. On error everything started is stopped again.
func Up(ctx context.Context, o Options) (*Lab, error) {
	l, err := up(ctx, o)
	if err != nil {
		if l != nil {
			_ = l.Close()
		}
		return nil, fmt.Errorf("lab up: %w", err)
	}
	return l, nil
}

func up(ctx context.Context, o Options) (*Lab, error) {
	if o.Dir == "" {
		return nil, errors.New("no Dir given")
	}
	if o.LinodeListen == "" {
		o.LinodeListen = DefaultLinodeListen
	}
	if o.ChartsListen == "" {
		o.ChartsListen = DefaultChartsListen
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Token == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		o.Token = hex.EncodeToString(b)
	}
	bins, err := cluster.FindBinaries()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, err
	}
	// Listen first: a port in use fails fast, before anything is started.
	linodeLn, err := net.Listen("tcp", o.LinodeListen)
	if err != nil {
		return nil, fmt.Errorf("linode API: %w", err)
	}
	chartsLn, err := net.Listen("tcp", o.ChartsListen)
	if err != nil {
		linodeLn.Close()
		return nil, fmt.Errorf("chart repository: %w", err)
	}
	l := &Lab{
		Token:     o.Token,
		LinodeURL: "http://" + linodeLn.Addr().String() + "/v4",
		ChartsURL: "http://" + chartsLn.Addr().String(),
		dir:       o.Dir,
		pids:      &pidFile{path: pidFilePath(o.Dir)},
	}
	recCtx, stop := context.WithCancel(context.Background())
	l.stopRec, l.recDone = stop, make(chan struct{})
	go func() {
		// Players start processes of their own at any time: record them as they appear.
		defer close(l.recDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-recCtx.Done():
				return
			case <-t.C:
				_ = l.pids.recordChildren()
			}
		}
	}()

	repo, err := charts.BuildRepo(filepath.Join(o.Dir, "charts"), charts.RepoOptions{
		KarmadaVersion: cluster.KarmadaVersion, IstioVersion: IstioVersion, BaseURL: l.ChartsURL,
	})
	if err != nil {
		linodeLn.Close()
		chartsLn.Close()
		return l, fmt.Errorf("chart repository: %w", err)
	}
	l.KarmadaVersion = repo.KarmadaVersion
	l.serve(chartsLn, repo.Handler())

	// Fresh etcd data: the Linode API keeps its clusters in memory, so an earlier lab's are gone.
	etcdDir := filepath.Join(o.Dir, "etcd")
	if err := os.RemoveAll(etcdDir); err != nil {
		linodeLn.Close()
		return l, err
	}
	l.etcd, err = cluster.StartEtcd(ctx, etcdDir, bins)
	_ = l.pids.recordChildren()
	if err != nil {
		linodeLn.Close()
		return l, err
	}
	player := o.Player
	if o.Karmada && player == nil {
		kb, err := cluster.FindKarmadaBinaries()
		if err != nil {
			linodeLn.Close()
			return l, err
		}
		player = karmadaPlayer{&karmadalab.Player{Etcd: l.etcd, Bins: bins, Karmada: kb,
			Dir: filepath.Join(o.Dir, "karmada"), Log: log}}
	}
	istiod := ""
	if o.Istiod {
		if istiod, err = cluster.FindIstiod(); err != nil {
			linodeLn.Close()
			return l, err
		}
	}
	l.backend = &Backend{
		Istiod:    istiod,
		Dir:       filepath.Join(o.Dir, "clusters"),
		Etcd:      l.etcd,
		Bins:      bins,
		Addresses: o.Addresses,
		Player:    player,
		Log:       log,
		Started:   func() { _ = l.pids.recordChildren() },
	}
	api := linodeapi.Options{Token: o.Token, ProvisionDelay: o.ProvisionDelay, Backend: l.backend, FaultRate: o.LinodeFaultRate,
		NoRateLimits: o.NoLinodeRateLimits}
	if o.LinodeRateLimit > 0 {
		api.RateLimit, api.RateWindow = o.LinodeRateLimit, time.Minute
	}
	l.api = linodeapi.New(api)
	l.backend.NodeBalancers = l.api // before any cluster is provisioned: the API is not served yet
	if o.DNSListen == "" {
		o.DNSListen = "127.0.0.1:0"
	}
	if l.dns, err = labdns.Start(o.DNSListen, l.api, log); err != nil {
		linodeLn.Close()
		return l, err
	}
	l.DNS = l.dns.Addr()
	l.serve(linodeLn, l.api)
	log.Info("lab up", "linode", l.LinodeURL, "charts", l.ChartsURL, "dns", l.DNS, "dir", o.Dir)
	return l, nil
}

func (l *Lab) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	l.servers = append(l.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// LinodeAPI is the lab's Linode API server (tests count its requests).
func (l *Lab) LinodeAPI() *linodeapi.Server { return l.api }

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.dir }

// Clusters lists the lab clusters running now.
func (l *Lab) Clusters() []LabCluster {
	if l.backend == nil {
		return nil
	}
	return l.backend.Clusters()
}

// Close stops the servers, every cluster, the players and etcd, and waits for their
// processes to exit. Safe to call twice.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, s := range l.servers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, err)
				_ = s.Close()
			}
			cancel()
		}
		if l.dns != nil {
			errs = append(errs, l.dns.Close())
		}
		if l.api != nil {
			l.api.Close() // deprovisions every cluster through the backend
		}
		if l.backend != nil {
			errs = append(errs, l.backend.Close())
		}
		if l.etcd != nil {
			errs = append(errs, l.etcd.Stop())
		}
		l.stopRec()
		<-l.recDone
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
