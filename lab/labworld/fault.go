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

// fault is `reconcile-lab fault replicas <member> unavailable|available`: it reaches the
// member as reconcile does (its kubeconfig in reconcile's state, or the existing cluster's)
// and sets the fault the member's Kubelet stand-in reads (SetReplicasFault).
func fault(ctx context.Context, o faultOptions, args []string, out io.Writer) error {
	if len(args) != 3 || args[0] != "replicas" || (args[2] != ReplicasUnavailable && args[2] != ReplicasAvailable) {
		return fmt.Errorf("want: fault replicas <member> unavailable|available -f fleet.yaml, got %q", args)
	}
	member, unavailable := args[1], args[2] == ReplicasUnavailable
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
	if err := SetReplicasFault(ctx, client, unavailable); err != nil {
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
