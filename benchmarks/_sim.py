"""A simulated cluster's figures and object bodies, shared by ``scale`` and ``recompute``.

Nodes have 32 cores and 128 GiB allocatable; pods ask for 50m–2 cores and
64Mi–4Gi; each uses 20–100 % of its CPU request and 30–90 % of its memory
request, and every report jitters those figures by a few percent — the way a
real node's figures wander between two heartbeats.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults

__all__ = [
    "NODE_CPU",
    "NODE_MEMORY_GIB",
    "PodFigure",
    "SimulatedNodes",
    "container",
    "deployment_body",
    "node_body",
    "pod_body",
    "replicaset_body",
    "report_status",
    "rfc3339",
    "seeded_history",
]

GiB = 2**30
MiB = 2**20
NODE_CPU = 32
NODE_MEMORY_GIB = 128
EXPERT_CPU_M = (250, 500, 1000, 2000)
EXPERT_MEMORY_MI = (512, 1024, 2048, 4096)
OTHER_CPU_M = (50, 100, 200, 250, 500)
OTHER_MEMORY_MI = (64, 128, 256, 512, 1024)


@dataclass
class PodFigure:
    """One pod on a node as its agent reports it."""

    uid: str
    qos: str
    cpu_request: float
    memory_request: int
    cpu: float
    memory: int
    expert: int | None = None
    burst: float = 0.0
    """CPU reported for the pod on top of ``cpu`` but left out of the node's utilisation
    (the latency probe's change must reach one expert only, not every expert's fit)."""
    memory_burst: int = 0
    """Working set reported on top of ``memory``, left out of the node's figures (the
    latency probe: a new peak moves the memory request at once, where a CPU burst
    no longer moves advice that follows the window's load)."""


@dataclass
class SimulatedNodes:
    """Every node's pods (with their usage), kept in UID order as an agent reports them."""

    pods: dict[str, list[PodFigure]] = field(default_factory=dict)

    def add(self, node: str, figure: PodFigure) -> None:
        """Put a pod on a node."""
        pods = self.pods.setdefault(node, [])
        pods.append(figure)
        pods.sort(key=lambda pod: pod.uid)


def usage(rng: random.Random, cpu_m: int, memory_mi: int, expert: int | None) -> PodFigure:
    """A pod's requests and what it uses of them (UID filled in by the caller)."""
    cpu_request = cpu_m / 1000
    memory_request = memory_mi * MiB
    return PodFigure(
        uid="",
        qos="Burstable",
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu=round(cpu_request * rng.uniform(0.2, 1.0), 4),
        memory=int(memory_request * rng.uniform(0.3, 0.9)),
        expert=expert,
    )


def rfc3339(moment: datetime) -> str:
    """A time as the API server writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def report_status(
    pods: list[PodFigure], heartbeat: int, rng: random.Random, now: datetime | None = None
) -> dict[str, Any]:
    """A node's ResourceReport status as its agent writes it (figures jittered a little)."""
    used_cpu = 0.3
    used_memory = 2 * GiB
    entries = []
    for pod in pods:
        cpu = round(pod.cpu * rng.uniform(0.95, 1.05), 4)
        memory = int(pod.memory * rng.uniform(0.98, 1.02))
        used_cpu += cpu
        used_memory += memory
        short = pod.uid.replace("-", "")[:10]
        entries.append(
            {
                "uid": pod.uid,
                "qosClass": pod.qos,
                "cpuCores": round(cpu + pod.burst, 4),
                "memoryBytes": memory + pod.memory_burst,
                # an app and a sidecar, and the sandbox (pause), as the agent lists them
                "containers": [
                    {
                        "id": f"{short}01",
                        "cpuCores": round(cpu * 0.8, 4),
                        "memoryBytes": memory * 3 // 4 + pod.memory_burst,
                    },
                    {
                        "id": f"{short}02",
                        "cpuCores": round(cpu * 0.2, 4),
                        "memoryBytes": memory // 4,
                    },
                    {"id": f"{short}03", "cpuCores": 0.0, "memoryBytes": 1 << 20},
                ],
            }
        )
    total = NODE_MEMORY_GIB * GiB
    used_memory = min(total, used_memory)
    disk_total = 200 * GiB
    disk_used = int(disk_total * 0.41)
    return {
        "collectedAt": rfc3339(now or datetime.now(UTC)),
        "agentVersion": "sim",
        "heartbeatSeconds": heartbeat,
        "cpu": {
            "utilizationPercent": round(min(100.0, 100 * used_cpu / NODE_CPU), 1),
            "physicalCores": NODE_CPU // 2,
            "logicalCores": NODE_CPU,
        },
        "memory": {
            "totalBytes": total,
            "availableBytes": total - used_memory,
            "usedBytes": used_memory,
            "usedPercent": round(100 * used_memory / total, 1),
        },
        "disks": [
            {
                "path": "/",
                "totalBytes": disk_total,
                "usedBytes": disk_used,
                "freeBytes": disk_total - disk_used,
                "usedPercent": 41.0,
            }
        ],
        "diskMaxUsedPercent": 41.0,
        "podCount": len(entries),
        "pods": entries,
        "agentContainer": {
            "cgroupVersion": "v2",
            "cpuLimitCores": 0.1,
            "memoryLimitBytes": 64 * MiB,
        },
        "conditions": [
            {
                "type": "Stale",
                "status": "False",
                "reason": "AgentReporting",
                "message": f"agent heartbeat every {heartbeat}s",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }


def container(cpu_m: int, memory_mi: int) -> dict[str, Any]:
    """One container asking for ``cpu_m`` millicores and ``memory_mi`` MiB."""
    return {
        "name": "main",
        "image": "example.invalid/app:1",
        "resources": {"requests": {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"}},
    }


def node_body(name: str) -> dict[str, Any]:
    """A Node with the simulated capacity, Ready (status included)."""
    capacity = {"cpu": str(NODE_CPU), "memory": f"{NODE_MEMORY_GIB}Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def deployment_body(name: str, replicas: int, cpu_m: int, memory_mi: int) -> dict[str, Any]:
    """An expert Deployment (labelled ``headroom.dev/expert=true``)."""
    match = {"app": name}
    return {
        "metadata": {"name": name, "labels": {"headroom.dev/expert": "true"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": match},
                "spec": {"containers": [container(cpu_m, memory_mi)]},
            },
        },
    }


def replicaset_body(name: str, deployment: dict[str, Any], deployment_uid: str) -> dict[str, Any]:
    """The Deployment's ReplicaSet, owned by it."""
    return {
        "metadata": {
            "name": name,
            "labels": deployment["spec"]["selector"]["matchLabels"],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "controller": True,
                    "name": deployment["metadata"]["name"],
                    "uid": deployment_uid,
                }
            ],
        },
        "spec": {
            "replicas": deployment["spec"]["replicas"],
            "selector": deployment["spec"]["selector"],
            "template": deployment["spec"]["template"],
        },
    }


def pod_body(
    name: str,
    node: str,
    cpu_m: int,
    memory_mi: int,
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod bound to ``node``; ``owner`` is its ReplicaSet's (name, uid)."""
    metadata: dict[str, Any] = {"name": name, "labels": labels or {"app": "filler"}}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "controller": True,
                "name": owner[0],
                "uid": owner[1],
            }
        ]
    return {
        "metadata": metadata,
        "spec": {"nodeName": node, "containers": [container(cpu_m, memory_mi)]},
    }


def seeded_history(
    pods: list[PodFigure], days: float, every: float, now: datetime, rng: random.Random
) -> ExpertHistory:
    """An expert's history as ``days`` of agents reporting every ``every`` seconds would leave it.

    Samples are aggregated per hour (one weighted sample per pod, weight = the
    reports in that hour), which gives the same histogram as the single
    samples would, up to the jitter; figures jitter as the live reports do.
    """
    defaults = SizingDefaults()
    first = now - timedelta(days=days)
    history = ExpertHistory.new(defaults.half_life_seconds, first)
    per_hour = 3600 / every
    at = first
    while at < now:
        for pod in pods:
            cpu = round(pod.cpu * rng.uniform(0.9, 1.1), 4)
            memory = int(pod.memory * rng.uniform(0.97, 1.03))
            history.cpu.add_sample(cpu, per_hour, at)
            history.memory.add_sample(float(memory), per_hour, at)
            history.samples += round(per_hour)
            history.cpu_samples += round(per_hour)
        history.first_sample_at = history.first_sample_at or at
        history.last_sample_at = at
        at += timedelta(hours=1)
    history.prune(now, defaults.window_seconds)
    return history
