package kube

import (
	"net/http"
	"testing"

	"k8s.io/client-go/rest"
)

// Equal configs share one client; a changed credential or a config carrying code does not.
func TestClientsetSharedByConfig(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "a"}
	a, err := Clientset(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Clientset(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("equal configs got two clients")
	}
	other := rest.CopyConfig(cfg)
	other.BearerToken = "b" // a rotated token
	if c, _ := Clientset(other); c == a {
		t.Error("another token got the same client")
	}
	wrapped := rest.CopyConfig(cfg)
	wrapped.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return rt }
	w1, _ := Clientset(wrapped)
	w2, _ := Clientset(wrapped)
	if w1 == a || w1 == w2 {
		t.Error("a config with a transport wrapper must get a client of its own every time")
	}
	d1, _ := Dynamic(cfg)
	d2, _ := Dynamic(cfg)
	if d1 != d2 {
		t.Error("equal configs got two dynamic clients")
	}
}
