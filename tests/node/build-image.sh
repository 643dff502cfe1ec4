#!/usr/bin/env bash
# Build the Headroom image from the repository's Dockerfile with buildkit, without a
# Docker engine and without a registry, plus the images the node tier runs beside it.
#
# The Dockerfile's two base images are replaced by local OCI layouts passed to buildkit
# as named build contexts (--oci-layout NAME=DIR --opt context:IMAGE=oci-layout://...):
#   python:3.11-slim-bookworm  <- Debian ${DEBIAN_SUITE} minbase + python3 + ca-certificates
#                                 (debootstrap), trusting this machine's CA bundle
#                                 (SSL_CERT_FILE), so `uv sync` in the build reaches PyPI
#                                 through the same TLS interception as the host.
#   ghcr.io/astral-sh/uv:X     <- /uv and /uvx from the uv wheel on PyPI (sha256 pinned)
# and the pause image is built from k8s.io/kubernetes build/pause/linux/pause.c (gcc -static).
#
# Everything lands in ${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}/node-images:
#   bases/<name>/        OCI layouts (built once, found warm: each has a .digest file)
#   buildkit/            buildkitd's state: the layer cache that makes a rebuild quick
#   headroom.tar         the built image (OCI archive), for `ctr -n k8s.io images import`
#   headroom.digest      its manifest digest
# The Python base also serves as the workload image of the tier's expert pods.
#
# Needs the node binaries (tests/node/build-node.sh: buildkitd, buildctl, runc), root,
# debootstrap (installed with apt-get when missing) and gcc.
#
# Usage: build-image.sh [--bases-only] [--check-image]
#   --bases-only   build (or find) the base images and the pause image only
#   --check-image  after the build, run the image with runc: `headroom --help` as uid 65532
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
# shellcheck source=../controlplane/versions.env
. "${repo_root}/tests/controlplane/versions.env"
# shellcheck source=versions.env
. "${script_dir}/versions.env"

bases_only=0
check_image=0
for arg in "$@"; do
  case "$arg" in
    --bases-only) bases_only=1 ;;
    --check-image) check_image=1 ;;
    -h | --help)
      sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-image.sh: unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

log() { echo "build-image: $*" >&2; }
[[ "$(id -u)" == 0 ]] || {
  log "needs root (debootstrap, buildkitd with runc)"
  exit 1
}

cache_root="${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom}"
out="${cache_root}/node-images"
bases="${out}/bases"
mkdir -p "$bases"
exec 8>"${out}/.build.lock"
flock 8

ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -f "$ca_bundle" ]] || {
  log "no CA bundle at ${ca_bundle}"
  exit 1
}
ca_key="$(sha256sum "$ca_bundle" | cut -c1-12)"
python_base="${bases}/python-${DEBIAN_SUITE}-ca${ca_key}"
uv_base="${bases}/uv-${UV_VERSION}"
pause_base="${bases}/pause-${PAUSE_TAG}"

PYTHON_IMAGE_NAME="headroom.local/python:3.11-${DEBIAN_SUITE}"
UV_IMAGE_NAME="headroom.local/uv:${UV_VERSION}"
PAUSE_IMAGE_NAME="headroom.local/pause:${PAUSE_TAG}"
HEADROOM_IMAGE_NAME="headroom.local/headroom:node-test"

work="$(mktemp -d "${out}/.work.XXXXXX")"
buildkitd_pid=""
remove_buildkit_cgroups=""
cleanup() {
  if [[ -n "$buildkitd_pid" ]] && kill -0 "$buildkitd_pid" 2>/dev/null; then
    kill -TERM "$buildkitd_pid" 2>/dev/null || true
    wait "$buildkitd_pid" 2>/dev/null || true
  fi
  # debootstrap mounts /proc etc. while it runs; never leave one behind.
  { grep -o " ${work}[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$work"
  # buildkitd's runc puts each build step in a cgroup under <hierarchy>/buildkit.
  if [[ -n "$remove_buildkit_cgroups" ]]; then
    for d in /sys/fs/cgroup/*/buildkit; do
      [[ -d "$d" ]] && rmdir "$d"/* "$d" 2>/dev/null || true
    done
  fi
}
trap cleanup EXIT

# layout_done DIR: the layout is complete (its digest file is written last).
layout_done() { [[ -f "$1/.digest" && -f "$1/index.json" ]]; }
# finish_layout TMPDIR DEST DIGEST: atomically put a finished layout in place.
finish_layout() {
  echo "$3" >"$1/.digest"
  rm -rf "$2"
  mv "$1" "$2"
}

oci() { python3 "${script_dir}/oci_layout.py" "$@"; }
layer_of() { # layer_of DIR TAR
  tar -C "$1" --numeric-owner --xattrs -cf "$2" .
}

# --- python:3.11-slim-bookworm stand-in ---------------------------------------------
if ! layout_done "$python_base"; then
  start=$(date +%s)
  command -v debootstrap >/dev/null || {
    log "installing debootstrap with apt-get"
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  root="${work}/python-root"
  log "debootstrap ${DEBIAN_SUITE} (minbase + python3 + ca-certificates)"
  nice debootstrap --variant=minbase --include=python3,ca-certificates "$DEBIAN_SUITE" "$root" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"${work}/debootstrap.log" 2>&1 || {
    tail -20 "${work}/debootstrap.log" >&2
    exit 1
  }
  # Trust what the host trusts (a TLS-intercepting egress proxy's CA included).
  cp "$ca_bundle" "${root}/etc/ssl/certs/ca-certificates.crt"
  # What a container runtime provides, and what no image should carry.
  rm -rf "${root}/var/cache/apt/archives/"*.deb "${root}/var/lib/apt/lists/"* "${root}/dev/"* \
    "${root}/proc/"* "${root}/sys/"* "${root}/tmp/"* "${root}/var/log/"*
  : >"${root}/etc/resolv.conf"
  : >"${root}/etc/hostname"
  layer_of "$root" "${work}/python-layer.tar"
  rm -rf "$root"
  digest="$(oci "${work}/python-layout" --name "$PYTHON_IMAGE_NAME" --layer "${work}/python-layer.tar" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --cmd '["python3"]')"
  finish_layout "${work}/python-layout" "$python_base" "$digest"
  log "python base ${digest} in $(($(date +%s) - start))s"
fi

# --- ghcr.io/astral-sh/uv stand-in ----------------------------------------------------
if ! layout_done "$uv_base"; then
  start=$(date +%s)
  wheels="${work}/uv-wheel"
  log "downloading the uv ${UV_VERSION} wheel from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "uv==${UV_VERSION}"
  wheel="$(ls "$wheels"/uv-*.whl)"
  wheel_sha="$(sha256sum "$wheel" | cut -d' ' -f1)"
  log "uv wheel $(basename "$wheel") sha256 ${wheel_sha}"
  if [[ "$(uname -m)" == x86_64 && "$wheel_sha" != "$UV_WHEEL_SHA256_AMD64" ]]; then
    log "the uv wheel's sha256 is not UV_WHEEL_SHA256_AMD64 of tests/node/versions.env"
    exit 1
  fi
  root="${work}/uv-root"
  mkdir -p "$root"
  python3 - "$wheel" "$root" <<'PY'
import sys, zipfile, pathlib
wheel, root = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if "/scripts/" in name and name.rsplit("/", 1)[1] in ("uv", "uvx"):
            target = root / name.rsplit("/", 1)[1]
            target.write_bytes(zf.read(name))
            target.chmod(0o755)
PY
  [[ -x "${root}/uv" ]] || {
    log "no uv binary in $(basename "$wheel")"
    exit 1
  }
  layer_of "$root" "${work}/uv-layer.tar"
  digest="$(oci "${work}/uv-layout" --name "$UV_IMAGE_NAME" --layer "${work}/uv-layer.tar" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --entrypoint '["/uv"]')"
  finish_layout "${work}/uv-layout" "$uv_base" "$digest"
  log "uv base ${digest} in $(($(date +%s) - start))s"
fi

# --- pause ----------------------------------------------------------------------------
if ! layout_done "$pause_base"; then
  k8s_dir="$(cd "${cache_root}/k8s-v${K8S_VERSION}/src/kubernetes" 2>/dev/null &&
    GOFLAGS= go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || true
  [[ -f "${k8s_dir}/build/pause/linux/pause.c" ]] || {
    log "no build/pause/linux/pause.c in k8s.io/kubernetes@v${K8S_VERSION} (${k8s_dir})"
    exit 1
  }
  root="${work}/pause-root"
  mkdir -p "$root"
  gcc -Os -static -Wall -Werror -DVERSION="v${PAUSE_TAG}-headroom" -o "${root}/pause" "${k8s_dir}/build/pause/linux/pause.c"
  strip "${root}/pause"
  layer_of "$root" "${work}/pause-layer.tar"
  digest="$(oci "${work}/pause-layout" --name "$PAUSE_IMAGE_NAME" --layer "${work}/pause-layer.tar" \
    --entrypoint '["/pause"]' --user 65535:65535)"
  finish_layout "${work}/pause-layout" "$pause_base" "$digest"
  log "pause image ${digest}"
fi

cat >"${out}/bases.env" <<EOF
PYTHON_LAYOUT=${python_base}
PYTHON_IMAGE_NAME=${PYTHON_IMAGE_NAME}
UV_LAYOUT=${uv_base}
PAUSE_LAYOUT=${pause_base}
PAUSE_IMAGE_NAME=${PAUSE_IMAGE_NAME}
HEADROOM_IMAGE_NAME=${HEADROOM_IMAGE_NAME}
HEADROOM_IMAGE_TAR=${out}/headroom.tar
EOF
((bases_only)) && exit 0
bin_dir="$(bash "${script_dir}/build-node.sh" --check --print-bin-dir)" || {
  log "node binaries missing: run tests/node/build-node.sh first"
  exit 1
}

# --- the image, from the Dockerfile -----------------------------------------------------
start=$(date +%s)
run_dir="${work}/run"
mkdir -p "$run_dir" "${out}/buildkit"
export PATH="${bin_dir}:${PATH}"
# Remove buildkit's cgroups at the end unless someone else's buildkit made them.
compgen -G "/sys/fs/cgroup/*/buildkit" >/dev/null || remove_buildkit_cgroups=yes
nice "${bin_dir}/buildkitd" --root "${out}/buildkit" --addr "unix://${run_dir}/buildkitd.sock" \
  --oci-worker=true --containerd-worker=false --oci-worker-binary="${bin_dir}/runc" \
  --oci-worker-net=host --oci-worker-gc-keepstorage=4096 >"${work}/buildkitd.log" 2>&1 &
buildkitd_pid=$!
for _ in $(seq 1 100); do
  "${bin_dir}/buildctl" --addr "unix://${run_dir}/buildkitd.sock" debug workers >/dev/null 2>&1 && break
  kill -0 "$buildkitd_pid" 2>/dev/null || {
    tail -20 "${work}/buildkitd.log" >&2
    exit 1
  }
  sleep 0.2
done
tmp_tar="${out}/.headroom.tar.tmp.$$"
log "buildkit: building ${repo_root}/Dockerfile"
"${bin_dir}/buildctl" --addr "unix://${run_dir}/buildkitd.sock" build \
  --frontend dockerfile.v0 --local "context=${repo_root}" --local "dockerfile=${repo_root}" \
  --oci-layout "python=${python_base}" --oci-layout "uv=${uv_base}" \
  --opt "context:python:3.11-slim-bookworm=oci-layout://python@$(cat "${python_base}/.digest")" \
  --opt "context:ghcr.io/astral-sh/uv:${UV_VERSION}=oci-layout://uv@$(cat "${uv_base}/.digest")" \
  --opt platform="linux/$(python3 -c 'import os; m=os.uname().machine; print({"x86_64":"amd64","aarch64":"arm64"}.get(m,m))')" \
  --output "type=oci,dest=${tmp_tar},name=${HEADROOM_IMAGE_NAME}" \
  --metadata-file "${work}/metadata.json" --progress plain 2>"${work}/build.log" || {
  tail -40 "${work}/build.log" >&2
  exit 1
}
kill -TERM "$buildkitd_pid"
wait "$buildkitd_pid" 2>/dev/null || true
buildkitd_pid=""
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' \
  "${work}/metadata.json" >"${out}/.headroom.digest.tmp.$$"
mv -f "$tmp_tar" "${out}/headroom.tar"
mv -f "${out}/.headroom.digest.tmp.$$" "${out}/headroom.digest"
log "built ${HEADROOM_IMAGE_NAME} $(cat "${out}/headroom.digest") in $(($(date +%s) - start))s"
# Size: the archive (uncompressed config + gzip layers) and each layer.
python3 - "${out}/headroom.tar" <<'PY' >&2
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    def blob(d):
        return tar.extractfile("blobs/sha256/" + d.split(":")[1])
    index = json.load(tar.extractfile("index.json"))
    manifest = json.load(blob(index["manifests"][0]["digest"]))
    sizes = [layer["size"] for layer in manifest["layers"]]
    print(f"build-image: image size (compressed layers): {sum(sizes) / 1e6:.1f} MB "
          f"in {len(sizes)} layers: " + ", ".join(f"{s / 1e6:.1f}" for s in sizes))
PY

if ((check_image)); then
  python3 "${script_dir}/check_image.py" "${out}/headroom.tar" "${bin_dir}/runc"
fi
