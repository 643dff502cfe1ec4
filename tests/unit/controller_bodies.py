"""Kubernetes object bodies as the watch delivers them, for controller unit tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

MiB = 2**20
GiB = 2**30


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    unschedulable: bool = False,
    conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory},
            "conditions": conditions or [{"type": "Ready", "status": "True"}],
        },
    }


def deployment(
    name: str,
    namespace: str = "team",
    *,
    replicas: int = 2,
    cpu: str = "500m",
    memory: str = "1Gi",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "generation": 1,
            "labels": {"headroom.dev/expert": "true"} if labels is None else labels,
            "annotations": annotations or {},
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "model", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
                    ]
                }
            },
        },
    }


def replicaset(name: str, owner: str, namespace: str = "team") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{"kind": "Deployment", "name": owner}],
        }
    }


def pod(
    uid: str,
    rs: str | None,
    node_name: str | None,
    namespace: str = "team",
    *,
    cpu: str = "500m",
    memory: str = "1Gi",
    phase: str = "Running",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"pod-{uid}",
            "namespace": namespace,
            "uid": uid,
            "ownerReferences": [{"kind": "ReplicaSet", "name": rs}] if rs else [],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
            ],
        },
        "status": {"phase": phase},
    }


def report(
    name: str,
    at: datetime,
    pods: dict[str, tuple[float | None, int]],
    *,
    cores: int = 4,
    cpu_percent: float = 25.0,
    available: int = 12 * GiB,
    heartbeat: int = 60,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": name},
        "status": {
            "collectedAt": at.isoformat(),
            "heartbeatSeconds": heartbeat,
            "cpu": {"utilizationPercent": cpu_percent, "logicalCores": cores},
            "memory": {
                "availableBytes": available,
                "totalBytes": 16 * GiB,
                "usedBytes": 0,
                "usedPercent": 0,
            },
            "pods": [
                {
                    "uid": uid,
                    "qosClass": "Burstable",
                    "memoryBytes": memory,
                    **({"cpuCores": cpu} if cpu is not None else {}),
                }
                for uid, (cpu, memory) in pods.items()
            ],
        },
    }
