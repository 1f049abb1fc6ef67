package labworld

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

type faultOptions struct {
	fleet, stateDir string
}

// faultUsage is what `reconcile-lab fault` accepts.
const faultUsage = "fault replicas <member> unavailable|available or fault ingress <member> down|up, -f fleet.yaml"

// fault is `reconcile-lab fault replicas <member> unavailable|available` and `reconcile-lab
// fault ingress <member> down|up`: it reaches the member as reconcile does (its kubeconfig in
// reconcile's state, or the existing cluster's) and sets the fault the member's Kubelet
// stand-in (SetReplicasFault) or CloudController (SetIngressFault) reads.
func fault(ctx context.Context, o faultOptions, args []string, out io.Writer) error {
	ok := len(args) == 3 && (args[0] == "replicas" && (args[2] == ReplicasUnavailable || args[2] == ReplicasAvailable) ||
		args[0] == "ingress" && (args[2] == IngressDown || args[2] == IngressUp))
	if !ok {
		return fmt.Errorf("want: %s; got %q", faultUsage, args)
	}
	member := args[1]
	f, err := spec.Load(o.fleet)
	if err != nil {
		return err
	}
	if !isMember(f, member) {
		return fmt.Errorf("%q is not a member of fleet %s", member, f.Metadata.Name)
	}
	dir := o.stateDir
	if dir == "" {
		dir = state.DefaultStoreDir(f.Metadata.Name)
	}
	store, err := state.OpenStore(dir)
	if err != nil {
		return err
	}
	cfg, err := kube.Access{Store: store, Timeout: 10 * time.Second}.For(f).RESTConfig(member)
	if err != nil {
		return fmt.Errorf("member %s: %w", member, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if args[0] == "ingress" {
		if err := SetIngressFault(ctx, client, args[2] == IngressDown); err != nil {
			return fmt.Errorf("member %s: %w", member, err)
		}
		if args[2] == IngressDown {
			fmt.Fprintf(out, "Member %s: its load balancers refuse connections from now on (the lab's NodeBalancer frontends).\n", member)
		} else {
			fmt.Fprintf(out, "Member %s: its load balancers answer again (the lab's NodeBalancer frontends).\n", member)
		}
		return nil
	}
	if err := SetReplicasFault(ctx, client, args[2] == ReplicasUnavailable); err != nil {
		return fmt.Errorf("member %s: %w", member, err)
	}
	fmt.Fprintf(out, "Member %s: replicas are %s from now on (the lab's kubelet stand-in).\n", member, args[2])
	return nil
}

func isMember(f *spec.Fleet, name string) bool {
	for _, m := range f.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}
