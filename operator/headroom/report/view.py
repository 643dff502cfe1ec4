"""What ``headroom report`` shows: the view model, and the stable shape of ``-o json|yaml``.

One :class:`ClusterReport` per run. Every field is always present (``null``
when unknown) so scripts can rely on the keys; new fields may be added, none
renamed or removed without bumping ``version``. CPU is in cores, memory in
bytes, times are RFC 3339 UTC. The per-expert sizing and fit reuse the
CapacityRecommendation's own models (``headroom.api``), so they read the same
as ``kubectl get caprec -o yaml``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from headroom.api.capacityrecommendation import (
    CapacityRecommendationStatus,
    CurrentSizing,
    Fit,
    RecommendationColumns,
    RecommendedSizing,
)
from headroom.api.containersizing import ContainerSizing, PodLevelRecommendation
from headroom.api.gpu import GpuAdvice

__all__ = ["ClusterReport", "DiskView", "ExpertView", "GpuNodeView", "NodeView", "Summary"]


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiskView(_View):
    """The fullest measured path of a node (FR-005)."""

    path: str
    usedPercent: float


class GpuNodeView(_View):
    """A node's GPUs (GP-001, GP-005): devices the scheduler counts, and what NVML measured."""

    allocatable: dict[str, int] = Field(description="GPU resource → devices allocatable")
    requested: dict[str, int] = Field(description="GPU resource → devices requested by pods here")
    allocatableDevices: int
    requestedDevices: int
    gpus: int | None = Field(default=None, description="physical GPUs the agent read")
    memoryTotalBytes: int | None = None
    memoryUsedBytes: int | None = None
    utilizationPercent: float | None = Field(default=None, description="mean over its GPUs")
    errors: int = Field(default=0, description="GPUs the agent could not read")


class NodeView(_View):
    """One node: what the scheduler sees, what the agent measured, what is left (FR-007)."""

    name: str
    ready: bool | None = Field(description="the Node's Ready condition; null: no Node object")
    schedulable: bool | None = Field(description="false when cordoned; null: no Node object")
    allocatableCpuCores: float | None
    allocatableMemoryBytes: int | None
    requestedCpuCores: float = Field(description="sum of the requests of the pods bound here")
    requestedMemoryBytes: int
    pods: int = Field(description="pods bound here, neither Succeeded nor Failed")
    usedCpuCores: float | None = Field(description="logical cores × utilisation (the report)")
    usedMemoryBytes: int | None = Field(description="the node's used memory (the report)")
    cpuUtilizationPercent: float | None
    memoryUsedPercent: float | None
    freeCpuCores: float | None = Field(
        description="the tighter of allocatable − requested and idle CPU, as fit counts it"
    )
    freeMemoryBytes: int | None = Field(
        description="the tighter of allocatable − requested and available memory"
    )
    fullestDisk: DiskView | None
    reportedAt: datetime | None
    reportAgeSeconds: float | None
    stale: bool = Field(description="the report missed 3 heartbeats (CT-002)")
    notes: list[str] = Field(description="why fit leaves the node out, and other problems")
    gpu: GpuNodeView | None = Field(default=None, description="null: no GPU on the node")


class ExpertView(_View):
    """One expert Deployment: current vs recommended, and where more replicas fit."""

    namespace: str
    name: str
    current: CurrentSizing | None
    recommended: RecommendedSizing | None
    fit: Fit | None
    conditions: dict[str, str] = Field(description="condition type → status")
    message: str | None = Field(description="why there is no recommendation yet, if so")
    containers: list[ContainerSizing] | None = Field(
        default=None, description="each container: current and recommended, OOM kills"
    )
    podLevel: PodLevelRecommendation | None = Field(
        default=None, description="pod-level spec.resources: their current and recommended limits"
    )
    gpu: GpuAdvice | None = Field(default=None, description="null: the expert requests no GPU")
    columns: RecommendationColumns | None = Field(
        default=None,
        description="the recommended figures as kubectl's REC columns show them: "
        "~ provisional (not Confident yet), hpa:min-max where an HPA owns the replicas",
    )

    def status(self) -> CapacityRecommendationStatus:
        """The recommendation's status as far as this view holds it (for the exports)."""
        return CapacityRecommendationStatus(
            current=self.current,
            recommended=self.recommended,
            fit=self.fit,
            containers=self.containers,
            podLevel=self.podLevel,
            gpu=self.gpu,
        )


class Summary(_View):
    """Totals over the nodes and experts shown."""

    nodes: int
    staleNodes: int
    allocatableCpuCores: float
    requestedCpuCores: float
    usedCpuCores: float
    allocatableMemoryBytes: int
    requestedMemoryBytes: int
    usedMemoryBytes: int
    experts: int
    expertsWithRecommendation: int
    additionalReplicas: int = Field(description="sum over experts of how many more fit now")


class ClusterReport(_View):
    """The whole picture, as read at ``readAt`` (``headroom report -o json``)."""

    kind: Literal["HeadroomReport"] = "HeadroomReport"
    version: Literal[1] = 1
    readAt: datetime
    nodeSelector: str | None = None
    namespace: str | None = None
    summary: Summary
    nodes: list[NodeView]
    experts: list[ExpertView]
