// Package deps pins the design's dependencies in go.mod while the packages that use them
// are being written. Delete an import here once a real package imports it.
package deps

import (
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	_ "github.com/karmada-io/karmada/pkg/apis/policy/v1alpha1"
	_ "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"
	_ "github.com/linode/linodego"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "sigs.k8s.io/yaml"
)
