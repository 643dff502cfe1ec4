"""Per-container recommendations: CPU request, memory request and limit, CPU limit, OOM kills (pure).

Requests are set per container, so each container of an expert's template —
its regular containers and its native sidecars (init containers with
``restartPolicy: Always``) — gets its own figures from its own history (one
per container *name*: a renamed or added container starts afresh):

* **CPU request**: as for the pod (:func:`~headroom.recommend.sizing.recommend_cpu`):
  the p95 of the container's CPU samples + the CPU margin, rounded up.
* **Memory request**: the container's working-set peak within the window +
  the memory margin, rounded up (:func:`~headroom.recommend.sizing.recommend_memory`);
  after an OOM kill at least :func:`oom_floor` of the limit it died at.
* **Memory limit** = the memory request. Memory cannot be taken back from a
  process: a container above its request is what the kubelet evicts first
  when the node runs short, and a limit far above it lets pods promise the
  node memory it does not have. With limit = request the kill, if any,
  happens in the container that outgrew its figure, at a figure the
  recommendation names — and that kill raises the next recommendation.
* **CPU limit**: none recommended. CPU is compressible: above its request a
  container only gets less CPU when the node is busy, while a CFS quota
  throttles it in every 100 ms period it exceeds even on an idle node — the
  latency spikes an inference server must not have. A current CPU limit is
  left as it is, unless it is below the recommended request: then it is
  raised to the request (the API server refuses a request above its limit).

**OOM kills.** A container whose last termination was ``OOMKilled`` died at
its memory limit (or, without one, at the pod's or the node's). Its memory
request and limit are then at least ``max(limit × 1.2, limit + 100 MiB)``,
rounded up — VPA's bump (its recommender adds a sample of that size; KRR
adds 25 % to the peak) — for as long as the kill is within the window. The
kill count and time stay in the status, so a restarted controller keeps the
floor and does not count the same kill twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headroom.api.capacityrecommendation import CurrentSizing, SizingPolicy
from headroom.api.containersizing import (
    ContainerRecommendation,
    ContainerResources,
    OomKills,
    PodLevelRecommendation,
)
from headroom.recommend.describe import describe_bytes, describe_duration
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    parse_cpu_cores,
    parse_memory_bytes,
    round_up_memory_bytes,
)
from headroom.recommend.sizing import recommend_cpu, recommend_memory

__all__ = [
    "OOM_FACTOR",
    "OOM_MIN_BUMP_BYTES",
    "ContainerSpec",
    "OomRecord",
    "container_specs",
    "oom_floor",
    "oom_limit",
    "pod_level_spec",
    "recommend_container",
    "recommend_pod_level",
]

OOM_FACTOR = 1.2
OOM_MIN_BUMP_BYTES = 100 * 2**20
"""After an OOM kill at limit L: at least max(L × 1.2, L + 100 MiB) (VPA's rule)."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container's resources as a Deployment's template sets them."""

    name: str
    sidecar: bool = False
    cpu_request: float | None = None
    memory_request: int | None = None
    cpu_limit: float | None = None
    memory_limit: int | None = None

    def resources(self) -> ContainerResources:
        """The API form (quantities written as Kubernetes writes them)."""
        return ContainerResources(
            cpuRequestCores=self.cpu_request,
            cpuRequest=None if self.cpu_request is None else format_cpu(self.cpu_request),
            memoryRequestBytes=self.memory_request,
            memoryRequest=None
            if self.memory_request is None
            else format_memory(self.memory_request),
            cpuLimitCores=self.cpu_limit,
            cpuLimit=None if self.cpu_limit is None else format_cpu(self.cpu_limit),
            memoryLimitBytes=self.memory_limit,
            memoryLimit=None if self.memory_limit is None else format_memory(self.memory_limit),
        )


def _spec(name: str, resources: Mapping[str, Any] | None, sidecar: bool) -> ContainerSpec:
    """Requests default to limits, as the API server defaults them."""
    resources = resources or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    cpu_limit = parse_cpu_cores(limits["cpu"]) if "cpu" in limits else None
    memory_limit = parse_memory_bytes(limits["memory"]) if "memory" in limits else None
    cpu = parse_cpu_cores(requests["cpu"]) if "cpu" in requests else cpu_limit
    memory = parse_memory_bytes(requests["memory"]) if "memory" in requests else memory_limit
    return ContainerSpec(name, sidecar, cpu, memory, cpu_limit, memory_limit)


def container_specs(pod_spec: Mapping[str, Any]) -> tuple[ContainerSpec, ...]:
    """The containers sized on their own: regular ones, then native sidecars, in order.

    Plain init containers run to completion before the others start and are
    not sized. Raises :class:`ValueError` for a quantity that does not parse.
    """
    found = [
        _spec(str(c.get("name", "")), c.get("resources"), False)
        for c in pod_spec.get("containers") or ()
    ]
    found += [
        _spec(str(c.get("name", "")), c.get("resources"), True)
        for c in pod_spec.get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    ]
    return tuple(spec for spec in found if spec.name)


def pod_level_spec(pod_spec: Mapping[str, Any]) -> ContainerSpec | None:
    """The pod-level ``spec.resources`` (named ``""``), or None when the pod has none."""
    resources = pod_spec.get("resources")
    if not resources or not (resources.get("requests") or resources.get("limits")):
        return None
    return _spec("", resources, False)


@dataclass(slots=True)
class OomRecord:
    """One container's OOM kills: the persisted count and time, and those counted here."""

    count: int = 0
    last_at: datetime | None = None
    limit_bytes: int | None = None
    counted: list[datetime] = field(default_factory=list)
    """Kill times this process counted (to merge with a history restored later)."""

    def add(self, at: datetime, limit_bytes: int | None) -> bool:
        """Count one kill ending at ``at``; False for one already counted (or older)."""
        if at in self.counted or (self.last_at is not None and at <= self.last_at):
            return False
        self.count += 1
        self.last_at = at
        self.limit_bytes = limit_bytes
        self.counted.append(at)
        del self.counted[:-32]
        return True

    def restore(self, kills: OomKills) -> None:
        """Take the persisted count: kills counted here after it are added on top."""
        newer = [at for at in self.counted if at > kills.lastKilledAt]
        self.count = kills.count + len(newer)
        if not newer:
            self.last_at, self.limit_bytes = kills.lastKilledAt, kills.limitBytes
        self.counted = newer

    def model(self) -> OomKills | None:
        """The persisted form; None before any kill."""
        if self.last_at is None:
            return None
        return OomKills(count=self.count, lastKilledAt=self.last_at, limitBytes=self.limit_bytes)


def oom_floor(limit_bytes: int) -> int:
    """The memory a container killed at ``limit_bytes`` gets at least (before rounding)."""
    return max(math.ceil(limit_bytes * OOM_FACTOR), limit_bytes + OOM_MIN_BUMP_BYTES)


def _current(spec: ContainerSpec) -> CurrentSizing:
    return CurrentSizing(
        replicas=1, cpuRequestCores=spec.cpu_request, memoryRequestBytes=spec.memory_request
    )


def _cpu_limit(spec: ContainerSpec, request: float) -> tuple[float | None, str]:
    if spec.cpu_limit is None:
        return None, (
            "none: CPU is compressible, and a CFS quota throttles a container in every "
            "period it exceeds, even on an idle node"
        )
    if spec.cpu_limit < request:
        return request, (
            f"the current limit {format_cpu(spec.cpu_limit)} is below the recommended request: "
            f"raised to it (a request above its limit is refused); better removed"
        )
    return None, f"none recommended; the current limit {format_cpu(spec.cpu_limit)} is kept"


def _oom_raise(
    memory: int, reason: str, oom: OomRecord | None, now: datetime, defaults: SizingDefaults
) -> tuple[int, str]:
    """The memory request raised above the limit of a kill within the window."""
    if oom is None or oom.last_at is None:
        return memory, reason
    age = (now - oom.last_at).total_seconds()
    if age > defaults.window_seconds:
        return memory, reason
    kills = f"{oom.count} OOM kill{'s' if oom.count != 1 else ''}, the last {describe_duration(age)} ago"
    if oom.limit_bytes is None:
        return memory, f"{reason}; {kills} without a container limit (the node ran out)"
    floor = round_up_memory_bytes(oom_floor(oom.limit_bytes))
    floor = min(max(floor, defaults.min_memory_bytes), defaults.max_memory_bytes)
    if floor <= memory:
        return memory, f"{reason}; above the {format_memory(oom.limit_bytes)} limit of {kills}"
    return floor, (
        f"{kills} at the {format_memory(oom.limit_bytes)} limit: "
        f"max(×{OOM_FACTOR:g}, +{describe_bytes(OOM_MIN_BUMP_BYTES)}) = "
        f"{describe_bytes(oom_floor(oom.limit_bytes))}, rounded up to {format_memory(floor)} "
        f"(the usage figure alone: {format_memory(memory)})"
    )


def recommend_container(
    spec: ContainerSpec,
    history: ExpertHistory,
    policy: SizingPolicy,
    defaults: SizingDefaults,
    now: datetime,
    oom: OomRecord | None = None,
) -> tuple[ContainerRecommendation, float | None, float | None]:
    """One container's recommendation, its CPU at the percentile and its memory peak."""
    current = _current(spec)
    cpu, cpu_usage, cpu_reason = recommend_cpu(history, policy, current, defaults)
    memory, peak, memory_reason = recommend_memory(history, policy, current, defaults, now)
    memory, memory_reason = _oom_raise(memory, memory_reason, oom, now, defaults)
    cpu_limit, cpu_limit_reason = _cpu_limit(spec, cpu)
    recommendation = ContainerRecommendation(
        cpuRequestCores=cpu,
        cpuRequest=format_cpu(cpu),
        cpuReason=cpu_reason,
        cpuLimitCores=cpu_limit,
        cpuLimit=None if cpu_limit is None else format_cpu(cpu_limit),
        cpuLimitReason=cpu_limit_reason,
        memoryRequestBytes=memory,
        memoryRequest=format_memory(memory),
        memoryReason=memory_reason,
        memoryLimitBytes=memory,
        memoryLimit=format_memory(memory),
        memoryLimitReason="= the memory request (a container above its request is the "
        "first the kubelet evicts; a higher limit promises memory the node may not have)",
    )
    return recommendation, cpu_usage, peak


def recommend_pod_level(
    spec: ContainerSpec,
    cpu_request: float,
    memory_request: int,
    oom: OomRecord | None,
    now: datetime,
    defaults: SizingDefaults,
    memory_reason: str,
) -> tuple[PodLevelRecommendation, int, str]:
    """Limits for a pod-level-sized expert, and its memory request raised after an OOM kill.

    A container killed at the pod-level limit (it set none of its own) raises
    the pod's memory as a container's would be raised.
    """
    memory, reason = _oom_raise(memory_request, memory_reason, oom, now, defaults)
    cpu_limit, cpu_limit_reason = _cpu_limit(spec, cpu_request)
    level = PodLevelRecommendation(
        current=spec.resources(),
        cpuLimitCores=cpu_limit,
        cpuLimit=None if cpu_limit is None else format_cpu(cpu_limit),
        cpuLimitReason=cpu_limit_reason,
        memoryLimitBytes=memory,
        memoryLimit=format_memory(memory),
        memoryLimitReason="= the pod's memory request",
    )
    return level, memory, reason


def oom_limit(spec: ContainerSpec | None, pod_level: ContainerSpec | None) -> int | None:
    """The memory limit a container of ``spec`` dies at: its own, else the pod-level one."""
    if spec is not None and spec.memory_limit is not None:
        return spec.memory_limit
    return pod_level.memory_limit if pod_level is not None else None
