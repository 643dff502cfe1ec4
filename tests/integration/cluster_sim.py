"""A simulated cluster on the real API server: Nodes, expert Deployments with their
ReplicaSets and Pods (nodeName set; there is no kubelet), agents writing reports
with recorded figures, and the controller as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headroom.agent.reports import ApiReportStore
from headroom.collection.derive import derive_status
from headroom.collection.figures import DiskFigures, MemoryFigures
from headroom.collection.gpu.figures import GpuSnapshot
from headroom.collection.sample import ContainerCounters, CpuTimes, PodCounters, RawSample
from tests.controlplane.cluster import ApiError, ControlPlane, free_ports
from tests.integration.kube_helpers import admin_client

GiB = 2**30
MiB = 2**20


def ensure_namespace(cp: ControlPlane, name: str) -> None:
    """Create a namespace and its ``default`` ServiceAccount unless they exist.

    kube-controller-manager creates ``default`` too, but asynchronously; pods
    created before it would be refused by the ServiceAccount admission plugin.
    """
    for path, body in (
        ("/api/v1/namespaces", {"metadata": {"name": name}}),
        (f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}}),
    ):
        try:
            cp.api("POST", path, body)
        except ApiError as error:
            if error.status != 409:
                raise


def create_expert(
    cp: ControlPlane,
    namespace: str,
    name: str,
    *,
    replicas: int,
    nodes: list[str],
    cpu: str = "500m",
    memory: str = "1Gi",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A Deployment with a ReplicaSet and ``replicas`` Pods spread over ``nodes``.

    ``limits`` adds container limits, e.g. ``{"nvidia.com/gpu": "1"}``.
    """
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": memory}}
    if limits:
        resources["limits"] = limits
    container = {"name": "model", "image": "example.invalid/expert:1", "resources": resources}
    ensure_namespace(cp, namespace)
    return create_workload(
        cp,
        namespace,
        name,
        {"containers": [container]},
        replicas=replicas,
        nodes=nodes,
        labels=labels,
        annotations=annotations,
    )


def create_workload(
    cp: ControlPlane,
    namespace: str,
    name: str,
    pod_spec: dict[str, Any],
    *,
    replicas: int,
    nodes: list[str],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A Deployment whose template is ``pod_spec``, its ReplicaSet and ``replicas`` Pods
    spread over ``nodes`` (bound there; no kubelet runs them)."""
    match = {"app": name}
    pod_template = {"metadata": {"labels": match}, "spec": pod_spec}
    deployment = cp.api(
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        {
            "metadata": {
                "name": name,
                "labels": labels if labels is not None else {"headroom.dev/expert": "true"},
                "annotations": annotations or {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": match},
                "template": pod_template,
            },
        },
    )
    rs_name = f"{name}-7d9f8c6b5"
    rs = cp.api(
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/replicasets",
        {
            "metadata": {
                "name": rs_name,
                "labels": match,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": deployment["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": match},
                "template": pod_template,
            },
        },
    )
    uids = []
    for index in range(replicas):
        pod = cp.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "metadata": {
                    "name": f"{rs_name}-{index:05d}",
                    "labels": match,
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": rs_name,
                            "uid": rs["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {**pod_spec, "nodeName": nodes[index % len(nodes)]},
            },
        )
        uids.append(pod["metadata"]["uid"])
    return deployment, uids


@dataclass
class SimulatedAgent:
    """One node's agent, writing reports with figures the test chooses."""

    cp: ControlPlane
    node: str
    cores: int = 4
    cpu_percent: float = 25.0
    memory_total: int = 16 * GiB
    memory_available: int = 12 * GiB
    heartbeat_seconds: int = 60
    pods: dict[str, tuple[float, int]] = field(default_factory=dict)  # uid → (cores, bytes)
    containers: dict[str, list[tuple[str, float, int]]] = field(default_factory=dict)
    """uid → each container cgroup below the pod: (short ID, cores, bytes)."""
    gpus: GpuSnapshot | None = None  # what a GPU reader would give, as is
    _t: float = 0.0
    _cpu_seconds: dict[str, float] = field(default_factory=dict)
    _previous: RawSample | None = None
    _store: ApiReportStore | None = None

    def _sample(self) -> RawSample:
        for uid, (cores, _) in self.pods.items():
            self._cpu_seconds[uid] = self._cpu_seconds.get(uid, 0.0) + cores * 10
        for uid, containers in self.containers.items():
            for short, cores, _ in containers:
                key = f"{uid}/{short}"
                self._cpu_seconds[key] = self._cpu_seconds.get(key, 0.0) + cores * 10
        busy = self._t * self.cores * self.cpu_percent / 100
        used = self.memory_total - self.memory_available
        return RawSample(
            monotonic=self._t,
            cpu_times=CpuTimes(busy=busy, total=self._t * self.cores),
            logical_cores=self.cores,
            physical_cores=self.cores,
            memory=MemoryFigures(
                totalBytes=self.memory_total,
                availableBytes=self.memory_available,
                usedBytes=used,
                usedPercent=round(used / self.memory_total * 100, 1),
            ),
            disks=(
                DiskFigures(
                    path="/",
                    totalBytes=100 * GiB,
                    usedBytes=40 * GiB,
                    freeBytes=60 * GiB,
                    usedPercent=40.0,
                ),
            ),
            pods=tuple(
                PodCounters(
                    uid,
                    "Burstable",
                    self._cpu_seconds[uid],
                    memory,
                    tuple(
                        ContainerCounters(short, self._cpu_seconds[f"{uid}/{short}"], used)
                        for short, _, used in self.containers.get(uid, ())
                    ),
                )
                for uid, (_, memory) in self.pods.items()
            ),
            gpus=self.gpus,
        )

    def report(self) -> None:
        """Two readings 10 s apart (simulated), then one write through the agent's adapter."""
        if self._store is None:
            self._store = ApiReportStore(admin_client(self.cp), self.node)
        if self._previous is None:
            self._previous = self._sample()
        self._t += 10
        current = self._sample()
        status = derive_status(
            self._previous,
            current,
            collected_at=datetime.now(UTC),
            agent_version="sim",
            heartbeat_seconds=self.heartbeat_seconds,
        )
        self._previous = current
        self._store.write(status)


class ControllerProcess:
    """``headroom controller`` as a real process against the control plane."""

    def __init__(self, cp: ControlPlane, identity: str, log_dir: Path, **env: str) -> None:
        self.cp = cp
        self.identity = identity
        self.metrics_port = free_ports(1)[0]
        self.log = log_dir / f"controller-{identity}.log"
        self.env = {
            **os.environ,
            "HEADROOM_IDENTITY": identity,
            "HEADROOM_LEASE_NAMESPACE": "headroom-system",
            "HEADROOM_METRICS_PORT": str(self.metrics_port),
            "HEADROOM_HEALTH_PORT": "0",
            "HEADROOM_RECOMPUTE_SECONDS": "1",
            "HEADROOM_LEASE_DURATION_SECONDS": "6",
            "KUBECONFIG": str(cp.kubeconfig),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        ensure_namespace(self.cp, "headroom-system")
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "headroom.cli", "controller", "--log-level", "DEBUG"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (0 when absent) from the /metrics endpoint."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head.split("{")[0] == name:
                    total += float(value)
        return total

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
