package helm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter hands Helm a fixed rest.Config and namespace (genericclioptions.RESTClientGetter),
// instead of kubeconfig files and flags.
type restGetter struct {
	cfg       *rest.Config
	namespace string

	once   sync.Once
	disc   discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
	err    error
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.init()
	return g.disc, g.err
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	g.init()
	return g.mapper, g.err
}

// init builds discovery once per operation: fresh for each operation, so CRDs installed
// meanwhile are seen, and shared within it, so one install costs one discovery.
func (g *restGetter) init() {
	g.once.Do(func() {
		dc, err := discovery.NewDiscoveryClientForConfig(g.cfg)
		if err != nil {
			g.err = err
			return
		}
		g.disc = memory.NewMemCacheClient(dc)
		g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(g.disc), g.disc, nil)
	})
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return namespaceConfig{g} }

// namespaceConfig answers the namespace Helm asks the kubeconfig loader for.
type namespaceConfig struct{ g *restGetter }

func (c namespaceConfig) RawConfig() (clientcmdapi.Config, error) {
	return clientcmdapi.Config{}, fmt.Errorf("helm: no raw kubeconfig behind a rest.Config")
}
func (c namespaceConfig) ClientConfig() (*rest.Config, error)  { return c.g.ToRESTConfig() }
func (c namespaceConfig) Namespace() (string, bool, error)     { return c.g.namespace, true, nil }
func (c namespaceConfig) ConfigAccess() clientcmd.ConfigAccess { return nil }

// boundTransport ends every request of one Helm operation when the operation's context ends,
// and refuses new ones afterwards. Helm's SDK keeps waiting on hooks in a goroutine after a
// cancelled install returns; bound this way, that goroutine can no longer write, so a
// cancelled operation leaves its release pending, as a crash would, and never overwrites a
// later operation's record.
type boundTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, fmt.Errorf("helm operation ended: %w", err)
	}
	rctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	resp, err := t.next.RoundTrip(req.WithContext(rctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releaseBody frees the request's context when its body is closed (watches stream for long).
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
