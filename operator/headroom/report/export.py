"""Advice a manifest can take: ``headroom report experts -o patch`` and ``-o csv`` (pure).

**Patch.** :func:`deployment_patch` turns one CapacityRecommendation's status
into a partial Deployment — ``apiVersion``, ``kind``, ``metadata`` (name,
namespace) and ``spec.template.spec`` with each container's resources — that
is at once

* a strategic-merge patch: ``kubectl patch deployment NAME -n NS --patch-file F``
  (containers and init containers are merged by ``name``: only the named
  resources change, everything else in the template stays);
* a server-side apply configuration: ``kubectl apply --server-side
  --field-manager=headroom -f F`` (add ``--force-conflicts`` to take over
  fields another manager set, such as a ``kubectl apply`` from Git).

Per container it sets the recommended CPU request, memory request and memory
limit, and a CPU limit only where the current one is below the recommended
request (see :mod:`headroom.recommend.containers` for why). A Deployment that
sizes its pods with pod-level ``spec.resources`` gets those instead. It never
removes anything, and never sets ``spec.replicas``: an HPA owns them where
there is one (:func:`hpa_patch` gives its recommended ``minReplicas`` /
``maxReplicas`` as a partial HorizontalPodAutoscaler, taken by ``kubectl
patch hpa`` and ``kubectl apply --server-side`` alike), and elsewhere the
replica count is a decision a GitOps repository or an operator makes. Both are
built from the status alone, no cluster read.

**CSV.** :func:`csv_rows` gives one row per container and one per pod total
(``container`` empty), current beside recommended, for spreadsheets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from headroom.api.capacityrecommendation import CapacityRecommendationStatus

__all__ = ["CSV_COLUMNS", "csv_rows", "deployment_patch", "hpa_patch", "to_csv"]


def _resources(
    cpu_request: str, memory_request: str, memory_limit: str, cpu_limit: str | None
) -> dict[str, Any]:
    limits = {"memory": memory_limit}
    if cpu_limit is not None:
        limits["cpu"] = cpu_limit
    return {"requests": {"cpu": cpu_request, "memory": memory_request}, "limits": limits}


def deployment_patch(
    namespace: str, name: str, status: CapacityRecommendationStatus
) -> dict[str, Any] | None:
    """The partial Deployment carrying the recommendation; None when there is none yet."""
    pod_spec: dict[str, Any] = {}
    if status.podLevel is not None and status.recommended is not None:
        rec, level = status.recommended, status.podLevel
        pod_spec["resources"] = _resources(
            rec.cpuRequest, rec.memoryRequest, level.memoryLimit, level.cpuLimit
        )
    else:
        containers: list[dict[str, Any]] = []
        sidecars: list[dict[str, Any]] = []
        for container in status.containers or ():
            advice = container.recommended
            if advice is None:
                continue
            entry = {
                "name": container.name,
                "resources": _resources(
                    advice.cpuRequest, advice.memoryRequest, advice.memoryLimit, advice.cpuLimit
                ),
            }
            (sidecars if container.sidecar else containers).append(entry)
        if containers:
            pod_spec["containers"] = containers
        if sidecars:
            pod_spec["initContainers"] = sidecars
    if not pod_spec:
        return None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": pod_spec}},
    }


def hpa_patch(namespace: str, status: CapacityRecommendationStatus) -> dict[str, Any] | None:
    """The partial HorizontalPodAutoscaler with the recommended min/max; None without an HPA."""
    hpa = status.recommended.hpa if status.recommended is not None else None
    if hpa is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": hpa.name, "namespace": namespace},
        "spec": {"minReplicas": hpa.minReplicas, "maxReplicas": hpa.maxReplicas},
    }


CSV_COLUMNS = (
    "namespace",
    "deployment",
    "container",
    "sidecar",
    "replicas",
    "recommendedReplicas",
    "cpuRequest",
    "recommendedCpuRequest",
    "memoryRequest",
    "recommendedMemoryRequest",
    "memoryLimit",
    "recommendedMemoryLimit",
    "cpuLimit",
    "recommendedCpuLimit",
    "oomKills",
    "lastOomKill",
    "cpuReason",
    "memoryReason",
)


def csv_rows(
    namespace: str, name: str, status: CapacityRecommendationStatus
) -> list[dict[str, str]]:
    """The pod total's row (``container`` empty), then one per container."""
    current, rec = status.current, status.recommended
    level = status.podLevel
    total = {
        "namespace": namespace,
        "deployment": name,
        "container": "",
        "sidecar": "",
        "replicas": "" if current is None else str(current.replicas),
        "recommendedReplicas": "" if rec is None else str(rec.replicas),
        "cpuRequest": (current.cpuRequest if current else None) or "",
        "recommendedCpuRequest": rec.cpuRequest if rec else "",
        "memoryRequest": (current.memoryRequest if current else None) or "",
        "recommendedMemoryRequest": rec.memoryRequest if rec else "",
        "memoryLimit": (level.current.memoryLimit if level else None) or "",
        "recommendedMemoryLimit": level.memoryLimit if level else "",
        "cpuLimit": (level.current.cpuLimit if level else None) or "",
        "recommendedCpuLimit": (level.cpuLimit if level else None) or "",
        "oomKills": "",
        "lastOomKill": "",
        "cpuReason": rec.cpuReason if rec else "",
        "memoryReason": rec.memoryReason if rec else "",
    }
    rows = [total]
    for container in status.containers or ():
        now, advice, kills = container.current, container.recommended, container.oomKills
        rows.append(
            {
                **{key: "" for key in CSV_COLUMNS},
                "namespace": namespace,
                "deployment": name,
                "container": container.name,
                "sidecar": "true" if container.sidecar else "false",
                "cpuRequest": (now.cpuRequest if now else None) or "",
                "recommendedCpuRequest": advice.cpuRequest if advice else "",
                "memoryRequest": (now.memoryRequest if now else None) or "",
                "recommendedMemoryRequest": advice.memoryRequest if advice else "",
                "memoryLimit": (now.memoryLimit if now else None) or "",
                "recommendedMemoryLimit": advice.memoryLimit if advice else "",
                "cpuLimit": (now.cpuLimit if now else None) or "",
                "recommendedCpuLimit": (advice.cpuLimit if advice else None) or "",
                "oomKills": str(kills.count) if kills else "0",
                "lastOomKill": kills.lastKilledAt.isoformat() if kills else "",
                "cpuReason": advice.cpuReason if advice else "",
                "memoryReason": advice.memoryReason if advice else "",
            }
        )
    return rows


def to_csv(rows: Iterable[dict[str, str]], columns: Sequence[str] = CSV_COLUMNS) -> str:
    """RFC 4180 text with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
