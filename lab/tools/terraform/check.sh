#!/usr/bin/env bash
# Checks the lab's Linode API with a second client: Linode's Terraform provider, built from
# source, run by OpenTofu, built from the Go module proxy. Against `reconcile-lab linode-api`
# (the documented rate limits on, as by default) it applies an LKE cluster with one pool,
# plans again and requires no changes, then destroys it and requires the lab to have no
# cluster left. `make lab-terraform-check` runs it; it is not part of `make test`.
#
# usage: check.sh
#
# Environment:
#   TF_PROVIDER_LINODE_SRC  a checkout (work tree or bare git directory) of
#                           github.com/linode/terraform-provider-linode. Required on the first
#                           run: the Go module proxy refuses that module, so it cannot be
#                           fetched by version. A git directory is read at TF_PROVIDER_LINODE_REF.
#   TF_PROVIDER_LINODE_REF  tag to build from a git directory (default v3.13.0)
#   RECONCILE_LAB_CACHE     cache of built binaries (default ~/.cache/reconcile-lab), keyed
#                           by version: a second run builds nothing.
#   KEEP=1                  keep the work directory (Terraform files, logs) for inspection
#
# Nothing is downloaded at run time: OpenTofu finds the provider through a dev_overrides CLI
# configuration, so it never asks a registry.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cache=${RECONCILE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconcile-lab}
ref=${TF_PROVIDER_LINODE_REF:-v3.13.0}

tofu_version=$(cd "$here/tofu" && go list -m -f '{{.Version}}' github.com/opentofu/opentofu)
tofu_bin=$cache/opentofu-$tofu_version/tofu
provider_dir=$cache/terraform-provider-linode-$ref
provider_bin=$provider_dir/terraform-provider-linode

say() { printf '== %s\n' "$*" >&2; }

# OpenTofu, from the module in tofu/ (its go.mod pins the version).
if [ ! -x "$tofu_bin" ]; then
	say "building OpenTofu $tofu_version (first run: several minutes)"
	mkdir -p "$(dirname "$tofu_bin")"
	(cd "$here/tofu" && go build -trimpath -ldflags '-s -w' -o "$tofu_bin.tmp.$$" github.com/opentofu/opentofu/cmd/tofu)
	mv "$tofu_bin.tmp.$$" "$tofu_bin"
fi

# The provider, from source, with linodego/k8s replaced by the lab's stand-in (linodego-k8s/).
if [ ! -x "$provider_bin" ]; then
	src=${TF_PROVIDER_LINODE_SRC:-}
	if [ -z "$src" ]; then
		echo "check.sh: set TF_PROVIDER_LINODE_SRC to a checkout of github.com/linode/terraform-provider-linode" >&2
		echo "          (the Go module proxy refuses that module; nothing else fetches it)" >&2
		exit 2
	fi
	say "building terraform-provider-linode $ref from $src"
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	if [ -d "$src/.git" ] || [ ! -e "$src/go.mod" ]; then
		git --git-dir "$( [ -d "$src/.git" ] && echo "$src/.git" || echo "$src")" archive "$ref" | tar -x -C "$build"
	else
		cp -R "$src/." "$build"
	fi
	(
		cd "$build"
		# The proxy refuses linodego v1.69.0 (which v3.13.0 asks for) and serves v1.69.1, the
		# version reconcile pins: a patch release of the same client.
		go mod edit -replace "github.com/linode/linodego/k8s=$here/linodego-k8s" \
			-require github.com/linode/linodego@v1.69.1
		GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/linode/terraform-provider-linode/v3/version.ProviderVersion=${ref#v}" \
			-o "$provider_bin.tmp.$$" .
	)
	mkdir -p "$provider_dir"
	mv "$provider_bin.tmp.$$" "$provider_bin"
	rm -rf "$build"
	trap - EXIT
fi

work=$(mktemp -d)
lab_pid=
cleanup() {
	if [ -n "$lab_pid" ]; then kill "$lab_pid" 2>/dev/null || true; wait "$lab_pid" 2>/dev/null || true; fi
	if [ "${KEEP:-}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

say "starting reconcile-lab linode-api (documented rate limits on)"
(cd "$root" && go build -o "$work/reconcile-lab" ./cmd/reconcile-lab)
token=tf-check-$RANDOM$RANDOM
"$work/reconcile-lab" linode-api --listen 127.0.0.1:0 --token "$token" --provision-delay 2s >"$work/lab.out" 2>"$work/lab.err" &
lab_pid=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$work/lab.out" 2>/dev/null && break
	sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/lab.out")
[ -n "$url" ] || { cat "$work/lab.err" >&2; echo "check.sh: the lab API did not start" >&2; exit 1; }

cat >"$work/tofurc" <<EOF
provider_installation {
  dev_overrides {
    "linode/linode" = "$provider_dir"
  }
  direct {}
}
EOF
export TF_CLI_CONFIG_FILE=$work/tofurc TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

# One run per API version: the provider's default (v4) and v4beta, whose answers differ (tier,
# and the provider reads the dashboard only of a cluster it sees as standard tier).
for api in ${TF_CHECK_API_VERSIONS:-v4 v4beta}; do
	dir=$work/tf-$api
	mkdir "$dir"
	cat >"$dir/main.tf" <<EOF
terraform {
  required_providers {
    linode = { source = "linode/linode" }
  }
}

provider "linode" {
  token       = "$token"
  url         = "$url"
  api_version = "$api"
  # Retries of 429 (the lab's documented limits) and 503 (kubeconfig not yet ready) wait
  # between 1 and 5 seconds.
  min_retry_delay_ms = 1000
  max_retry_delay_ms = 5000
}

resource "linode_lke_cluster" "check" {
  label       = "tf-check-$api"
  region      = "us-ord"
  k8s_version = "1.33"
  tags        = ["lab", "terraform-check"]

  pool {
    type  = "g6-standard-2"
    count = 2
  }
}

output "tier" {
  value = linode_lke_cluster.check.tier
}
output "dashboard_url" {
  value = linode_lke_cluster.check.dashboard_url
}
output "api_endpoints" {
  value = linode_lke_cluster.check.api_endpoints
}
EOF
	tofu() { (cd "$dir" && "$tofu_bin" "$@"); }

	say "$api: tofu apply"
	tofu apply -auto-approve -no-color >"$dir/apply.log" 2>&1 || { cat "$dir/apply.log" >&2; exit 1; }
	sed -n '/^Apply complete/,$p' "$dir/apply.log" >&2

	say "$api: tofu plan (no changes expected)"
	set +e
	tofu plan -detailed-exitcode -no-color >"$dir/plan.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		cat "$dir/plan.log" >&2
		echo "check.sh: $api: plan after apply exited $rc, want 0 (no changes)" >&2
		exit 1
	fi
	grep -E '^No changes' "$dir/plan.log" >&2

	say "$api: tofu destroy"
	tofu destroy -auto-approve -no-color >"$dir/destroy.log" 2>&1 || { cat "$dir/destroy.log" >&2; exit 1; }
	grep -E '^Destroy complete' "$dir/destroy.log" >&2

	left=$(curl -fsS -H "Authorization: Bearer $token" "$url/v4/lke/clusters" | sed -n 's/.*"results": *\([0-9]*\).*/\1/p')
	if [ "$left" != 0 ]; then
		echo "check.sh: $api: $left cluster(s) left in the lab after destroy" >&2
		exit 1
	fi
done

echo "terraform check: OK (OpenTofu $tofu_version, terraform-provider-linode $ref, API ${TF_CHECK_API_VERSIONS:-v4 v4beta}: apply, plan without changes, destroy against the lab)"
