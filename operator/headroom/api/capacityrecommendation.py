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
from headroom.api.containersizing import ContainerSizing, PodLevelRecommendation
from headroom.api.crdinfo import CrdInfo, PrinterColumn
from headroom.api.gpu import GpuAdvice, GpuUsageHistory
from headroom.api.histogram import DecayingHistogram

__all__ = [
    "CapacityRecommendation",
    "CapacityRecommendationSpec",
    "CapacityRecommendationStatus",
    "Confidence",
    "ContainerHistory",
    "CurrentSizing",
    "DecayingHistogram",
    "Evidence",
    "ExcludedNode",
    "Fit",
    "HpaAdvice",
    "LoadEvidence",
    "NodeFit",
    "RecommendationColumns",
    "RecommendedSizing",
    "RequestBounds",
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


class RequestBounds(ApiModel):
    """How far the per-pod requests may be off, given how much history there is.

    Wide while history is short, narrow as it grows (see ``status.confidence``
    and :mod:`headroom.recommend.confidence`).
    """

    factor: float = Field(ge=1, description="upper = recommended × factor (lower: ÷, see doc)")
    cpuLowerCores: Cores
    cpuLower: str
    cpuUpperCores: Cores
    cpuUpper: str
    memoryLowerBytes: Bytes
    memoryLower: str
    memoryUpperBytes: Bytes
    memoryUpper: str


class HpaAdvice(ApiModel):
    """What to set on the HorizontalPodAutoscaler that owns the Deployment's replicas."""

    name: str = Field(description="the autoscaling/v2 HorizontalPodAutoscaler")
    currentMinReplicas: Count
    currentMaxReplicas: Count
    minReplicas: Count
    maxReplicas: Count
    minReplicasReason: str
    maxReplicasReason: str
    targetCPUUtilizationPercent: float | None = Field(
        default=None, ge=0, description="the HPA's CPU target; absent when it scales on others"
    )
    targetAgrees: bool | None = Field(
        default=None,
        description="whether the HPA's CPU target and the recommended CPU request agree",
    )
    targetReason: str = ""


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
    bounds: RequestBounds | None = None
    hpa: HpaAdvice | None = Field(
        default=None,
        description="set when an HPA owns replicas: then apply its min/max, not `replicas`",
    )


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


class LoadEvidence(ApiModel):
    """The expert's total CPU (all replicas together) over the window: what replicas follow."""

    samples: Count = Field(description="total-CPU samples in the history")
    percentile: Percent
    percentileCores: Cores | None = Field(default=None, description="total CPU at the percentile")
    lowPercentile: Percent
    lowPercentileCores: Cores | None = Field(default=None, description="total CPU at the low one")
    peakCores: Cores | None = Field(default=None, description="highest total within the window")


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
    load: LoadEvidence | None = None
    pdb: str | None = Field(default=None, description="the PodDisruptionBudget counted, if any")


class UsageHistory(ApiModel):
    """Persisted usage summary: survives a controller restart."""

    cpu: DecayingHistogram
    memory: DecayingHistogram
    samples: Count = Field(default=0, description="per-pod observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU (not a pod's first)")
    firstSampleAt: datetime | None = None
    lastSampleAt: datetime | None = None
    containers: list[ContainerHistory] | None = Field(
        default=None,
        description="each container's own history, by name",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    totalCpu: DecayingHistogram | None = Field(
        default=None, description="the expert's total CPU, sampled at a fixed cadence"
    )
    totalCpuSamples: Count = 0
    lastTotalCpuAt: datetime | None = None
    gpu: GpuUsageHistory | None = Field(default=None, description="GP-004: GPU experts only")


class ContainerHistory(ApiModel):
    """One container's persisted usage summary (per container name)."""

    name: str = Field(min_length=1, max_length=253)
    cpu: DecayingHistogram
    memory: DecayingHistogram
    samples: Count = 0
    cpuSamples: Count = 0
    firstSampleAt: datetime | None = None
    lastSampleAt: datetime | None = None


class Confidence(ApiModel):
    """How much history the recommendation rests on (the ``Confident`` condition's figures)."""

    historySeconds: Count = Field(description="from the first to the last sample")
    historySpan: str = Field(description="the same, as a person reads it")
    days: float = Field(ge=0, description="min(history span, samples ÷ 1,440) in days (as VPA)")
    confident: bool
    confidentAfterSeconds: Count


class RecommendationColumns(ApiModel):
    """The REC columns of ``kubectl get caprec``: figures, ``~`` while provisional."""

    replicas: str = Field(description="`3`, `~3` provisional, `hpa:2-6` when an HPA owns them")
    cpuRequest: str
    memoryRequest: str


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
    containers: list[ContainerSizing] | None = Field(
        default=None,
        description="each container of the template, sized on its own",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    podLevel: PodLevelRecommendation | None = Field(
        default=None, description="only for a Deployment with pod-level spec.resources"
    )
    confidence: Confidence | None = None
    columns: RecommendationColumns | None = None
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
            PrinterColumn(
                "Rec-Replicas",
                "string",
                ".status.columns.replicas",
                "recommended; ~ provisional (not Confident yet); hpa:min-max when an HPA owns them",
            ),
            PrinterColumn("CPU", "string", ".status.current.cpuRequest", "current request"),
            PrinterColumn(
                "Rec-CPU", "string", ".status.columns.cpuRequest", "recommended; ~ provisional"
            ),
            PrinterColumn("Memory", "string", ".status.current.memoryRequest", "current request"),
            PrinterColumn(
                "Rec-Memory",
                "string",
                ".status.columns.memoryRequest",
                "recommended; ~ provisional",
            ),
            PrinterColumn(
                "History",
                "string",
                ".status.confidence.historySpan",
                "span of the usage history",
                priority=1,
            ),
            PrinterColumn("Fits", "integer", ".status.fit.additionalReplicas", "more replicas"),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ),
    )

    apiVersion: Literal["headroom.dev/v1alpha1"] = "headroom.dev/v1alpha1"
    kind: Literal["CapacityRecommendation"] = "CapacityRecommendation"
    metadata: ObjectMeta
    spec: CapacityRecommendationSpec
    status: CapacityRecommendationStatus | None = None


UsageHistory.model_rebuild()
