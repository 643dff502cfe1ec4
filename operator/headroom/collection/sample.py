"""One raw reading of a node, and the interface every reader implements.

A :class:`RawSample` holds counters, not rates: CPU utilisation and per-pod
CPU cores are derived from two samples (:mod:`headroom.collection.derive`),
so collecting never blocks to measure (FR-001, PR-001).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from headroom.collection.figures import ContainerLimits, DiskFigures, MemoryFigures, QosClass

if TYPE_CHECKING:
    from headroom.collection.gpu.figures import GpuSnapshot

__all__ = ["ContainerCounters", "CpuTimes", "NodeReader", "PodCounters", "RawSample"]


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative CPU seconds of the whole node, summed over logical CPUs."""

    busy: float
    total: float


@dataclass(frozen=True, slots=True)
class ContainerCounters:
    """Cumulative CPU and current memory of one container cgroup below a pod's."""

    id: str
    """The runtime's container ID, cut to its first 12 characters (``docker ps``'s short ID)."""
    cpu_usage_seconds: float
    memory_working_set_bytes: int


@dataclass(frozen=True, slots=True)
class PodCounters:
    """Cumulative CPU and current memory of one pod's cgroup (and of its containers')."""

    uid: str
    qos_class: QosClass
    cpu_usage_seconds: float
    memory_working_set_bytes: int
    containers: tuple[ContainerCounters, ...] = ()


@dataclass(frozen=True, slots=True)
class RawSample:
    """Everything read in one collection cycle."""

    monotonic: float
    cpu_times: CpuTimes
    logical_cores: int
    physical_cores: int | None
    memory: MemoryFigures
    disks: tuple[DiskFigures, ...]
    pods: tuple[PodCounters, ...] = ()
    agent_container: ContainerLimits | None = None
    warnings: tuple[str, ...] = field(default=())
    gpus: GpuSnapshot | None = None
    """NVML's figures (GP-001); None where the node has no NVML."""


class NodeReader(Protocol):
    """Reads one :class:`RawSample`; implemented over the OS or over recordings."""

    def read(self) -> RawSample:
        """Take one reading now. Never raises for a bad disk path (HR-003)."""
        ...
