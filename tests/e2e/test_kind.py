"""End to end on kind (PK, SC, FR-001..005): build the image, load it into a kind cluster,
``helm install`` the chart, and wait until every node has a ResourceReport with figures
that ``kubectl get rr`` shows.

Runs only where ``docker info`` reaches a daemon and ``kind`` is on PATH; otherwise the
whole module is skipped with one line naming what is missing. See tests/e2e/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.controlplane.binaries import extract_client_binaries

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "headroom"
NAMESPACE = "headroom-system"
RELEASE = "headroom"
IMAGE = "headroom:e2e"

T = TypeVar("T")


def missing_prerequisites() -> list[str]:
    """What this machine lacks for the e2e test, one phrase each (empty: nothing)."""
    missing: list[str] = []
    docker = shutil.which("docker")
    if docker is None:
        missing.append("docker is not on PATH")
    else:
        try:
            info = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if info.returncode != 0:
                lines = (info.stderr or info.stdout).strip().splitlines()
                why = lines[-1] if lines else f"exit code {info.returncode}"
                missing.append(f"`docker info` cannot reach a docker daemon ({why})")
        except subprocess.TimeoutExpired:
            missing.append("`docker info` timed out (no docker daemon answering)")
    if shutil.which("kind") is None:
        missing.append("kind is not on PATH")
    return missing


_MISSING = missing_prerequisites()
if _MISSING:
    pytest.skip(
        "e2e needs a docker daemon and kind: " + "; ".join(_MISSING), allow_module_level=True
    )

pytestmark = pytest.mark.e2e


def run(*cmd: str | Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(str(c) for c in cmd)}` exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result.stdout


@dataclass
class Kind:
    """A kind cluster with its own kubeconfig, and kubectl/helm pointed at it."""

    name: str
    kubeconfig: Path
    kubectl_path: Path
    helm_path: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        return run(self.kubectl_path, *args, timeout=timeout, env=self.env())

    def helm(self, *args: str, timeout: float = 600) -> str:
        return run(self.helm_path, *args, timeout=timeout, env=self.env())

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def json_or_none(self, *args: str) -> Any:
        """Like ``json``, but None when kubectl fails (the object is not there yet)."""
        result = subprocess.run(
            [str(self.kubectl_path), *args, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env(),
            check=False,
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    def diagnostics(self) -> str:
        """What to look at when the cluster does not get there."""
        parts = []
        for args in (
            ("get", "pods", "-A", "-o", "wide"),
            ("-n", NAMESPACE, "describe", "daemonset"),
            ("-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/component=agent", "--tail=30"),
            ("-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/component=controller", "--tail=30"),
            ("get", "events", "-A", "--sort-by=.lastTimestamp"),
        ):
            result = subprocess.run(
                [str(self.kubectl_path), *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=self.env(),
                check=False,
            )
            parts.append(
                f"$ kubectl {' '.join(args)}\n{result.stdout[-3000:]}{result.stderr[-1000:]}"
            )
        return "\n".join(parts)


@pytest.fixture(scope="module")
def kind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kind]:
    """A fresh kind cluster (``HEADROOM_E2E_KEEP=1`` keeps it for a look afterwards)."""
    clients = extract_client_binaries()
    name = f"headroom-e2e-{uuid.uuid4().hex[:6]}"
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    args = ["kind", "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]
    if os.environ.get("HEADROOM_E2E_NODE_IMAGE"):
        args += ["--image", os.environ["HEADROOM_E2E_NODE_IMAGE"]]
    run(*args, "--wait", "180s", timeout=600)
    try:
        yield Kind(name, kubeconfig, clients.kubectl, clients.helm)
    finally:
        if not os.environ.get("HEADROOM_E2E_KEEP"):
            subprocess.run(
                ["kind", "delete", "cluster", "--name", name],
                capture_output=True,
                timeout=300,
                check=False,
            )


@pytest.fixture(scope="module")
def installed(kind: Kind) -> Kind:
    """The image built from this checkout, loaded into kind, and the chart installed."""
    run("docker", "build", "--tag", IMAGE, str(ROOT), timeout=1800)
    run("kind", "load", "docker-image", IMAGE, "--name", kind.name, timeout=600)
    kind.kubectl("create", "namespace", NAMESPACE)
    # The agent's hostPath volumes need the `privileged` Pod Security level (NOTES.txt).
    kind.kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=privileged")
    repository, tag = IMAGE.split(":")
    kind.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        NAMESPACE,
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "agent.intervalSeconds=5",
        "--set",
        "agent.heartbeatSeconds=15",
        "--wait",
        "--timeout",
        "5m",
    )
    return kind


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, kind: Kind) -> T:
    """Poll every 2 s; on time-out fail with the cluster's state."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{kind.diagnostics()}")
        time.sleep(2)


@pytest.mark.requirement("FR-001", "FR-003", "FR-004", "FR-005", "PK-001", "PK-002")
def test_every_node_reports_its_figures(installed: Kind) -> None:
    kind = installed
    nodes = {n["metadata"]["name"] for n in kind.json("get", "nodes")["items"]}
    assert nodes

    def reports_with_figures() -> dict[str, Any] | None:
        reports = {r["metadata"]["name"]: r for r in kind.json("get", "resourcereports")["items"]}
        complete = {
            name: r
            for name, r in reports.items()
            if (r.get("status") or {}).get("cpu") and (r.get("status") or {}).get("memory")
        }
        return complete if set(complete) >= nodes else None

    reports = wait_for(
        reports_with_figures, timeout=180, what="a ResourceReport per node", kind=kind
    )
    for node in nodes:
        status = reports[node]["status"]
        assert reports[node]["spec"]["nodeName"] == node
        assert status["cpu"]["logicalCores"] >= 1  # FR-003
        assert 0 <= status["cpu"]["utilizationPercent"] <= 100  # FR-001
        assert status["memory"]["totalBytes"] > 0  # FR-004
        assert [d["path"] for d in status["disks"]] == ["/"]  # FR-005
        assert "error" not in status["disks"][0], status["disks"][0]

    table = kind.kubectl("get", "rr").splitlines()
    assert table[0].split()[:3] == ["NAME", "CPU%", "CORES"], table
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) >= nodes, table
    for node in nodes:
        assert rows[node][1] != "<none>" and rows[node][2] != "<none>", table


@pytest.mark.requirement("SC-001", "CT-004")
def test_controller_leads_with_the_shipped_rbac(installed: Kind) -> None:
    kind = installed
    lease = wait_for(
        lambda: (
            (kind.json_or_none("-n", NAMESPACE, "get", "lease", f"{RELEASE}-controller") or {})
            .get("spec", {})
            .get("holderIdentity")
        ),
        timeout=120,
        what="the controller's Lease",
        kind=kind,
    )
    pods = kind.json("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=controller")
    assert lease in {p["metadata"]["name"] for p in pods["items"]}
