// Command reconcile-lab runs the local lab: a Linode API of its own whose LKE clusters are real
// kube-apiservers on loopback addresses, a chart repository and the Karmada control plane, all
// on this machine (see lab/README.md). It is apart from reconcile so that the binary that runs
// with a cloud token does not carry the lab.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/reconcile-dev/reconcile/lab/labworld"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" { // labworld.Main does the rest
		fmt.Fprintf(stdout, "reconcile-lab %s\n", version)
		return 0
	}
	return labworld.Main(ctx, args, stdout, stderr)
}
