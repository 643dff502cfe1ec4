"""CapacityRecommendation: one per expert Deployment, written by the controller.

Namespaced, named after and owned by its Deployment. ``status`` carries the
current sizing, the recommendation with a reason for each figure, where more
replicas fit right now, the evidence, and a compact history that lets a
restarted controller carry on where it stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from headroom.api.common import (
    ApiModel,
    Bytes,
    Condition,
    Cores,
    Count,
    ObjectMeta,
    Percent,
)
from headroom.api.crdinfo import CrdInfo, PrinterColumn
from headroom.api.gpu import GpuAdvice, GpuUsageHistory
from headroom.api.histogram import DecayingHistogram

__all__ = [
    "CapacityRecommendation",
    "CapacityRecommendationSpec",
    "CapacityRecommendationStatus",
    "CurrentSizing",
    "DecayingHistogram",
    "Evidence",
    "ExcludedNode",
    "Fit",
    "NodeFit",
    "RecommendedSizing",
    "SizingPolicy",
    "TargetRef",
    "UsageHistory",
]


class TargetRef(ApiModel):
    """The expert workload this recommendation is for."""

    apiVersion: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: str = Field(min_length=1, max_length=253)


class SizingPolicy(ApiModel):
    """The effective policy: chart defaults overridden by the Deployment's annotations."""

    targetUtilizationPercent: Percent = Field(gt=0)
    cpuMarginPercent: float = Field(default=15.0, ge=0, le=1000)
    memoryMarginPercent: float = Field(default=15.0, ge=0, le=1000)
    minReplicas: Count = 1
    maxReplicas: Count = 100


class CurrentSizing(ApiModel):
    """What the Deployment asks for today (requests per pod, summed over containers)."""

    replicas: Count
    cpuRequestCores: Cores | None = None
    cpuRequest: str | None = Field(default=None, description="as a Kubernetes quantity")
    memoryRequestBytes: Bytes | None = None
    memoryRequest: str | None = Field(default=None, description="as a Kubernetes quantity")


class RecommendedSizing(ApiModel):
    """What Headroom recommends, each figure with the reason for it."""

    replicas: Count
    replicasReason: str
    cpuRequestCores: Cores
    cpuRequest: str
    cpuReason: str
    memoryRequestBytes: Bytes
    memoryRequest: str
    memoryReason: str


class NodeFit(ApiModel):
    """How many more replicas of the recommended size fit on one node."""

    node: str
    replicas: Count
    limitedBy: Literal["cpu", "memory"]


class ExcludedNode(ApiModel):
    """A node left out of fit, and why (stale report, cordoned, under pressure)."""

    node: str
    reason: str


class Fit(ApiModel):
    """Where more replicas fit right now."""

    additionalReplicas: Count
    nodes: list[NodeFit] = Field(
        default_factory=list, description="where most fit, most first (at most 20 listed)"
    )
    fittingNodeCount: Count = Field(
        default=0, description="nodes where at least one more replica fits, listed or not"
    )
    excludedNodes: list[ExcludedNode] = Field(
        default_factory=list, description="by name (at most 20 listed)"
    )
    excludedNodeCount: Count = Field(default=0, description="nodes left out, listed or not")


class Evidence(ApiModel):
    """What the figures rest on."""

    windowSeconds: Count
    halfLifeSeconds: Count | None = Field(default=None, description="of the samples' weights")
    samples: Count = Field(description="per-pod observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU")
    cpuPercentile: Percent
    memoryPercentile: Percent
    cpuUsageCores: Cores | None = Field(default=None, description="per-pod CPU at the percentile")
    memoryPeakBytes: Bytes | None = Field(default=None, description="per-pod memory peak")
    totalCpuUsageCores: Cores | None = Field(default=None, description="all replicas, latest")
    totalMemoryUsageBytes: Bytes | None = Field(default=None, description="all replicas, latest")
    firstSampleAt: datetime | None = None
    lastSampleAt: datetime | None = None


class UsageHistory(ApiModel):
    """Persisted usage summary: survives a controller restart."""

    cpu: DecayingHistogram
    memory: DecayingHistogram
    samples: Count = Field(default=0, description="per-pod observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU (not a pod's first)")
    firstSampleAt: datetime | None = None
    lastSampleAt: datetime | None = None
    gpu: GpuUsageHistory | None = Field(default=None, description="GP-004: GPU experts only")


class CapacityRecommendationSpec(ApiModel):
    """Set by the controller when it creates the recommendation."""

    targetRef: TargetRef


class CapacityRecommendationStatus(ApiModel):
    """The controller's latest recommendation and what it rests on."""

    observedGeneration: Count | None = None
    policy: SizingPolicy | None = None
    current: CurrentSizing | None = None
    recommended: RecommendedSizing | None = None
    fit: Fit | None = None
    evidence: Evidence | None = None
    history: UsageHistory | None = None
    gpu: GpuAdvice | None = Field(default=None, description="GP-004, GP-005: GPU experts only")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class CapacityRecommendation(ApiModel):
    """Sizing and placement advice for one expert Deployment."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="CapacityRecommendation",
        plural="capacityrecommendations",
        singular="capacityrecommendation",
        scope="Namespaced",
        short_names=("caprec",),
        printer_columns=(
            PrinterColumn("Replicas", "integer", ".status.current.replicas", "current"),
            PrinterColumn("Rec-Replicas", "integer", ".status.recommended.replicas"),
            PrinterColumn("CPU", "string", ".status.current.cpuRequest", "current request"),
            PrinterColumn("Rec-CPU", "string", ".status.recommended.cpuRequest"),
            PrinterColumn("Memory", "string", ".status.current.memoryRequest", "current request"),
            PrinterColumn("Rec-Memory", "string", ".status.recommended.memoryRequest"),
            PrinterColumn("Fits", "integer", ".status.fit.additionalReplicas", "more replicas"),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ),
    )

    apiVersion: Literal["headroom.dev/v1alpha1"] = "headroom.dev/v1alpha1"
    kind: Literal["CapacityRecommendation"] = "CapacityRecommendation"
    metadata: ObjectMeta
    spec: CapacityRecommendationSpec
    status: CapacityRecommendationStatus | None = None
