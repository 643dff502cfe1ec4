"""GPU figures of a ResourceReport as plain slotted dataclasses (mirrors ``headroom.api.gpu``).

Like :mod:`headroom.collection.figures`, these keep pydantic out of the agent's
process (PR-002); ``tests/unit/test_figures_drift.py`` keeps them field for
field with the API models. Every list and optional figure defaults to None, so
a node without GPUs writes no ``gpus`` key at all and a pod that uses no GPU
no ``gpu`` key (GP-003).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headroom.collection.figures import _Wire

__all__ = [
    "GpuFigures",
    "GpuSnapshot",
    "GpuSummary",
    "MigDeviceFigures",
    "PodGpuDevice",
    "PodGpuUsage",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MigDeviceFigures(_Wire):
    """One MIG device of a GPU in MIG mode (mirrors ``headroom.api.MigDeviceFigures``)."""

    index: int
    uuid: str | None = None
    profile: str | None = None
    gpuInstanceId: int | None = None
    computeInstanceId: int | None = None
    memoryTotalBytes: int | None = None
    memoryUsedBytes: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuFigures(_Wire):
    """One physical GPU of the node (mirrors ``headroom.api.GpuFigures``)."""

    index: int
    uuid: str | None = None
    name: str | None = None
    memoryTotalBytes: int | None = None
    memoryUsedBytes: int | None = None
    memoryUsedPercent: float | None = None
    utilizationPercent: float | None = None
    memoryUtilizationPercent: float | None = None
    migMode: Literal["Enabled", "Disabled"] | None = None
    migDevices: list[MigDeviceFigures] | None = None
    processCount: int | None = None
    xids: list[int] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSummary(_Wire):
    """What ``kubectl get rr`` shows of the GPUs (mirrors ``headroom.api.GpuSummary``)."""

    count: int
    memoryMaxUsedPercent: float | None = None
    utilizationMaxPercent: float | None = None
    errors: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PodGpuDevice(_Wire):
    """A pod's use of one GPU or MIG device (mirrors ``headroom.api.PodGpuDevice``)."""

    uuid: str
    gpuIndex: int
    migProfile: str | None = None
    memoryBytes: int | None = None
    utilizationPercent: float | None = None
    processes: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PodGpuUsage(_Wire):
    """A pod's GPU use, summed over its processes (mirrors ``headroom.api.PodGpuUsage``)."""

    memoryBytes: int | None = None
    """All its processes' GPU memory; absent where NVML could tell none of them."""
    devices: list[PodGpuDevice] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    """What one GPU reading found: the GPUs, each pod's use, and warnings."""

    gpus: tuple[GpuFigures, ...]
    pods: dict[str, PodGpuUsage] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def summary(self) -> GpuSummary:
        """The node-level figures for the printer columns."""
        used = [g.memoryUsedPercent for g in self.gpus if g.memoryUsedPercent is not None]
        busy = [g.utilizationPercent for g in self.gpus if g.utilizationPercent is not None]
        return GpuSummary(
            count=len(self.gpus),
            memoryMaxUsedPercent=max(used) if used else None,
            utilizationMaxPercent=max(busy) if busy else None,
            errors=sum(1 for g in self.gpus if g.error is not None),
        )
