"""``headroom report``: the read side — the cluster's reports and recommendations as tables.

``kubectl get rr`` / ``kubectl get caprec -A`` show the columns; this adds what
a platform team reads next: per-node free room, stale flags, and per expert
the reasons and where more replicas fit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from tabulate import tabulate

from headroom.api import API_VERSION, CapacityRecommendation, ResourceReport
from headroom.kube.client import KubeClient
from headroom.render import format_bytes

__all__ = ["fetch", "render_experts", "render_nodes"]


def fetch(
    client: KubeClient, namespace: str | None
) -> tuple[list[ResourceReport], list[CapacityRecommendation]]:
    """List every ResourceReport, and the CapacityRecommendations of one or all namespaces."""
    reports = client.get(f"/apis/{API_VERSION}/resourcereports").get("items", [])
    scope = f"/namespaces/{namespace}" if namespace else ""
    recs = client.get(f"/apis/{API_VERSION}{scope}/capacityrecommendations").get("items", [])
    return (
        [ResourceReport.model_validate(r) for r in reports],
        [CapacityRecommendation.model_validate(r) for r in recs],
    )


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = int((now - moment).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def render_nodes(reports: Sequence[ResourceReport], now: datetime | None = None) -> str:
    """One row per node: utilisation, free room, pods, freshness."""
    now = now or datetime.now(UTC)
    rows = []
    for report in sorted(reports, key=lambda r: r.metadata.name):
        status = report.status
        if status is None:
            rows.append([report.metadata.name, *["-"] * 7, "no figures yet"])
            continue
        stale = any(c.type == "Stale" and c.status == "True" for c in status.conditions)
        free_cpu = status.cpu.logicalCores * (1 - status.cpu.utilizationPercent / 100)
        rows.append(
            [
                report.metadata.name,
                f"{status.cpu.utilizationPercent:.1f}%",
                f"{free_cpu:.2f}/{status.cpu.logicalCores}",
                f"{status.memory.usedPercent:.1f}%",
                format_bytes(status.memory.availableBytes),
                "-" if status.diskMaxUsedPercent is None else f"{status.diskMaxUsedPercent:.1f}%",
                str(status.podCount),
                _age(status.collectedAt, now),
                "STALE" if stale else "",
            ]
        )
    return tabulate(
        rows,
        headers=[
            "NODE",
            "CPU%",
            "IDLE CORES",
            "MEM%",
            "MEM AVAILABLE",
            "DISK%",
            "PODS",
            "REPORTED",
            "",
        ],
    )


def render_experts(recs: Sequence[CapacityRecommendation]) -> str:
    """One block per expert: current vs recommended, why, and where more fit."""
    blocks = []
    for rec in sorted(recs, key=lambda r: (r.metadata.namespace or "", r.metadata.name)):
        status = rec.status
        name = f"{rec.metadata.namespace}/{rec.metadata.name}"
        if status is None or status.recommended is None or status.current is None:
            blocks.append(f"{name}: no recommendation yet")
            continue
        cur, new = status.current, status.recommended
        table = tabulate(
            [
                ["replicas", cur.replicas, new.replicas, new.replicasReason],
                ["cpu request", cur.cpuRequest or "-", new.cpuRequest, new.cpuReason],
                ["memory request", cur.memoryRequest or "-", new.memoryRequest, new.memoryReason],
            ],
            headers=[name, "CURRENT", "RECOMMENDED", "WHY"],
        )
        fit = status.fit
        if fit is not None:
            where = ", ".join(f"{n.node}={n.replicas}" for n in fit.nodes) or "nowhere"
            table += f"\nfits {fit.additionalReplicas} more now: {where}"
            if fit.excludedNodes:
                table += "\nleft out: " + "; ".join(
                    f"{e.node} ({e.reason})" for e in fit.excludedNodes
                )
        blocks.append(table)
    return "\n\n".join(blocks) if blocks else "no CapacityRecommendations"


def render(
    reports: Sequence[ResourceReport], recs: Sequence[CapacityRecommendation], what: str, fmt: str
) -> str:
    """Nodes, experts or both, as tables or as JSON/YAML lists of the objects."""
    if fmt != "table":
        data: dict[str, Any] = {}
        if what in ("nodes", "all"):
            data["resourceReports"] = [r.to_wire() for r in reports]
        if what in ("experts", "all"):
            data["capacityRecommendations"] = [r.to_wire() for r in recs]
        return (
            json.dumps(data, indent=2) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
        )
    parts = []
    if what in ("nodes", "all"):
        parts.append(render_nodes(reports))
    if what in ("experts", "all"):
        parts.append(render_experts(recs))
    return "\n\n".join(parts)
