"""GPU advice for experts that request GPUs or MIG devices (GP-004, GP-005) — pure functions.

Everything here takes plain figures and returns figures with the words that
explain them; the controller only gathers the inputs (``controller.state``)
and calls :func:`gpu_advice`. The maths, with the example of
``tests/unit/test_recommend_gpu.py`` worked by hand in ``docs/gpu.md``:

* **GPU memory** (per replica) = the peak of the pods' GPU memory (NVML's
  per-process ``usedGpuMemory`` summed per pod) within the window, × (1 +
  the GPU memory margin, ``headroom.dev/gpu-memory-margin``, 15 %). GPU
  memory is not compressible either: a CUDA allocation beyond it fails.
* **GPU use** (per replica) = the ``percentile`` (95) of the pods' GPU use in
  *GPUs* — a pod's SM share where NVML gives one per process, else the
  utilisation of a GPU it has to itself — over the window's decaying
  samples; also given as a percentage of the GPUs each replica requests.
* **Replicas** = ⌈p95 of the GPU use of all replicas over the window ÷ (GPUs
  per replica × target)⌉, the target being
  ``headroom.dev/gpu-target-utilization`` (70 %), within the expert's min/max
  replicas — the CPU rule with GPUs for cores: every ``load_sample_seconds``
  the controller adds the total to a decaying histogram
  (:func:`record_total_gpu`), and the replicas follow its ``load_percentile``,
  not the moment. Until the first sample the total of the moment stands in,
  and the reason says which was used.
* **Replicas per shared GPU** = ⌊GPU memory of one GPU ÷ (peak + margin)⌋:
  how many replicas one GPU could hold if it were shared (time-slicing or
  MPS), memory being what sharing cannot stretch.
* **Smallest MIG profile** = the MIG profile with the least memory, among
  those the nodes offer, whose memory holds peak + margin; the reason adds
  the profile's share of the GPU's compute (``<g>g`` of 7 slices) against
  the replica's GPU use, since a 1g slice has a seventh of the SMs.
* **Fit**: per node, more replicas = the least of ⌊free devices ÷ devices
  per replica⌋ (free = allocatable − requested, of the resource the expert
  asks for), ⌊free CPU ÷ CPU request⌋, ⌊free memory ÷ memory request⌋ (the
  scheduler's view and the agent's, as in :mod:`headroom.recommend.fit`)
  and, on a shared GPU, the GPU memory: with time-slicing every replica
  sharing a GPU takes its peak + margin from that GPU's free memory (by the
  agent's NVML figures), with MPS each slice has ``gpu.memory ÷ replicas``
  and a replica needing more does not fit at all.

Node labels read (NVIDIA GPU feature discovery): ``nvidia.com/gpu.product``,
``nvidia.com/gpu.memory`` (MiB per GPU), ``nvidia.com/gpu.replicas`` (slices
per GPU when shared), ``nvidia.com/gpu.sharing-strategy`` (``time-slicing``,
``mps`` or ``none``), ``nvidia.com/gpu.count`` and, per MIG profile,
``nvidia.com/mig-<profile>.memory`` (MiB).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from headroom.api.gpu import GpuAdvice, GpuNodeFit, GpuUsageHistory
from headroom.recommend.describe import describe_bytes, describe_duration
from headroom.recommend.histogram import DecayingHistogram
from headroom.recommend.quantities import parse_quantity
from headroom.recommend.replicas import (
    WindowLoad,
    bounded_replicas,
    histogram_load,
    load_words,
    total_sample_due,
)

__all__ = [
    "GPU_ANNOTATION_KEYS",
    "GPU_MEMORY_MARGIN",
    "GPU_RESOURCE",
    "GPU_TARGET_UTILIZATION",
    "MIG_PREFIX",
    "GpuFitArrays",
    "GpuHistory",
    "GpuNodeRoom",
    "GpuPolicy",
    "NodeGpus",
    "fit_gpu_replicas",
    "gpu_advice",
    "gpu_policy",
    "gpu_requests",
    "node_gpus",
    "pod_gpu_observations",
    "recommend_gpu_replicas",
    "record_total_gpu",
    "replicas_per_shared_gpu",
    "smallest_mig_profile",
]

GPU_RESOURCE = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
GPU_TARGET_UTILIZATION = "headroom.dev/gpu-target-utilization"
GPU_MEMORY_MARGIN = "headroom.dev/gpu-memory-margin"
GPU_ANNOTATION_KEYS = (GPU_TARGET_UTILIZATION, GPU_MEMORY_MARGIN)
MIB = 1 << 20
MIG_SLICES = 7
"""Compute slices of a full A100/H100/H200 in MIG mode (``7g``)."""
_MIG_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb")
_Limit = Literal["gpu", "cpu", "memory", "gpu-memory"]


def is_gpu_resource(name: str) -> bool:
    """``nvidia.com/gpu`` or a MIG resource ``nvidia.com/mig-<profile>``."""
    return name == GPU_RESOURCE or name.startswith(MIG_PREFIX)


def _whole(value: Any) -> int:
    return int(parse_quantity(value).to_integral_value())


def gpu_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """GPU devices a pod (template) asks for, per resource, as the scheduler counts them.

    Extended resources cannot be overcommitted: a request equals the limit and
    a limit alone implies the request. The pod needs the larger of its
    containers' sum and any one init container's (init containers run first,
    one at a time).
    """

    def of(container: Mapping[str, Any]) -> dict[str, int]:
        resources = container.get("resources") or {}
        asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        return {name: _whole(value) for name, value in asked.items() if is_gpu_resource(name)}

    total: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        for name, count in of(container).items():
            total[name] = total.get(name, 0) + count
    for container in pod_spec.get("initContainers") or []:
        for name, count in of(container).items():
            total[name] = max(total.get(name, 0), count)
    return {name: count for name, count in total.items() if count > 0}


@dataclass(frozen=True, slots=True)
class GpuPolicy:
    """The GPU figures an expert may override by annotation."""

    target_utilization_percent: float = 70.0
    memory_margin_percent: float = 15.0


def gpu_policy(
    annotations: Mapping[str, str] | None, defaults: GpuPolicy = GpuPolicy()
) -> tuple[GpuPolicy, list[str]]:
    """The expert's GPU policy and the problems in its annotations (defaults used for those)."""
    annotations = annotations or {}
    problems: list[str] = []

    def percent(key: str, default: float, low_open: bool, high: float) -> float:
        text = annotations.get(key)
        if text is None:
            return default
        number = text.strip().removesuffix("%").strip()
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or value > high or (low_open and value == 0):
            low = "(0" if low_open else "[0"
            problems.append(
                f"{key}={text!r} is not a percentage in {low}, {high:g}]; using the default {default:g}"
            )
            return default
        return value

    return (
        GpuPolicy(
            target_utilization_percent=percent(
                GPU_TARGET_UTILIZATION, defaults.target_utilization_percent, True, 100
            ),
            memory_margin_percent=percent(
                GPU_MEMORY_MARGIN, defaults.memory_margin_percent, False, 1000
            ),
        ),
        problems,
    )


@dataclass(frozen=True, slots=True)
class NodeGpus:
    """A node's GPUs as its labels and allocatable resources tell them."""

    allocatable: Mapping[str, int]
    product: str | None = None
    memory_bytes: int | None = None
    """Memory of one physical GPU (``nvidia.com/gpu.memory``, MiB)."""
    count: int | None = None
    """Physical GPUs (``nvidia.com/gpu.count``)."""
    replicas: int = 1
    """Slices per GPU when shared (``nvidia.com/gpu.replicas``)."""
    sharing: str = "none"
    """``time-slicing``, ``mps`` or ``none``."""
    mig_memory: Mapping[str, int] = field(default_factory=dict)
    """MIG profile → its memory in bytes (``nvidia.com/mig-<profile>.memory``)."""

    @property
    def shared(self) -> bool:
        """Several pods may be given the same physical GPU."""
        return self.replicas > 1 or self.sharing in ("time-slicing", "mps")


def _label_int(labels: Mapping[str, str], key: str) -> int | None:
    text = labels.get(key)
    if text is None or not text.strip().isdigit():
        return None
    return int(text)


def node_gpus(
    labels: Mapping[str, str] | None, allocatable: Mapping[str, Any] | None
) -> NodeGpus | None:
    """The node's GPUs; None when it advertises no GPU resource."""
    labels = labels or {}
    devices: dict[str, int] = {}
    for name, value in (allocatable or {}).items():
        if is_gpu_resource(name):
            try:
                devices[name] = _whole(value)
            except ValueError:
                continue
    if not any(devices.values()):
        return None
    memory = _label_int(labels, "nvidia.com/gpu.memory")
    mig_memory = {}
    for key, text in labels.items():
        if key.startswith(MIG_PREFIX) and key.endswith(".memory") and text.strip().isdigit():
            mig_memory[key[len(MIG_PREFIX) : -len(".memory")]] = int(text) * MIB
    sharing = labels.get("nvidia.com/gpu.sharing-strategy", "none")
    return NodeGpus(
        allocatable=devices,
        product=labels.get("nvidia.com/gpu.product"),
        memory_bytes=None if memory is None else memory * MIB,
        count=_label_int(labels, "nvidia.com/gpu.count"),
        replicas=max(1, _label_int(labels, "nvidia.com/gpu.replicas") or 1),
        sharing=sharing,
        mig_memory=mig_memory,
    )


def pod_gpu_observations(status: Mapping[str, Any]) -> dict[str, tuple[int | None, float | None]]:
    """Each GPU pod of a ResourceReport status: (GPU memory bytes, GPU use in GPUs).

    A device's use is the pod's SM share where NVML gave one; else, on a GPU
    (not a MIG device) that no other pod uses, that GPU's utilisation; else
    unknown — and then the pod's use is unknown rather than undercounted.
    """
    utilisation = {
        gpu.get("uuid"): gpu.get("utilizationPercent") for gpu in status.get("gpus") or []
    }
    users: dict[str, int] = {}
    pods = [pod for pod in status.get("pods") or [] if pod.get("gpu")]
    for pod in pods:
        for device in pod["gpu"].get("devices") or []:
            users[device["uuid"]] = users.get(device["uuid"], 0) + 1
    observed: dict[str, tuple[int | None, float | None]] = {}
    for pod in pods:
        use: float | None = 0.0
        for device in pod["gpu"].get("devices") or []:
            share = device.get("utilizationPercent")
            if share is None and device.get("migProfile") is None and users[device["uuid"]] == 1:
                share = utilisation.get(device["uuid"])
            if share is None or use is None:
                use = None
            else:
                use += share / 100
        memory = pod["gpu"].get("memoryBytes")
        observed[pod["uid"]] = (None if memory is None else int(memory), use)
    return observed


@dataclass(slots=True)
class GpuHistory:
    """Per-pod GPU memory and GPU use of one expert, and the total GPU use of all its
    replicas (the persisted :class:`GpuUsageHistory`)."""

    memory: DecayingHistogram
    utilization: DecayingHistogram
    samples: int = 0
    utilization_samples: int = 0
    first_sample_at: datetime | None = None
    last_sample_at: datetime | None = None
    total: DecayingHistogram | None = None
    """The total GPU use of all replicas, in GPUs; ``None`` until the first is recorded."""
    total_samples: int = 0
    last_total_at: datetime | None = None

    @classmethod
    def new(cls, half_life_seconds: float, now: datetime) -> GpuHistory:
        """Empty: memory from 1 MiB buckets, use from 0.01 GPU buckets, both growing 5 %."""
        return cls(
            memory=DecayingHistogram.for_memory(half_life_seconds, now),
            utilization=DecayingHistogram.for_cpu(half_life_seconds, now),
        )

    def add_observation(self, memory_bytes: int | None, gpus: float | None, at: datetime) -> None:
        """One pod's GPU memory and use at ``at`` (either may be unknown)."""
        if memory_bytes is not None:
            self.memory.add_sample(float(memory_bytes), 1.0, at)
            self.samples += 1
        if gpus is not None:
            self.utilization.add_sample(gpus, 1.0, at)
            self.utilization_samples += 1
        if self.first_sample_at is None or at < self.first_sample_at:
            self.first_sample_at = at
        if self.last_sample_at is None or at > self.last_sample_at:
            self.last_sample_at = at

    def add_total(self, gpus: float, at: datetime) -> None:
        """Add one sample of the total GPU use of all replicas observed at ``at``, weight 1."""
        if self.total is None:
            self.total = DecayingHistogram.for_cpu(self.utilization.half_life_seconds, at)
        self.total.add_sample(gpus, 1.0, at)
        self.total_samples += 1
        self.last_total_at = at

    def prune(self, now: datetime, window_seconds: float) -> None:
        """Forget what fell out of the window."""
        self.memory.prune(now, window_seconds)
        self.utilization.prune(now, window_seconds)
        if self.total is not None:
            self.total.prune(now, window_seconds)

    def window_load(self, now: datetime, window_seconds: float, percentile: float) -> WindowLoad:
        """The total GPU use at ``percentile`` within the window, as the replicas need it."""
        return histogram_load(
            self.total,
            self.total_samples,
            self.first_sample_at,
            self.last_total_at,
            now,
            window_seconds,
            percentile,
            percentile,
        )

    def to_model(self) -> GpuUsageHistory:
        """The persisted form."""
        return GpuUsageHistory(
            memory=self.memory.to_model(),
            utilization=self.utilization.to_model(),
            samples=self.samples,
            utilizationSamples=self.utilization_samples,
            firstSampleAt=self.first_sample_at,
            lastSampleAt=self.last_sample_at,
            totalGpu=None if self.total is None else self.total.to_model(),
            totalGpuSamples=self.total_samples,
            lastTotalGpuAt=self.last_total_at,
        )

    @classmethod
    def from_model(cls, model: GpuUsageHistory) -> GpuHistory:
        """Read a persisted history back."""
        return cls(
            memory=DecayingHistogram.from_model(model.memory),
            utilization=DecayingHistogram.from_model(model.utilization),
            samples=model.samples,
            utilization_samples=model.utilizationSamples,
            first_sample_at=model.firstSampleAt,
            last_sample_at=model.lastSampleAt,
            total=None if model.totalGpu is None else DecayingHistogram.from_model(model.totalGpu),
            total_samples=model.totalGpuSamples,
            last_total_at=model.lastTotalGpuAt,
        )


def record_total_gpu(
    history: GpuHistory, total_gpus: float | None, at: datetime, every_seconds: float
) -> bool:
    """Add the total GPU use of all replicas at ``at`` when ``every_seconds`` passed since the
    last one (the cadence of the total CPU, so each sample stands for the same time).

    Returns whether a sample was added; nothing is added without a figure (no
    fresh report, or a replica whose use NVML cannot give). The history's
    :meth:`GpuHistory.prune` keeps it to the window.
    """
    if total_gpus is None or not total_sample_due(
        total_gpus, history.last_total_at, at, every_seconds
    ):
        return False
    history.add_total(total_gpus, at)
    return True


def recommend_gpu_replicas(
    gpus_per_replica: int,
    total_gpus_used: float | None,
    target_percent: float,
    current_replicas: int,
    bounds: tuple[int, int],
    load: WindowLoad | None = None,
) -> tuple[int | None, str]:
    """⌈total GPU use ÷ (GPUs per replica × target)⌉ within ``bounds``; None without figures.

    The total is the window's percentile of ``load`` once it has samples
    (GP-004, CT-001: replicas follow the window's load, not the moment's), else
    ``total_gpus_used``, the GPU use of all replicas now; the reason names the
    one used, and quotes the moment's beside the window's.
    """
    low, high = bounds
    window = load is not None and load.at_percentile is not None
    used: float | None = total_gpus_used
    words = "GPU use of all replicas now"
    if load is not None and load.at_percentile is not None:
        used, words = load.at_percentile, load_words(load, "GPU")
    if used is None or gpus_per_replica <= 0:
        return None, (
            f"no GPU use measured yet (MIG devices and shared GPUs without per-process "
            f"figures give none): keeping the current {current_replicas} replicas"
        )
    exact, needed, replicas, bounded = bounded_replicas(
        used, gpus_per_replica * target_percent / 100, low, high
    )
    reason = (
        f"{words} {used:.2f} GPU / ({gpus_per_replica} GPU × "
        f"{target_percent:g}% target) = {exact:.2f} → {needed}{bounded}"
    )
    if window and total_gpus_used is not None:
        reason += f"; all replicas use {total_gpus_used:.2f} GPU now"
    return replicas, reason


def replicas_per_shared_gpu(
    needed_bytes: int, gpu_memory_bytes: int | None, product: str | None
) -> tuple[int | None, str]:
    """⌊one GPU's memory ÷ per-replica need⌋, and why."""
    if gpu_memory_bytes is None:
        return None, "no node tells its GPU memory (nvidia.com/gpu.memory or the agent's NVML)"
    count = gpu_memory_bytes // needed_bytes if needed_bytes > 0 else 0
    name = f"one {product}" if product else "one GPU"
    return int(count), (
        f"{name} has {describe_bytes(gpu_memory_bytes)}: {describe_bytes(gpu_memory_bytes)} / "
        f"{describe_bytes(needed_bytes)} per replica = {count} replicas if it were shared"
    )


def _mig_order(profile: str, memory: int) -> tuple[int, int, str]:
    match = _MIG_PROFILE.match(profile)
    return memory, int(match.group(1)) if match else MIG_SLICES, profile


def smallest_mig_profile(
    needed_bytes: int, profiles: Mapping[str, int], gpus_used: float | None = None
) -> tuple[str | None, str]:
    """The profile with the least memory that holds ``needed_bytes``, and why."""
    if not profiles:
        return None, "no node offers MIG devices"
    ordered = sorted(profiles.items(), key=lambda item: _mig_order(*item))
    offered = ", ".join(f"{p} ({describe_bytes(m)})" for p, m in ordered)
    for profile, memory in ordered:
        if memory >= needed_bytes:
            reason = (
                f"{describe_bytes(needed_bytes)} per replica fits {profile} "
                f"({describe_bytes(memory)}), the smallest of {offered} that holds it"
            )
            match = _MIG_PROFILE.match(profile)
            if match and gpus_used is not None:
                compute = int(match.group(1)) / MIG_SLICES
                if gpus_used > compute:
                    reason += (
                        f"; but it has {match.group(1)}/{MIG_SLICES} of a GPU's compute and a "
                        f"replica uses {gpus_used:.2f} GPU: expect it slower there"
                    )
            return profile, reason
    return None, f"{describe_bytes(needed_bytes)} per replica fits none of {offered}"


@dataclass(frozen=True, slots=True)
class GpuNodeRoom:
    """One included node's free room for a GPU expert."""

    name: str
    gpus: NodeGpus
    requested: Mapping[str, int]
    """Devices already requested on the node, per resource."""
    free_cpu_millicores: int
    free_memory_kib: int
    free_gpu_memory: Sequence[int] = ()
    """Free memory of each physical GPU without MIG, from the agent (empty: no report)."""


def fit_gpu_replicas(
    resource: str,
    per_replica: int,
    needed_gpu_bytes: int | None,
    cpu_request_cores: float,
    memory_request_bytes: int,
    nodes: Iterable[GpuNodeRoom],
    *,
    max_listed: int = 20,
) -> tuple[int, list[GpuNodeFit], str]:
    """More replicas that fit, counting free devices, CPU, memory and shared GPU memory."""
    cpu_m = max(1, math.ceil(cpu_request_cores * 1000 - 1e-6))
    memory_k = max(1, math.ceil(memory_request_bytes / 1024))
    found: list[tuple[int, str, int, _Limit]] = []
    notes: list[str] = []
    total = 0
    for node in nodes:
        allocatable = node.gpus.allocatable.get(resource, 0)
        if allocatable <= 0:
            continue
        free = allocatable - node.requested.get(resource, 0)
        limited_by: _Limit = "gpu"
        replicas = free // per_replica if free > 0 else 0
        by_cpu = node.free_cpu_millicores // cpu_m
        if by_cpu < replicas:
            replicas, limited_by = by_cpu, "cpu"
        by_memory = node.free_memory_kib // memory_k
        if by_memory < replicas:
            replicas, limited_by = by_memory, "memory"
        if replicas > 0 and resource == GPU_RESOURCE and node.gpus.shared and needed_gpu_bytes:
            by_gpu_memory = replicas
            if node.gpus.sharing == "mps" and node.gpus.memory_bytes:
                slice_memory = node.gpus.memory_bytes // node.gpus.replicas
                if needed_gpu_bytes > slice_memory:
                    by_gpu_memory = 0
                    notes.append(
                        f"{node.name}: an MPS slice has {describe_bytes(slice_memory)}, "
                        f"a replica needs {describe_bytes(needed_gpu_bytes)}"
                    )
            elif node.free_gpu_memory and per_replica == 1:
                by_gpu_memory = sum(
                    free_bytes // needed_gpu_bytes for free_bytes in node.free_gpu_memory
                )
            if by_gpu_memory < replicas:
                replicas, limited_by = by_gpu_memory, "gpu-memory"
        if replicas > 0:
            total += replicas
            found.append((replicas, node.name, max(0, free), limited_by))
    found.sort(key=lambda f: (-f[0], f[1]))
    fits = [
        GpuNodeFit(node=name, replicas=replicas, freeGpus=free, limitedBy=limited_by)
        for replicas, name, free, limited_by in found[:max_listed]
    ]
    reason = (
        f"{total} more replicas on {len(found)} nodes: per node the least of free {resource} "
        f"÷ {per_replica}, free CPU ÷ {cpu_m}m, free memory ÷ {describe_bytes(memory_k * 1024)}"
    )
    if needed_gpu_bytes:
        reason += f", and on shared GPUs free GPU memory ÷ {describe_bytes(needed_gpu_bytes)}"
    if notes:
        reason += "; " + "; ".join(notes[:3])
    return total, fits[:max_listed], reason


_LIMITS: tuple[_Limit, ...] = ("gpu", "cpu", "memory", "gpu-memory")


class GpuFitArrays:
    """:func:`fit_gpu_replicas` over flat arrays: the nodes reduced once, then a few
    vectorised passes per request (the same answers; see ``test_recommend_gpu``).
    """

    def __init__(self, resource: str, nodes: Sequence[GpuNodeRoom]) -> None:
        chosen = [n for n in nodes if n.gpus.allocatable.get(resource, 0) > 0]
        self.resource = resource
        self.names = [n.name for n in chosen]
        self._free = np.array(
            [n.gpus.allocatable[resource] - n.requested.get(resource, 0) for n in chosen],
            dtype=np.int64,
        )
        self._cpu = np.array([n.free_cpu_millicores for n in chosen], dtype=np.int64)
        self._memory = np.array([n.free_memory_kib for n in chosen], dtype=np.int64)
        whole = resource == GPU_RESOURCE
        shared = [whole and n.gpus.shared for n in chosen]
        mps = [
            s and n.gpus.sharing == "mps" and bool(n.gpus.memory_bytes)
            for s, n in zip(shared, chosen, strict=True)
        ]
        self._mps_slice = np.array(
            [
                (n.gpus.memory_bytes or 0) // n.gpus.replicas if m else -1
                for m, n in zip(mps, chosen, strict=True)
            ],
            dtype=np.int64,
        )
        self._sliced = np.array(
            [
                s and not m and bool(n.free_gpu_memory)
                for s, m, n in zip(shared, mps, chosen, strict=True)
            ],
            dtype=bool,
        )
        width = max((len(n.free_gpu_memory) for n in chosen), default=0)
        self._gpu_free = np.zeros((len(chosen), max(width, 1)), dtype=np.int64)
        for row, node in enumerate(chosen):
            self._gpu_free[row, : len(node.free_gpu_memory)] = node.free_gpu_memory

    def solve(
        self,
        per_replica: int,
        needed_gpu_bytes: int | None,
        cpu_request_cores: float,
        memory_request_bytes: int,
        *,
        max_listed: int = 20,
    ) -> tuple[int, list[GpuNodeFit], str]:
        """The same as ``fit_gpu_replicas(self.resource, ...)`` over these nodes."""
        cpu_m = max(1, math.ceil(cpu_request_cores * 1000 - 1e-6))
        memory_k = max(1, math.ceil(memory_request_bytes / 1024))
        replicas = np.where(self._free > 0, self._free // per_replica, 0)
        limit = np.zeros(len(replicas), dtype=np.int64)
        for code, room, unit in ((1, self._cpu, cpu_m), (2, self._memory, memory_k)):
            by = room // unit
            tighter = by < replicas
            replicas = np.where(tighter, by, replicas)
            limit[tighter] = code
        notes: list[str] = []
        if needed_gpu_bytes:
            by_gpu_memory = replicas.copy()
            short = (self._mps_slice >= 0) & (needed_gpu_bytes > self._mps_slice) & (replicas > 0)
            by_gpu_memory[short] = 0
            if per_replica == 1:
                sliced = self._sliced & (replicas > 0)
                by_gpu_memory[sliced] = (self._gpu_free[sliced] // needed_gpu_bytes).sum(axis=1)
            tighter = by_gpu_memory < replicas
            replicas = np.where(tighter, by_gpu_memory, replicas)
            limit[tighter] = 3
            notes = [
                f"{self.names[i]}: an MPS slice has {describe_bytes(int(self._mps_slice[i]))}, "
                f"a replica needs {describe_bytes(needed_gpu_bytes)}"
                for i in np.flatnonzero(short)[:3]
            ]
        fitting = np.flatnonzero(replicas > 0)
        counts = replicas[fitting].tolist()
        order = sorted(range(len(fitting)), key=lambda k: (-counts[k], self.names[fitting[k]]))
        fits = [
            GpuNodeFit(
                node=self.names[fitting[k]],
                replicas=counts[k],
                freeGpus=max(0, int(self._free[fitting[k]])),
                limitedBy=_LIMITS[int(limit[fitting[k]])],
            )
            for k in order[:max_listed]
        ]
        total = int(replicas.sum())
        reason = (
            f"{total} more replicas on {len(fitting)} nodes: per node the least of free "
            f"{self.resource} ÷ {per_replica}, free CPU ÷ {cpu_m}m, free memory ÷ "
            f"{describe_bytes(memory_k * 1024)}"
        )
        if needed_gpu_bytes:
            reason += f", and on shared GPUs free GPU memory ÷ {describe_bytes(needed_gpu_bytes)}"
        if notes:
            reason += "; " + "; ".join(notes)
        return total, fits, reason


def _peak_reason(
    history: GpuHistory, peak: float, margin: float, needed: int, window: float
) -> str:
    span = "0s"
    if history.first_sample_at is not None and history.last_sample_at is not None:
        span = describe_duration((history.last_sample_at - history.first_sample_at).total_seconds())
    return (
        f"peak GPU memory within {describe_duration(window)} ({history.samples:,} samples over "
        f"{span}) = {describe_bytes(peak)}, +{margin:g}% margin = {describe_bytes(needed)}"
    )


def gpu_advice(
    *,
    requests: Mapping[str, int],
    history: GpuHistory,
    policy: GpuPolicy,
    now: datetime,
    window_seconds: float,
    percentile: float,
    current_replicas: int,
    replica_bounds: tuple[int, int],
    total_gpus_used: float | None,
    nodes: Sequence[GpuNodeRoom],
    load_percentile: float = 95.0,
    cpu_request_cores: float,
    memory_request_bytes: int,
    gpu_memory_bytes: int | None = None,
    gpu_product: str | None = None,
    fitter: Callable[[str, int, int | None, float, int], tuple[int, list[GpuNodeFit], str]]
    | None = None,
) -> GpuAdvice:
    """The expert's GPU advice: memory, use, replicas, sharing, MIG and fit, each with its reason.

    ``requests`` are the devices each replica asks for (:func:`gpu_requests`),
    ``total_gpus_used`` the GPU use of all its replicas now (the replicas
    follow the ``load_percentile`` of the history's total instead once it has
    samples, see :func:`record_total_gpu`), ``nodes`` the
    included nodes with GPUs, ``cpu_request_cores``/``memory_request_bytes``
    the recommended requests (fit must hold them too), ``gpu_memory_bytes``
    and ``gpu_product`` the GPU its replicas run on now, when known. ``fitter``
    solves the fit instead of :func:`fit_gpu_replicas` over ``nodes`` (the controller
    passes one solved over arrays and shared by the experts of a batch).
    """
    resource = GPU_RESOURCE if GPU_RESOURCE in requests else sorted(requests)[0]
    per_replica = requests[resource]
    peak = history.memory.peak(now, window_seconds)
    needed = math.ceil(peak * (1 + policy.memory_margin_percent / 100)) if peak > 0 else None
    memory_reason = (
        _peak_reason(history, peak, policy.memory_margin_percent, needed, window_seconds)
        if needed is not None
        else "no GPU memory samples in the window yet"
    )
    used = (
        history.utilization.percentile(percentile) if not history.utilization.is_empty() else None
    )
    replicas, replicas_reason = recommend_gpu_replicas(
        per_replica,
        total_gpus_used,
        policy.target_utilization_percent,
        current_replicas,
        replica_bounds,
        history.window_load(now, window_seconds, load_percentile),
    )
    advice = GpuAdvice(
        resource=resource,
        requestPerReplica=per_replica,
        memoryPeakBytes=math.ceil(peak) if peak > 0 else None,
        memoryNeededBytes=needed,
        memoryReason=memory_reason,
        utilizationPercent=(
            None if used is None else round(min(100.0, 100 * used / per_replica), 1)
        ),
        utilizationPercentile=percentile,
        targetUtilizationPercent=policy.target_utilization_percent,
        replicas=replicas,
        replicasReason=replicas_reason,
        samples=history.samples,
    )
    if used is not None:
        advice.memoryReason += (
            f"; GPU use p{percentile:g} of {history.utilization_samples:,} samples = "
            f"{used:.2f} GPU per replica"
        )
    if needed is None:
        advice.sharingReason = advice.migReason = "no GPU memory samples yet"
    else:
        memory, product = gpu_memory_bytes, gpu_product
        if memory is None:
            known = [n.gpus for n in nodes if n.gpus.memory_bytes]
            if known:
                memory, product = known[0].memory_bytes, known[0].product
        advice.replicasPerSharedGpu, advice.sharingReason = replicas_per_shared_gpu(
            needed, memory, product
        )
        profiles: dict[str, int] = {}
        for node in nodes:
            for profile, size in node.gpus.mig_memory.items():
                profiles[profile] = max(profiles.get(profile, 0), size)
        advice.smallestMigProfile, advice.migReason = smallest_mig_profile(needed, profiles, used)
    if fitter is None:
        solved = fit_gpu_replicas(
            resource, per_replica, needed, cpu_request_cores, memory_request_bytes, nodes
        )
    else:
        solved = fitter(resource, per_replica, needed, cpu_request_cores, memory_request_bytes)
    total, fits, fit_reason = solved[0], list(solved[1]), solved[2]
    advice.additionalReplicas, advice.nodes, advice.fitReason = total, fits, fit_reason
    return advice
