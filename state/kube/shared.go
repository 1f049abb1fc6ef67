package kube

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Clients are built once per cluster credential and process, not per pass: a typed clientset
// builds some fifty REST clients, which at 30 members was a sixth of a no-op pass's CPU. A
// client whose config carries code (a transport wrapper, a dialer, an exec or auth provider)
// cannot be told apart from another by its fields and is built anew every time.

// Clientset is a typed client for cfg, shared with every other caller that asks with an equal
// config.
func Clientset(cfg *rest.Config) (kubernetes.Interface, error) {
	return shared(cfg, "kubernetes", func(c *rest.Config) (kubernetes.Interface, error) {
		return kubernetes.NewForConfig(c)
	})
}

// Dynamic is a dynamic client for cfg, shared as Clientset is.
func Dynamic(cfg *rest.Config) (dynamic.Interface, error) {
	return shared(cfg, "dynamic", func(c *rest.Config) (dynamic.Interface, error) {
		return dynamic.NewForConfig(c)
	})
}

// Shared is a client of any kind for cfg, built by build and shared under kind (the Karmada
// clientset, for one).
func Shared[T any](cfg *rest.Config, kind string, build func(*rest.Config) (T, error)) (T, error) {
	return shared(cfg, kind, build)
}

func shared[T any](cfg *rest.Config, kind string, build func(*rest.Config) (T, error)) (T, error) {
	key, ok := configKey(cfg)
	if !ok {
		return build(cfg)
	}
	key = "client\x00" + kind + "\x00" + key
	if v, ok := clients.get(key); ok {
		if c, ok := v.(T); ok {
			return c, nil
		}
	}
	c, err := build(rest.CopyConfig(cfg))
	if err != nil {
		return c, err
	}
	clients.put(key, c)
	return c, nil
}

// clients holds the shared clients, by config; a changed credential is another key, and the
// memo is emptied when it grows past memoSize.
var clients memo

// configKey fingerprints every field of cfg that decides where and how a client connects
// and authenticates; ok is false when cfg carries code (then it is never shared).
func configKey(cfg *rest.Config) (string, bool) {
	if cfg == nil || cfg.WrapTransport != nil || cfg.Transport != nil || cfg.Dial != nil || cfg.Proxy != nil ||
		cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.AuthConfigPersister != nil ||
		cfg.RateLimiter != nil || cfg.WarningHandler != nil || cfg.WarningHandlerWithContext != nil ||
		cfg.TLSClientConfig.NextProtos != nil {
		return "", false
	}
	t := cfg.TLSClientConfig
	fields := struct {
		Host, APIPath                                    string
		Username, Password, BearerToken, BearerTokenFile string
		Impersonate                                      rest.ImpersonationConfig
		Insecure                                         bool
		ServerName, CertFile, KeyFile, CAFile            string
		CertData, KeyData, CAData                        []byte
		UserAgent                                        string
		DisableCompression                               bool
		QPS                                              float32
		Burst                                            int
		Timeout                                          time.Duration
		ContentType, AcceptContentTypes                  string
		GroupVersion                                     string
		NegotiatedSerializer                             string
	}{
		Host: cfg.Host, APIPath: cfg.APIPath,
		Username: cfg.Username, Password: cfg.Password, BearerToken: cfg.BearerToken, BearerTokenFile: cfg.BearerTokenFile,
		Impersonate: cfg.Impersonate,
		Insecure:    t.Insecure, ServerName: t.ServerName, CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
		CertData: t.CertData, KeyData: t.KeyData, CAData: t.CAData,
		UserAgent: cfg.UserAgent, DisableCompression: cfg.DisableCompression,
		QPS: cfg.QPS, Burst: cfg.Burst, Timeout: cfg.Timeout,
		ContentType: cfg.ContentType, AcceptContentTypes: cfg.AcceptContentTypes,
	}
	if cfg.GroupVersion != nil {
		fields.GroupVersion = cfg.GroupVersion.String()
	}
	if cfg.NegotiatedSerializer != nil {
		fields.NegotiatedSerializer = fmt.Sprintf("%T", cfg.NegotiatedSerializer)
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(data)
	return string(sum[:]), true
}
