package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

const labUsage = `Usage:
  reconcile lab linode-api [--listen 127.0.0.1:8080] [--token T] [--provision-delay 5s]
      run the lab's Linode API server (the real v4 LKE API, in memory) until interrupted
`

func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, labUsage)
		return 1
	}
	switch args[0] {
	case "linode-api":
		fs := flag.NewFlagSet("reconcile lab linode-api", flag.ContinueOnError)
		fs.SetOutput(stderr)
		listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
		token := fs.String("token", "", "bearer token to accept (default: a random one, printed)")
		delay := fs.Duration("provision-delay", 5*time.Second, "time until a new cluster's nodes and kubeconfig are ready")
		rate := fs.Int("rate-limit", 0, "requests per minute before 429 (0: no limit)")
		fault := fs.Float64("fault-rate", 0, "share of requests answered with a 5xx")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		o := linodeapi.Options{Token: *token, ProvisionDelay: *delay, FaultRate: *fault}
		if *rate > 0 {
			o.RateLimit, o.RateWindow = *rate, time.Minute
		}
		if err := linodeapi.Run(ctx, *listen, o, stdout); err != nil {
			fmt.Fprintf(stderr, "reconcile lab linode-api: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "reconcile lab: unknown command %q\n%s", args[0], labUsage)
	return 1
}
