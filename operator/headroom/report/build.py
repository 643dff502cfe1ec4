"""Fold Nodes, Pods, ResourceReports and CapacityRecommendations into a :class:`ClusterReport`.

Pure: API objects (plain JSON dicts, as listed) in, the view model out; no
Kubernetes client. Objects are added one at a time, as the pages of a list
arrive, and dropped: a 5,000-node cluster's 150,000 Pods become one running
total per node, so memory grows with the nodes, not the pods.

**Requested** is what the scheduler counts: the requests of every pod bound
to the node (``spec.nodeName``) that is neither Succeeded nor Failed, summed
per pod as the scheduler does (init containers, sidecars, pod-level
``spec.resources``, overhead —
:func:`~headroom.recommend.quantities.pod_requests`). Nothing else holds this
figure (reports carry usage, recommendations per-expert sums), so the Pods
are read. **Used** is the agent's measure (logical cores × utilisation, used
memory). **Free** and the notes (stale, cordoned, not Ready, pressure) use
the controller's own rules (:func:`~headroom.recommend.fit.free_room`,
:func:`~headroom.recommend.fit.exclusion_reason`), so the report shows the
room fit counts with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from headroom.api import CapacityRecommendation, ResourceReport, ResourceReportStatus
from headroom.recommend.fit import exclusion_reason, free_room
from headroom.recommend.gpu import gpu_requests, node_gpus
from headroom.recommend.quantities import parse_cpu_cores, parse_memory_bytes, pod_requests
from headroom.report.view import (
    ClusterReport,
    DiskView,
    ExpertView,
    GpuNodeView,
    NodeView,
    Summary,
)

__all__ = ["STALE_AFTER_HEARTBEATS", "ReportBuilder"]

STALE_AFTER_HEARTBEATS = 3
"""CT-002: a report without a heartbeat for this many periods is stale (the controller's rule)."""

_PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure")
_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(slots=True)
class _Node:
    allocatable_cpu: float
    allocatable_memory: int
    ready: bool
    schedulable: bool
    pressures: tuple[str, ...]
    problems: list[str]
    gpus: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Requests:
    cpu: float = 0.0
    memory: int = 0
    pods: int = 0
    gpus: dict[str, int] = field(default_factory=dict)


@dataclass
class ReportBuilder:
    """Collects one read of the cluster; :meth:`build` turns it into the view.

    With ``listed_nodes_only`` (a node selector was given) only nodes added
    with :meth:`add_node` are shown; otherwise a report whose Node is gone is
    shown too, with the note ``no Node``.
    """

    now: datetime
    listed_nodes_only: bool = False
    node_selector: str | None = None
    namespace: str | None = None
    skipped: list[str] = field(default_factory=list)
    _nodes: dict[str, _Node] = field(default_factory=dict)
    _requests: dict[str, _Requests] = field(default_factory=dict)
    _reports: dict[str, ResourceReport] = field(default_factory=dict)
    _experts: list[ExpertView] = field(default_factory=list)
    _request_cache: dict[str, tuple[float, int]] = field(default_factory=dict)

    def add_node(self, body: Mapping[str, Any]) -> None:
        """A Node object: allocatable, Ready, cordoned, pressure conditions."""
        name = str(body["metadata"]["name"])
        status = body.get("status") or {}
        allocatable = status.get("allocatable") or {}
        problems = []
        try:
            cpu = parse_cpu_cores(allocatable.get("cpu", 0))
            memory = parse_memory_bytes(allocatable.get("memory", 0))
        except ValueError as error:
            cpu, memory = 0.0, 0
            problems.append(f"bad allocatable: {error}")
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        self._nodes[name] = _Node(
            allocatable_cpu=cpu,
            allocatable_memory=memory,
            ready="Ready" in true,
            schedulable=not (body.get("spec") or {}).get("unschedulable", False),
            pressures=tuple(p for p in _PRESSURES if p in true),
            problems=problems,
        )
        gpus = node_gpus(None, allocatable)
        if gpus is not None:
            self._nodes[name].gpus = dict(gpus.allocatable)

    def add_pod(self, body: Mapping[str, Any]) -> None:
        """A Pod: its requests count on its node unless it has finished or is not bound."""
        spec = body.get("spec") or {}
        node = spec.get("nodeName")
        if not node or (body.get("status") or {}).get("phase") in _TERMINAL_PHASES:
            return
        if self.listed_nodes_only and node not in self._nodes:
            return
        try:
            cpu, memory = self._pod_requests(spec)
        except ValueError as error:
            meta = body.get("metadata") or {}
            self.skipped.append(f"pod {meta.get('namespace')}/{meta.get('name')}: {error}")
            return
        total = self._requests.get(node)
        if total is None:
            total = self._requests[node] = _Requests()
        total.cpu += cpu
        total.memory += memory
        total.pods += 1
        for resource, count in self._pod_gpus(spec).items():
            total.gpus[resource] = total.gpus.get(resource, 0) + count

    def _pod_gpus(self, spec: Mapping[str, Any]) -> dict[str, int]:
        try:
            return gpu_requests(spec)
        except ValueError:
            return {}

    def _pod_requests(self, spec: Mapping[str, Any]) -> tuple[float, int]:
        # Pods of one Deployment share their requests: parse each distinct shape once.
        key = repr(
            (
                [(c.get("resources"), c.get("restartPolicy")) for c in spec.get("containers", [])],
                [
                    (c.get("resources"), c.get("restartPolicy"))
                    for c in spec.get("initContainers") or []
                ],
                spec.get("overhead"),
                spec.get("resources"),
            )
        )
        found = self._request_cache.get(key)
        if found is None:
            cpu, memory = pod_requests(spec)
            found = self._request_cache[key] = (cpu or 0.0, memory or 0)
        return found

    def add_report(self, body: Mapping[str, Any]) -> None:
        """A ResourceReport (validated here; a malformed one is listed in ``skipped``)."""
        status = body.get("status")
        if isinstance(status, Mapping) and "pods" in status:
            # Per-pod usage is not shown: not validated, not kept (time and memory).
            body = {**body, "status": {k: v for k, v in status.items() if k != "pods"}}
        try:
            report = ResourceReport.model_validate(body)
        except ValidationError as error:
            name = (body.get("metadata") or {}).get("name")
            self.skipped.append(f"ResourceReport {name}: {error.error_count()} invalid fields")
            return
        self._reports[report.metadata.name] = report

    def add_recommendation(self, body: Mapping[str, Any]) -> None:
        """A CapacityRecommendation, reduced at once to its row."""
        try:
            rec = CapacityRecommendation.model_validate(body)
        except ValidationError as error:
            meta = body.get("metadata") or {}
            self.skipped.append(
                f"CapacityRecommendation {meta.get('namespace')}/{meta.get('name')}: "
                f"{error.error_count()} invalid fields"
            )
            return
        status = rec.status
        conditions = {c.type: c.status for c in status.conditions} if status else {}
        message = None
        if status is None or status.recommended is None:
            waiting = [c.message for c in (status.conditions if status else []) if c.message]
            message = "; ".join(waiting) or "no recommendation yet"
        self._experts.append(
            ExpertView(
                namespace=rec.metadata.namespace or "",
                name=rec.metadata.name,
                current=status.current if status else None,
                recommended=status.recommended if status else None,
                fit=status.fit if status else None,
                conditions=conditions,
                message=message,
                containers=status.containers if status else None,
                podLevel=status.podLevel if status else None,
                gpu=status.gpu if status else None,
                columns=status.columns if status else None,
            )
        )

    def _node_view(self, name: str) -> NodeView:
        node = self._nodes.get(name)
        report = self._reports.get(name)
        status = report.status if report is not None else None
        requests = self._requests.get(name) or _Requests()
        notes = []
        stale = False
        age = None
        if status is not None:
            age = (self.now - status.collectedAt).total_seconds()
            stale = age > STALE_AFTER_HEARTBEATS * status.heartbeatSeconds or any(
                c.type == "Stale" and c.status == "True" for c in status.conditions
            )
        reason = exclusion_reason(
            now=self.now,
            report_collected_at=status.collectedAt if status else None,
            heartbeat_seconds=status.heartbeatSeconds if status else None,
            unschedulable=node is not None and not node.schedulable,
            ready=node is None or node.ready,
            pressures=node.pressures if node else (),
            stale_after_heartbeats=STALE_AFTER_HEARTBEATS,
        )
        if reason:
            notes.extend(reason.split("; "))
        if stale and not any(n.startswith("stale") for n in notes):
            notes.append("stale report: Stale condition set by the controller")
        if node is None:
            notes.append("no Node")
        else:
            notes.extend(node.problems)
        if report is not None and status is None:
            notes.append("report has no figures yet")

        used_cpu = used_memory = None
        fullest = None
        if status is not None:
            used_cpu = status.cpu.logicalCores * status.cpu.utilizationPercent / 100
            used_memory = status.memory.usedBytes
            measured = [d for d in status.disks if d.usedPercent is not None]
            if measured:
                disk = max(measured, key=lambda d: d.usedPercent or 0.0)
                fullest = DiskView(path=disk.path, usedPercent=disk.usedPercent or 0.0)
        free_cpu = free_memory = None
        if node is not None:
            idle = None
            if status is not None:
                idle = status.cpu.logicalCores * max(0.0, 1 - status.cpu.utilizationPercent / 100)
            millicores, kib = free_room(
                node.allocatable_cpu,
                node.allocatable_memory,
                requests.cpu,
                requests.memory,
                idle,
                status.memory.availableBytes if status is not None else None,
            )
            free_cpu, free_memory = millicores / 1000, kib * 1024
        return NodeView(
            name=name,
            ready=node.ready if node else None,
            schedulable=node.schedulable if node else None,
            allocatableCpuCores=node.allocatable_cpu if node else None,
            allocatableMemoryBytes=node.allocatable_memory if node else None,
            requestedCpuCores=_round(requests.cpu),
            requestedMemoryBytes=requests.memory,
            pods=requests.pods,
            usedCpuCores=None if used_cpu is None else _round(used_cpu),
            usedMemoryBytes=used_memory,
            cpuUtilizationPercent=status.cpu.utilizationPercent if status else None,
            memoryUsedPercent=status.memory.usedPercent if status else None,
            freeCpuCores=free_cpu,
            freeMemoryBytes=free_memory,
            fullestDisk=fullest,
            reportedAt=status.collectedAt if status else None,
            reportAgeSeconds=None if age is None else round(age, 1),
            stale=stale,
            notes=notes,
            gpu=_gpu_view(node.gpus if node else {}, requests.gpus, status),
        )

    def build(self) -> ClusterReport:
        """The view: nodes by name, experts by namespace and name, and the totals."""
        names = set(self._nodes)
        if not self.listed_nodes_only:
            names |= set(self._reports)
        nodes = [self._node_view(name) for name in sorted(names)]
        experts = sorted(self._experts, key=lambda e: (e.namespace, e.name))
        summary = Summary(
            nodes=len(nodes),
            staleNodes=sum(n.stale for n in nodes),
            allocatableCpuCores=_round(sum(n.allocatableCpuCores or 0.0 for n in nodes)),
            requestedCpuCores=_round(sum(n.requestedCpuCores for n in nodes)),
            usedCpuCores=_round(sum(n.usedCpuCores or 0.0 for n in nodes)),
            allocatableMemoryBytes=sum(n.allocatableMemoryBytes or 0 for n in nodes),
            requestedMemoryBytes=sum(n.requestedMemoryBytes for n in nodes),
            usedMemoryBytes=sum(n.usedMemoryBytes or 0 for n in nodes),
            experts=len(experts),
            expertsWithRecommendation=sum(e.recommended is not None for e in experts),
            additionalReplicas=sum(e.fit.additionalReplicas for e in experts if e.fit),
        )
        return ClusterReport(
            readAt=self.now,
            nodeSelector=self.node_selector,
            namespace=self.namespace,
            summary=summary,
            nodes=nodes,
            experts=experts,
        )


def _gpu_view(
    allocatable: dict[str, int], requested: dict[str, int], status: ResourceReportStatus | None
) -> GpuNodeView | None:
    """The node's GPUs; None when it has neither GPU resources nor GPU figures."""
    gpus = (status.gpus or []) if status is not None else []
    if not allocatable and not requested and not gpus:
        return None
    totals = [g.memoryTotalBytes for g in gpus if g.memoryTotalBytes is not None]
    used = [g.memoryUsedBytes for g in gpus if g.memoryUsedBytes is not None]
    busy = [g.utilizationPercent for g in gpus if g.utilizationPercent is not None]
    return GpuNodeView(
        allocatable=dict(sorted(allocatable.items())),
        requested=dict(sorted(requested.items())),
        allocatableDevices=sum(allocatable.values()),
        requestedDevices=sum(requested.values()),
        gpus=len(gpus) if gpus else None,
        memoryTotalBytes=sum(totals) if totals else None,
        memoryUsedBytes=sum(used) if used else None,
        utilizationPercent=round(sum(busy) / len(busy), 1) if busy else None,
        errors=sum(1 for g in gpus if g.error is not None),
    )


def _round(cores: float) -> float:
    """Cores to the millicore (the API server's precision), float noise gone."""
    return math.floor(cores * 1000 + 0.5) / 1000
