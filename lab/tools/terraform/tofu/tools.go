//go:build tools

// Package tofu pins the OpenTofu core that lab/tools/terraform/check.sh builds from the
// Go module proxy (go build github.com/opentofu/opentofu/cmd/tofu in this module).
package tofu

import _ "github.com/opentofu/opentofu/cmd/tofu"
