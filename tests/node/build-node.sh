#!/usr/bin/env bash
# Build (or find) the binaries of the local test node (tests/node):
#   kubelet, kube-scheduler            k8s.io/kubernetes v<K8S_VERSION> (tests/controlplane/versions.env)
#   containerd, ctr, containerd-shim-runc-v2, runc, CNI plugins (bridge host-local
#   loopback portmap), buildkitd, buildctl   (tests/node/versions.env)
# with Go from the Go module proxy, into a cache directory outside the repository:
#   ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/node-k8s-v<K8S_VERSION>/bin
# The kubelet and the scheduler are built in the control plane's wrapper module
# (k8s-v<K8S_VERSION>/src/kubernetes, written by tests/controlplane/build-binaries.sh,
# which must have run first), so they reuse its module and build caches.
#
# Each binary is built to a temporary name, checked and renamed into place, then a
# stamp <name>.version records the pinned version it was built from: a second run
# finds every binary with a matching stamp and builds nothing. runc needs cgo and
# libseccomp: Debian's libseccomp-dev is installed with apt-get when it is missing.
#
# HEADROOM_NODE_BIN_DIR, if set, names a directory holding all of these binaries
# already (the KUBEBUILDER_ASSETS of the node tier): it is checked, nothing is built.
#
# Usage: build-node.sh [--check] [--print-bin-dir]
#   --check          exit 0 if all binaries are present, 1 if not; build nothing
#   --print-bin-dir  print only the bin directory (after finding/building)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
# shellcheck source=../controlplane/versions.env
. "${repo_root}/tests/controlplane/versions.env"
# shellcheck source=versions.env
. "${script_dir}/versions.env"

mode=build
quiet=0
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --print-bin-dir) quiet=1 ;;
    -h | --help)
      sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-node.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "build-node: $*" >&2; }

cni_plugins=(bridge host-local loopback portmap)
order=(kubelet kube-scheduler runc containerd ctr containerd-shim-runc-v2 "${cni_plugins[@]}" buildkitd buildctl)
declare -A version_of=(
  [kubelet]="$K8S_VERSION" [kube-scheduler]="$K8S_VERSION"
  [runc]="$RUNC_VERSION"
  [containerd]="$CONTAINERD_VERSION" [ctr]="$CONTAINERD_VERSION"
  [containerd-shim-runc-v2]="$CONTAINERD_VERSION"
  [buildkitd]="$BUILDKIT_VERSION" [buildctl]="$BUILDKIT_VERSION"
)
for p in "${cni_plugins[@]}"; do version_of[$p]="$CNI_PLUGINS_VERSION"; done

if [[ -n "${HEADROOM_NODE_BIN_DIR:-}" ]]; then
  bad=()
  for name in "${order[@]}"; do
    [[ -x "${HEADROOM_NODE_BIN_DIR}/${name}" ]] || bad+=("$name")
  done
  if ((${#bad[@]})); then
    log "HEADROOM_NODE_BIN_DIR=${HEADROOM_NODE_BIN_DIR}: missing ${bad[*]}"
    exit 1
  fi
  [[ "$quiet" == 1 ]] && echo "$HEADROOM_NODE_BIN_DIR" || log "using HEADROOM_NODE_BIN_DIR=${HEADROOM_NODE_BIN_DIR}"
  exit 0
fi

cache_root="${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}"
dest="${cache_root}/node-k8s-v${K8S_VERSION}"
bin_dir="${dest}/bin"

# cached NAME: executable, and its stamp names the pinned version.
cached() {
  local name="$1"
  [[ -x "${bin_dir}/${name}" && -f "${bin_dir}/.${name}.version" ]] &&
    [[ "$(cat "${bin_dir}/.${name}.version")" == "${version_of[$name]}" ]]
}
find_missing() {
  missing=()
  for name in "${order[@]}"; do cached "$name" || missing+=("$name"); done
}

find_missing
if ((${#missing[@]} == 0)); then
  [[ "$quiet" == 1 ]] && echo "$bin_dir" || log "cache hit: ${bin_dir} (nothing built)"
  exit 0
fi
if [[ "$mode" == check ]]; then
  log "not cached in ${bin_dir}: ${missing[*]}"
  exit 1
fi

command -v go >/dev/null 2>&1 || {
  log "Go is not installed: install Go >= ${GO_MIN_VERSION}"
  exit 1
}
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
k8s_mod_dir="${cache_root}/k8s-v${K8S_VERSION}/src/kubernetes"
[[ -f "${k8s_mod_dir}/go.mod" ]] || {
  log "no wrapper module in ${k8s_mod_dir}: run tests/controlplane/build-binaries.sh first"
  exit 1
}

mkdir -p "$bin_dir" "${dest}/src"
exec 9>"${dest}/.build.lock"
if ! flock -n 9; then
  log "another build holds ${dest}/.build.lock; waiting for it"
  flock 9
fi
find_missing
if ((${#missing[@]} == 0)); then
  [[ "$quiet" == 1 ]] && echo "$bin_dir" || log "cache hit: ${bin_dir} (built meanwhile)"
  exit 0
fi
log "$(go version); building ${missing[*]} into ${bin_dir}"
total_start=$(date +%s)
summary=()
trap 'rm -rf "${bin_dir}"/.*.tmp.$$' EXIT

# install NAME TMP: check the built file, rename it into place, write its stamp.
install_built() {
  local name="$1" tmp="$2"
  [[ -x "$tmp" ]] || {
    log "FAILED: ${name} was not built"
    exit 1
  }
  mv -f "$tmp" "${bin_dir}/${name}"
  echo "${version_of[$name]}" >"${bin_dir}/.${name}.version.tmp.$$"
  mv -f "${bin_dir}/.${name}.version.tmp.$$" "${bin_dir}/.${name}.version"
}
needs() {
  local n
  for n in "$@"; do
    cached "$n" || return 0
  done
  return 1
}
timed() {
  local label="$1" start
  shift
  start=$(date +%s)
  log "building ${label}"
  "$@"
  summary+=("${label}: $(($(date +%s) - start))s")
  log "built ${label} in $(($(date +%s) - start))s"
}

# --- kubelet, kube-scheduler: the control plane's wrapper module -----------------
k8s_minor="${K8S_VERSION#*.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=${K8S_VERSION%%.*}"
  k8s_ldflags+=" -X ${pkg}.gitMinor=${k8s_minor} -X ${pkg}.gitTreeState=clean"
done
build_k8s() {
  local name="$1" tmp="${bin_dir}/.${1}.tmp.$$"
  (
    cd "$k8s_mod_dir"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/${name}@v${K8S_VERSION}"
    CGO_ENABLED=0 GOFLAGS=-mod=mod nice go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp" "k8s.io/kubernetes/cmd/${name}"
  )
  "$tmp" --version 2>&1 | grep -q "v${K8S_VERSION}" || {
    log "built ${name} does not say v${K8S_VERSION}"
    exit 1
  }
  install_built "$name" "$tmp"
}
for name in kubelet kube-scheduler; do
  needs "$name" && timed "$name" build_k8s "$name"
done

# A wrapper module of our own (GOFLAGS=-mod=mod resolves what `go install m@v` would).
wrapper() {
  local dir="${dest}/src/$1" module="$2" version="$3"
  mkdir -p "$dir"
  if [[ ! -f "${dir}/go.mod" ]] || ! grep -q "require ${module} ${version}\$" "${dir}/go.mod"; then
    printf '// Generated by tests/node/build-node.sh; a throwaway wrapper.\nmodule headroom.local/%s\n\ngo %s\n\nrequire %s %s\n' \
      "$1" "$GO_MIN_VERSION" "$module" "$version" >"${dir}/go.mod"
  fi
  echo "$dir"
}

# --- runc (cgo + libseccomp) ----------------------------------------------------
build_runc() {
  if ! pkg-config --exists libseccomp 2>/dev/null; then
    log "libseccomp-dev is missing: installing it with apt-get"
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo=sudo
    $sudo apt-get install -y -qq --no-install-recommends libseccomp-dev pkg-config >/dev/null ||
      { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends libseccomp-dev pkg-config >/dev/null; }
  fi
  local tmp="${bin_dir}/.runc.tmp.$$" dir
  dir="$(wrapper runc github.com/opencontainers/runc "v${RUNC_VERSION}")"
  (
    cd "$dir"
    CGO_ENABLED=1 GOFLAGS=-mod=mod go get "github.com/opencontainers/runc@v${RUNC_VERSION}"
    CGO_ENABLED=1 GOFLAGS=-mod=mod nice go build -trimpath -buildmode=pie -tags "seccomp urfave_cli_no_docs" \
      -ldflags "-s -w -X main.version=${RUNC_VERSION}" -o "$tmp" github.com/opencontainers/runc
  )
  install_built runc "$tmp"
}
needs runc && timed runc build_runc

# --- containerd, ctr, shim ------------------------------------------------------
build_containerd() {
  local dir tmpdir="${bin_dir}/.containerd.tmp.$$" v="v${CONTAINERD_VERSION}"
  local ld="-s -w -X github.com/containerd/containerd/v2/version.Version=${v}"
  dir="$(wrapper containerd github.com/containerd/containerd/v2 "$v")"
  mkdir -p "$tmpdir"
  (
    cd "$dir"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    go get "github.com/containerd/containerd/v2/cmd/containerd@${v}"
    nice go build -trimpath -tags urfave_cli_no_docs -ldflags "$ld" -o "${tmpdir}/containerd" github.com/containerd/containerd/v2/cmd/containerd
    nice go build -trimpath -tags urfave_cli_no_docs -ldflags "$ld" -o "${tmpdir}/ctr" github.com/containerd/containerd/v2/cmd/ctr
    nice go build -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$ld" -o "${tmpdir}/containerd-shim-runc-v2" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  )
  "${tmpdir}/containerd" --version | grep -q "$v" || {
    log "built containerd does not say ${v}"
    exit 1
  }
  for n in containerd ctr containerd-shim-runc-v2; do install_built "$n" "${tmpdir}/${n}"; done
}
needs containerd ctr containerd-shim-runc-v2 && timed containerd build_containerd

# --- CNI plugins ----------------------------------------------------------------
build_cni() {
  local dir tmpdir="${bin_dir}/.cni.tmp.$$" v="v${CNI_PLUGINS_VERSION}" p
  dir="$(wrapper cni-plugins github.com/containernetworking/plugins "$v")"
  mkdir -p "$tmpdir"
  (
    cd "$dir"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    go get "github.com/containernetworking/plugins/plugins/main/bridge@${v}"
    for p in "${cni_plugins[@]}"; do
      local path=main
      [[ "$p" == host-local ]] && path=ipam
      [[ "$p" == portmap ]] && path=meta
      nice go build -trimpath -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${v}" \
        -o "${tmpdir}/${p}" "github.com/containernetworking/plugins/plugins/${path}/${p}"
    done
  )
  for p in "${cni_plugins[@]}"; do install_built "$p" "${tmpdir}/${p}"; done
}
needs "${cni_plugins[@]}" && timed cni-plugins build_cni

# --- buildkitd, buildctl: go.mod has exclude directives, so `go install m@v`
# refuses; build inside a copy of the module directory instead. ------------------
build_buildkit() {
  local v="v${BUILDKIT_VERSION}" src json copy="${dest}/src/buildkit-${BUILDKIT_VERSION}"
  local tmpdir="${bin_dir}/.buildkit.tmp.$$"
  json="$(cd "${dest}/src" && GOFLAGS= go mod download -json "github.com/moby/buildkit@${v}")"
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  [[ -d "$src" ]] || {
    log "could not download github.com/moby/buildkit@${v}: ${json}"
    exit 1
  }
  if [[ ! -f "${copy}/go.mod" ]]; then
    rm -rf "${copy}.tmp.$$"
    cp -r "$src" "${copy}.tmp.$$"
    chmod -R u+w "${copy}.tmp.$$"
    mv "${copy}.tmp.$$" "$copy"
  fi
  mkdir -p "$tmpdir"
  (
    cd "$copy"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    local ld="-s -w -X github.com/moby/buildkit/version.Version=${v}"
    nice go build -trimpath -ldflags "$ld" -o "${tmpdir}/buildkitd" ./cmd/buildkitd
    nice go build -trimpath -ldflags "$ld" -o "${tmpdir}/buildctl" ./cmd/buildctl
  )
  for n in buildkitd buildctl; do install_built "$n" "${tmpdir}/${n}"; done
}
needs buildkitd buildctl && timed buildkit build_buildkit

summary+=("total: $(($(date +%s) - total_start))s")
{
  echo "# cold build $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(go version)"
  printf '%s\n' "${summary[@]}"
} >>"${dest}/build-times.txt"
log "build times (also in ${dest}/build-times.txt):"
printf '  %s\n' "${summary[@]}" >&2
[[ "$quiet" == 1 ]] && echo "$bin_dir"
exit 0
