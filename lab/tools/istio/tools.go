//go:build tools

// Package tools pins istiod's command (pilot-discovery) as a dependency of this module, so
// `go mod tidy` records its whole build list in go.sum and build.sh can build it from the
// module cache. It is never compiled itself (build tag tools).
package tools

import _ "istio.io/istio/pilot/cmd/pilot-discovery"
