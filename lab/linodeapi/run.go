package linodeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Run serves the API on listen until ctx is done, then shuts down and closes the
// server (deprovisioning its clusters). With an empty o.Token a random one is made;
// the address and token are printed to out, since this is a lab server whose token
// guards nothing but the lab.
func Run(ctx context.Context, listen string, o Options, out io.Writer) error {
	if o.Token == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("generate token: %w", err)
		}
		o.Token = hex.EncodeToString(b)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	s := New(o)
	defer s.Close()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	addr := ln.Addr().String()
	fmt.Fprintf(out, "Linode API listening on http://%s (token: %s)\n", addr, o.Token)
	fmt.Fprintf(out, "  export LINODE_URL=http://%s LINODE_TOKEN=%s\n", addr, o.Token)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
