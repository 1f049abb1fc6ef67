#!/usr/bin/env bash
# Builds the lab's binaries from source through the Go module proxy (no prebuilt downloads) into
# a cache keyed by version:
#   ${RECONCILE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconcile-lab}/<component>-<version>/<binary>
#
# usage: build.sh [--list] [component...]
#   component: kubernetes, etcd, karmada, istio (default: all of them)
#   --list     print the path of every binary (one per line) and build nothing
#
# istio builds istiod (pilot-discovery) from the istio.io/istio module pinned in istio/go.mod
# (istio/tools.go imports it, so go.sum covers its build), and xds-probe (istio/cmd/xds-probe,
# a proxyless gRPC client that reports what istiod serves it); the same module's copy in the Go
# module cache is where the lab's chart repository reads Istio's Helm charts.
#
# Idempotent: a binary that exists is skipped. Interrupt-safe: each binary is linked under a
# temporary name and renamed into place only once complete. Exits non-zero if any build fails.
# Versions come from the go.mod of each module below, so they cannot drift from what is built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${RECONCILE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconcile-lab}

# component | module dir (relative to here) | version of module | package | binary
targets=(
	"kubernetes|.|k8s.io/kubernetes|./cmd/kube-apiserver|kube-apiserver"
	"kubernetes|.|k8s.io/kubernetes|./cmd/kube-controller-manager|kube-controller-manager"
	"etcd|cmd/etcd|go.etcd.io/etcd/server/v3|.|etcd"
	"karmada|karmada|github.com/karmada-io/karmada|github.com/karmada-io/karmada/cmd/aggregated-apiserver|karmada-aggregated-apiserver"
	"karmada|karmada|github.com/karmada-io/karmada|github.com/karmada-io/karmada/cmd/controller-manager|karmada-controller-manager"
	"karmada|karmada|github.com/karmada-io/karmada|github.com/karmada-io/karmada/cmd/scheduler|karmada-scheduler"
	"karmada|karmada|github.com/karmada-io/karmada|github.com/karmada-io/karmada/cmd/webhook|karmada-webhook"
	"karmada|karmada|github.com/karmada-io/karmada|github.com/karmada-io/karmada/cmd/agent|karmada-agent"
	"istio|istio|istio.io/istio|istio.io/istio/pilot/cmd/pilot-discovery|pilot-discovery"
	"istio|istio|istio.io/istio|./cmd/xds-probe|xds-probe"
)

list=false
want=()
for arg in "$@"; do
	case $arg in
	--list) list=true ;;
	-h | --help)
		sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "build.sh: unknown flag $arg" >&2
		exit 2
		;;
	*) want+=("$arg") ;;
	esac
done

export GOWORK=off GOFLAGS=-trimpath

# version reads the version of module mod as required by the go.mod in dir, without the network.
version() {
	local dir=$1 mod=$2 v
	v=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$here/$dir/go.mod")
	if [[ -z $v ]]; then
		echo "build.sh: $mod not required in $dir/go.mod" >&2
		return 1
	fi
	echo "$v"
}

# ldflags stamps the release into the binaries, as upstream's release builds do: without it
# kube-apiserver reports v0.0.0-master in /version, which charts' kubeVersion checks reject.
ldflags() {
	local comp=$1 ver=$2 flags="-s -w" pkg major minor
	case $comp in
	kubernetes)
		major=${ver#v}
		minor=${major#*.}
		major=${major%%.*}
		minor=${minor%%.*}
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			flags+=" -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
		done
		;;
	karmada)
		flags+=" -X github.com/karmada-io/karmada/pkg/version.gitVersion=$ver -X github.com/karmada-io/karmada/pkg/version.gitTreeState=clean"
		;;
	istio)
		# As Istio's common/scripts/report_build_info.sh does for its release builds. The module
		# proxy serves a snapshot of main as a pseudo-version (v0.0.0-<time>-<12-hex commit>):
		# its VERSION file (1.31) names the release, stamped as charts.DefaultIstioVersion
		# (1.31.0-dev.<time>.<commit>); the revision is the pseudo-version's commit (the full
		# hash is not in the module).
		local rel time rev p=istio.io/istio/pkg/version
		rel=$(cd "$here/istio" && go mod download -json istio.io/istio | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
		rel=$(cat "$rel/VERSION") || return 1
		time=${ver#v0.0.0-}
		rev=${time#*-}
		time=${time%%-*}
		flags+=" -X $p.buildVersion=$rel.0-dev.$time.$rev -X $p.buildGitRevision=$rev -X $p.buildStatus=Clean"
		flags+=" -X $p.buildTag=$ver -X $p.buildHub=registry.istio.io/testing -X $p.buildOS=$(go env GOOS) -X $p.buildArch=$(go env GOARCH)"
		;;
	esac
	echo "$flags"
}

selected() {
	local c=$1 w
	((${#want[@]} == 0)) && return 0
	for w in "${want[@]}"; do [[ $w == "$c" ]] && return 0; done
	return 1
}

for w in "${want[@]}"; do
	known=false
	for t in "${targets[@]}"; do [[ ${t%%|*} == "$w" ]] && known=true; done
	$known || {
		echo "build.sh: unknown component $w" >&2
		exit 2
	}
done

tmp=""
trap '[[ -n $tmp ]] && rm -f "$tmp"' EXIT
trap 'echo "build.sh: interrupted" >&2; exit 130' INT TERM

failed=0
start_all=$SECONDS
for t in "${targets[@]}"; do
	IFS='|' read -r comp dir mod pkg bin <<<"$t"
	selected "$comp" || continue
	[[ -f $here/$dir/go.mod ]] || continue # optional module not present
	ver=$(version "$dir" "$mod")
	out="$cache/$comp-$ver/$bin"
	if $list; then
		echo "$out"
		continue
	fi
	if [[ -x $out ]]; then
		echo "skip  $comp $ver $bin (cached: $out)"
		continue
	fi
	mkdir -p "$(dirname "$out")"
	tmp="$out.tmp.$$"
	echo "build $comp $ver $bin ..."
	start=$SECONDS
	if flags=$(ldflags "$comp" "$ver") && (cd "$here/$dir" && go build -ldflags="$flags" -o "$tmp" "$pkg"); then
		mv -f "$tmp" "$out"
		tmp=""
		size=$(du -m "$out" | cut -f1)
		echo "done  $comp $ver $bin in $((SECONDS - start))s (${size} MB)"
	else
		rm -f "$tmp"
		tmp=""
		echo "FAIL  $comp $ver $bin after $((SECONDS - start))s" >&2
		failed=$((failed + 1))
	fi
done

if ! $list; then
	echo "total $((SECONDS - start_all))s, cache $cache"
fi
if ((failed > 0)); then
	echo "build.sh: $failed build(s) failed" >&2
	exit 1
fi
