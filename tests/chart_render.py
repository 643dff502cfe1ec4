"""Render and lint the Helm chart with the pinned helm (from the kubectl wheel), no cluster.

Shared by the chart's unit tests and the integration tests that install it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.binaries import extract_client_binaries

ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = ROOT / "charts" / "headroom"
#: The Kubernetes version the chart is rendered and validated for.
KUBE_VERSION = "1.37.1"

Manifest = dict[str, Any]

_HELM_HOME = Path(tempfile.gettempdir()) / f"headroom-helm-{os.getuid()}"


def helm(
    *args: str, check: bool = False, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm with private cache/config/data directories (no cluster)."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(_HELM_HOME / "cache"),
        "HELM_CONFIG_HOME": str(_HELM_HOME / "config"),
        "HELM_DATA_HOME": str(_HELM_HOME / "data"),
    }
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [str(extract_client_binaries().helm), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=check,
    )


def set_args(values: Mapping[str, str | int | float | bool]) -> list[str]:
    """``--set key=value`` (``--set-string`` for strings) for each value."""
    args: list[str] = []
    for key, value in values.items():
        flag = "--set-string" if isinstance(value, str) else "--set"
        text = str(value).lower() if isinstance(value, bool) else str(value)
        text = text.replace("\\", "\\\\").replace(",", "\\,")  # --set splits on commas
        args += [flag, f"{key}={text}"]
    return args


def template(
    *extra: str, release: str = "headroom", namespace: str = "headroom-system"
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart; the caller checks the return code."""
    return helm(
        "template",
        release,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *extra,
    )


def render(
    *extra: str, release: str = "headroom", namespace: str = "headroom-system"
) -> list[Manifest]:
    """The rendered objects (CRDs excluded, as ``helm template`` does); fails on errors."""
    result = template(*extra, release=release, namespace=namespace)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    """The rendered objects of one kind."""
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    """The single object of ``kind`` whose name ends with ``name_suffix``."""
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(name_suffix)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} *{name_suffix}, found {len(found)}")
    return found[0]


def pod_templates(manifests: Sequence[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(workload name, pod template spec) of every DaemonSet and Deployment."""
    for manifest in manifests:
        if manifest["kind"] in ("DaemonSet", "Deployment"):
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def container_env(workload: Manifest) -> dict[str, Any]:
    """name → value, or the ``valueFrom`` source, of the workload's only container."""
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
