"""From two raw samples to the figures a ResourceReport carries — pure, no I/O.

Rates need two readings: CPU utilisation (FR-001) is the busy share of the
CPU-time delta, a pod's CPU cores its usage delta over the monotonic delta.
A first sample, a counter that went backwards (node or pod restarted) or a
clock that did not advance gives 0 % for the node and no cores for a pod
rather than a wrong number. Percentages are rounded to 1 decimal, cores to 4.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from headroom.collection.figures import (
    ContainerUsage,
    CpuFigures,
    DiskFigures,
    MemoryFigures,
    PodUsage,
    ReportStatus,
)
from headroom.collection.sample import ContainerCounters, CpuTimes, PodCounters, RawSample

__all__ = [
    "cpu_utilization_percent",
    "derive_status",
    "disk_max_used_percent",
    "pod_cpu_cores",
    "rounded_percent",
]


def rounded_percent(value: float) -> float:
    """A percentage clamped to 0..100 (NaN to 0) and rounded to 1 decimal."""
    if not math.isfinite(value):
        return 100.0 if value == math.inf else 0.0
    return round(min(max(value, 0.0), 100.0), 1)


def cpu_utilization_percent(previous: CpuTimes | None, current: CpuTimes) -> float:
    """FR-001: busy share of the CPU time elapsed between two samples, in %."""
    if previous is None:
        return 0.0
    total = current.total - previous.total
    if not total > 0:
        return 0.0
    return rounded_percent(100.0 * (current.busy - previous.busy) / total)


def pod_cpu_cores(
    previous: PodCounters | ContainerCounters | None,
    current: PodCounters | ContainerCounters,
    seconds: float,
) -> float | None:
    """CPU cores a pod (or container) used over ``seconds``; None without a usable previous."""
    if previous is None or not seconds > 0:
        return None
    used = current.cpu_usage_seconds - previous.cpu_usage_seconds
    if not used >= 0 or not math.isfinite(used / seconds):
        return None
    return round(used / seconds, 4)


def disk_max_used_percent(disks: tuple[DiskFigures, ...] | list[DiskFigures]) -> float | None:
    """The fullest measured path's used %, for ``kubectl get rr``; None if none measured."""
    measured = [d.usedPercent for d in disks if d.error is None and d.usedPercent is not None]
    return max(measured) if measured else None


def _rounded_memory(memory: MemoryFigures) -> MemoryFigures:
    percent = rounded_percent(memory.usedPercent)
    if percent == memory.usedPercent:
        return memory
    return replace(memory, usedPercent=percent)


def _rounded_disk(disk: DiskFigures) -> DiskFigures:
    if disk.usedPercent is None:
        return disk
    percent = rounded_percent(disk.usedPercent)
    if percent == disk.usedPercent:
        return disk
    return replace(disk, usedPercent=percent)


def _container_usages(
    previous: PodCounters | None, current: PodCounters, seconds: float
) -> list[ContainerUsage] | None:
    """Each container's usage, by short ID; None when the pod showed no container cgroups."""
    if not current.containers:
        return None
    before = {c.id: c for c in previous.containers} if previous is not None else {}
    return [
        ContainerUsage(
            id=container.id,
            cpuCores=pod_cpu_cores(before.get(container.id), container, seconds),
            memoryBytes=container.memory_working_set_bytes,
        )
        for container in current.containers
    ]


def _pod_usages(previous: RawSample | None, current: RawSample) -> list[PodUsage]:
    """Each pod's usage (and its containers'), by UID, with its GPU use where NVML saw its processes."""
    before = {pod.uid: pod for pod in previous.pods} if previous is not None else {}
    seconds = current.monotonic - previous.monotonic if previous is not None else 0.0
    gpu_pods = current.gpus.pods if current.gpus is not None else {}
    usages = []
    for pod in sorted(current.pods, key=lambda pod: pod.uid):
        last = before.get(pod.uid)
        usages.append(
            PodUsage(
                uid=pod.uid,
                qosClass=pod.qos_class,
                cpuCores=pod_cpu_cores(last, pod, seconds),
                memoryBytes=pod.memory_working_set_bytes,
                containers=_container_usages(last, pod, seconds),
                gpu=gpu_pods.get(pod.uid),
            )
        )
    return usages


def derive_status(
    previous: RawSample | None,
    current: RawSample,
    *,
    collected_at: datetime,
    agent_version: str,
    heartbeat_seconds: int,
) -> ReportStatus:
    """The ResourceReport status for ``current``, with rates since ``previous``.

    Conditions are left empty: they belong to the agent, which knows whether
    the write itself succeeded. No validation here (PR-002, PR-003): every
    figure is clamped or counted by construction, and
    ``tests/unit/test_figures_drift.py`` proves what this builds validates
    against ``ResourceReportStatus`` and the CRD schema.
    """
    disks = [_rounded_disk(disk) for disk in current.disks]
    gpus = current.gpus if current.gpus is not None and current.gpus.gpus else None
    pods = _pod_usages(previous, current)
    return ReportStatus(
        collectedAt=collected_at,
        agentVersion=agent_version,
        heartbeatSeconds=heartbeat_seconds,
        cpu=CpuFigures(
            utilizationPercent=cpu_utilization_percent(
                previous.cpu_times if previous is not None else None, current.cpu_times
            ),
            physicalCores=current.physical_cores,
            logicalCores=current.logical_cores,
        ),
        memory=_rounded_memory(current.memory),
        disks=disks,
        diskMaxUsedPercent=disk_max_used_percent(disks),
        podCount=len(pods),
        pods=pods,
        agentContainer=current.agent_container,
        gpus=list(gpus.gpus) if gpus is not None else None,
        gpuSummary=gpus.summary() if gpus is not None else None,
    )
