// Istio's Helm charts (manifests/charts) for the lab's chart repository: lab/charts reads them
// from this module's directory in the Go module cache. Only downloaded (build.sh), never built.
module github.com/reconcile-dev/reconcile/lab/tools/istio

go 1.26.0

require istio.io/istio v0.0.0-20260827124520-eed52ebb66ad
