#!/usr/bin/env bash
# Build (or find) kube-score, the chart scanner of tests/unit/test_chart_scanners.py, from
# the Go module proxy into a cache directory outside the repository:
#   ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/kube-score-v<VERSION>/kube-score
# A second run finds it there (it answers `version` with the pinned version) and builds
# nothing. Built to a temporary name and renamed into place, under a lock, like
# tests/controlplane/build-binaries.sh.
#
# Usage: build-kube-score.sh [--check] [--print-path]
set -euo pipefail

KUBE_SCORE_VERSION="1.20.0"
module="github.com/zegl/kube-score/cmd/kube-score"

mode=build
quiet=0
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --print-path) quiet=1 ;;
    *)
      echo "build-kube-score.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "build-kube-score: $*" >&2; }
cache_root="${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}"
dest="${cache_root}/kube-score-v${KUBE_SCORE_VERSION}"
binary="${dest}/kube-score"

ok() { [[ -x "$binary" ]] && [[ "$(timeout 30 "$binary" version 2>&1)" == *"${KUBE_SCORE_VERSION}"* ]]; }
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
# The version is stamped the way kube-score's release build does (main.version).
GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-mod=mod" \
  nice -n 10 go install -trimpath \
  -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION}" "${module}@v${KUBE_SCORE_VERSION}" >&2
mv -f "${tmp}/kube-score" "$binary"
log "built kube-score ${KUBE_SCORE_VERSION} in $(($(date +%s) - start)) s"
ok || { log "built, but \`kube-score version\` does not say ${KUBE_SCORE_VERSION}"; exit 1; }
if [[ "$quiet" == 1 ]]; then echo "$binary"; fi
