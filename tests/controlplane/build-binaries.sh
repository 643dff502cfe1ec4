#!/usr/bin/env bash
# Build (or find) the binaries of the local test control plane:
#   etcd, kube-apiserver, kube-controller-manager
# at the versions pinned in tests/controlplane/versions.env.
#
# - If KUBEBUILDER_ASSETS is set, the binaries are taken from that directory
#   and nothing is built (kube-controller-manager is optional there).
# - Otherwise they are built with Go from the Go module proxy into a cache
#   directory outside the repository:
#     ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/k8s-v<K8S_VERSION>/bin
#   A second run finds them there (each exists and answers --version with the
#   pinned version) and builds nothing.
#
# Each binary is built to a temporary name and renamed into place, so an
# interrupted build never looks like a cache hit.
#
# Usage: build-binaries.sh [--check] [--print-bin-dir]
#   --check          exit 0 if all binaries are present, 1 if not; build nothing
#   --print-bin-dir  print only the bin directory (after finding/building)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "${script_dir}/versions.env"

mode=build
quiet=0
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --print-bin-dir) quiet=1 ;;
    -h | --help)
      sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-binaries.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "build-binaries: $*" >&2; }

# binary_ok PATH EXPECTED_SUBSTRING: the file is executable and its --version
# output names the expected version.
binary_ok() {
  local path="$1" want="$2" out
  [[ -x "$path" ]] || return 1
  out="$(timeout 30 "$path" --version 2>&1)" || return 1
  [[ -z "$want" || "$out" == *"$want"* ]]
}

# --- KUBEBUILDER_ASSETS: use what is there, build nothing -------------------
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for name in etcd kube-apiserver; do
    if ! binary_ok "${KUBEBUILDER_ASSETS}/${name}" ""; then
      log "KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS}: ${name} missing or not runnable"
      exit 1
    fi
  done
  if ! binary_ok "${KUBEBUILDER_ASSETS}/kube-controller-manager" ""; then
    log "note: no kube-controller-manager in KUBEBUILDER_ASSETS (no garbage collection)"
  fi
  [[ "$quiet" == 1 ]] && echo "${KUBEBUILDER_ASSETS}" || log "using KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS}"
  exit 0
fi

cache_root="${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}"
dest="${cache_root}/k8s-v${K8S_VERSION}"
bin_dir="${dest}/bin"

declare -A want=(
  [etcd]="etcd Version: ${ETCD_VERSION}"
  [kube-apiserver]="v${K8S_VERSION}"
  [kube-controller-manager]="v${K8S_VERSION}"
)
order=(etcd kube-apiserver kube-controller-manager)

missing=()
for name in "${order[@]}"; do
  binary_ok "${bin_dir}/${name}" "${want[$name]}" || missing+=("$name")
done

if [[ "$mode" == check ]]; then
  if ((${#missing[@]} == 0)); then
    [[ "$quiet" == 1 ]] && echo "$bin_dir" || log "cache hit: ${bin_dir}"
    exit 0
  fi
  log "not cached in ${bin_dir}: ${missing[*]}"
  exit 1
fi

if ((${#missing[@]} == 0)); then
  [[ "$quiet" == 1 ]] && echo "$bin_dir" || log "cache hit: ${bin_dir} (nothing built)"
  exit 0
fi

# --- cold build --------------------------------------------------------------
command -v go >/dev/null 2>&1 || {
  log "Go is not installed: install Go >= ${GO_MIN_VERSION} or set KUBEBUILDER_ASSETS"
  exit 1
}
# The machine's own Go (1.26.x) builds both; never fetch another toolchain
# unless the caller asked for one explicitly.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"

mkdir -p "$bin_dir" "${dest}/src"
# One builder at a time (e.g. a manual run and a pytest fixture).
exec 9>"${dest}/.build.lock"
if ! flock -n 9; then
  log "another build holds ${dest}/.build.lock; waiting for it"
  flock 9
fi
# Re-check after the lock: the other builder may have finished the job.
missing=()
for name in "${order[@]}"; do
  binary_ok "${bin_dir}/${name}" "${want[$name]}" || missing+=("$name")
done
if ((${#missing[@]} == 0)); then
  [[ "$quiet" == 1 ]] && echo "$bin_dir" || log "cache hit: ${bin_dir} (built meanwhile)"
  exit 0
fi

log "$(go version); building ${missing[*]} into ${bin_dir}"
total_start=$(date +%s)

# Wrapper module for kubernetes. k8s.io/kubernetes requires its staging modules
# at v0.0.0 and replaces them with ./staging paths; replace directives of a
# dependency are ignored, so pin every one of them to the published version.
k8s_mod_dir="${dest}/src/kubernetes"
mkdir -p "$k8s_mod_dir"
k8s_gomod_json="$(cd "$k8s_mod_dir" && GOFLAGS= go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}")"
k8s_gomod="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$k8s_gomod_json")"
[[ -f "$k8s_gomod" ]] || {
  log "could not download k8s.io/kubernetes@v${K8S_VERSION}: ${k8s_gomod_json}"
  exit 1
}
staging_modules="$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$k8s_gomod" | sort -u)"
[[ -n "$staging_modules" ]] || {
  log "found no staging replace directives in ${k8s_gomod}"
  exit 1
}
{
  echo "// Generated by tests/controlplane/build-binaries.sh; a throwaway wrapper."
  echo "module headroom.local/k8s-binaries"
  echo
  echo "go ${GO_MIN_VERSION}"
  echo
  echo "godebug default=go1.26"
  echo
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  echo
  echo "replace ("
  while read -r m; do
    echo "	${m} => ${m} v${K8S_STAGING_VERSION}"
  done <<<"$staging_modules"
  echo ")"
} >"${k8s_mod_dir}/go.mod"

# Wrapper module for etcd (separate, so its dependency versions and those of
# kubernetes never get mixed by minimal version selection). etcd's own go.mod
# replaces its sibling modules with ../ paths; pin those too.
etcd_mod_dir="${dest}/src/etcd"
mkdir -p "$etcd_mod_dir"
cat >"${etcd_mod_dir}/go.mod" <<EOF
// Generated by tests/controlplane/build-binaries.sh; a throwaway wrapper.
module headroom.local/etcd-binary

go ${GO_MIN_VERSION}

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v${ETCD_VERSION}
)
EOF

k8s_minor="${K8S_VERSION#*.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X ${pkg}.gitVersion=v${K8S_VERSION}"
  k8s_ldflags+=" -X ${pkg}.gitMajor=${K8S_VERSION%%.*}"
  k8s_ldflags+=" -X ${pkg}.gitMinor=${k8s_minor}"
  k8s_ldflags+=" -X ${pkg}.gitTreeState=clean"
done
etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v${ETCD_VERSION}"

times_file="${dest}/build-times.txt"
summary=()

build_one() {
  local name="$1" mod_dir="$2" pkg="$3" ldflags="$4"
  local tmp="${bin_dir}/.${name}.tmp.$$" start end
  start=$(date +%s)
  log "building ${name} (${pkg})"
  (
    cd "$mod_dir"
    go get "${pkg}"
    go build -trimpath -ldflags "$ldflags" -o "$tmp" "${pkg%@*}"
  ) || {
    rm -f "$tmp"
    log "FAILED to build ${name}"
    exit 1
  }
  if ! binary_ok "$tmp" "${want[$name]}"; then
    log "built ${name} does not answer --version with '${want[$name]}':"
    "$tmp" --version >&2 || true
    rm -f "$tmp"
    exit 1
  fi
  mv -f "$tmp" "${bin_dir}/${name}"
  end=$(date +%s)
  summary+=("${name}: $((end - start))s")
  log "built ${name} in $((end - start))s"
}

trap 'rm -f "${bin_dir}"/.*.tmp.$$' EXIT

for name in "${missing[@]}"; do
  case "$name" in
    etcd)
      build_one etcd "$etcd_mod_dir" "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" "$etcd_ldflags"
      ;;
    kube-apiserver | kube-controller-manager)
      build_one "$name" "$k8s_mod_dir" "k8s.io/kubernetes/cmd/${name}@v${K8S_VERSION}" "$k8s_ldflags"
      ;;
  esac
done

total_end=$(date +%s)
summary+=("total: $((total_end - total_start))s")
{
  echo "# cold build $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(go version)"
  printf '%s\n' "${summary[@]}"
} >>"$times_file"
log "cold build times (also in ${times_file}):"
printf '  %s\n' "${summary[@]}" >&2
[[ "$quiet" == 1 ]] && echo "$bin_dir"
exit 0
