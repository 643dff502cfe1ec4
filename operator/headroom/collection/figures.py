"""A ResourceReport's status as plain slotted dataclasses: the agent's steady-state shapes.

The pydantic models in :mod:`headroom.api.resourcereport` stay the single
source of truth of the API (the CRDs are generated from them). The agent's
process does not import pydantic at all: pydantic and the compiled API models
cost it ~13 MB of RSS, a third of its 30 MB budget (PR-002), and validating
every cycle's status cost CPU it does not need (PR-003). So collection fills
these dataclasses, which mirror the models field for field (camelCase, as on
the wire), and :meth:`ReportStatus.to_wire` builds the JSON the models'
``to_wire()`` would. ``tests/unit/test_figures_drift.py`` keeps the two
together: the same fields, and every status the agent can build validates
against ``ResourceReportStatus`` and the generated CRD schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from headroom.collection.gpu.figures import GpuFigures, GpuSummary, PodGpuUsage

__all__ = [
    "Condition",
    "ContainerLimits",
    "ContainerUsage",
    "CpuFigures",
    "DiskFigures",
    "MemoryFigures",
    "PodUsage",
    "QosClass",
    "ReportStatus",
    "wire_time",
]

QosClass = Literal["Guaranteed", "Burstable", "BestEffort"]


def wire_time(moment: datetime) -> str:
    """RFC 3339 the way pydantic writes an aware datetime (UTC as ``Z``)."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _wire(value: Any) -> Any:
    """JSON types, ``None`` fields left out (the models' ``exclude_none``)."""
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {
            f.name: _wire(item)
            for f in fields(value)
            if (item := getattr(value, f.name)) is not None
        }
    return value


class _Wire:
    __slots__ = ()

    def to_wire(self) -> dict[str, Any]:
        """This object as the API server gets it (JSON types, absent optionals left out)."""
        wire: dict[str, Any] = _wire(self)
        return wire


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuFigures(_Wire):
    """FR-001..FR-003 (mirrors ``headroom.api.CpuFigures``)."""

    utilizationPercent: float
    physicalCores: int | None = None
    logicalCores: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryFigures(_Wire):
    """FR-004 (mirrors ``headroom.api.MemoryFigures``)."""

    totalBytes: int
    availableBytes: int
    usedBytes: int
    usedPercent: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskFigures(_Wire):
    """FR-005 for one path, or ``error`` (HR-003) (mirrors ``headroom.api.DiskFigures``)."""

    path: str
    totalBytes: int | None = None
    usedBytes: int | None = None
    freeBytes: int | None = None
    usedPercent: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerUsage(_Wire):
    """One container's usage (mirrors ``headroom.api.ContainerUsage``)."""

    id: str
    cpuCores: float | None = None
    memoryBytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PodUsage(_Wire):
    """One pod's usage (mirrors ``headroom.api.PodUsage``)."""

    uid: str
    qosClass: QosClass
    cpuCores: float | None = None
    memoryBytes: int
    containers: list[ContainerUsage] | None = None
    gpu: PodGpuUsage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerLimits(_Wire):
    """The agent container's own limits (mirrors ``headroom.api.ContainerLimits``)."""

    cgroupVersion: Literal["v1", "v2"] | None = None
    cpuLimitCores: float | None = None
    memoryLimitBytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition(_Wire):
    """A Kubernetes-style condition (mirrors ``headroom.api.Condition``)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: datetime | None = None
    observedGeneration: int | None = None


@dataclass(slots=True, kw_only=True)
class ReportStatus(_Wire):
    """Everything one collection found (mirrors ``headroom.api.ResourceReportStatus``)."""

    collectedAt: datetime
    agentVersion: str
    heartbeatSeconds: int
    cpu: CpuFigures
    memory: MemoryFigures
    disks: list[DiskFigures] = field(default_factory=list)
    diskMaxUsedPercent: float | None = None
    podCount: int = 0
    pods: list[PodUsage] = field(default_factory=list)
    agentContainer: ContainerLimits | None = None
    conditions: list[Condition] = field(default_factory=list)
    gpus: list[GpuFigures] | None = None
    gpuSummary: GpuSummary | None = None
