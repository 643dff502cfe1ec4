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

    apiVersion: Literal["apps/v1"] = Field(default="apps/v1", description="always `apps/v1`")
    kind: Literal["Deployment"] = Field(default="Deployment", description="always `Deployment`")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="the Deployment's name, in this namespace (the recommendation's name too)",
    )


class SizingPolicy(ApiModel):
    """The effective policy: chart defaults overridden by the Deployment's annotations."""

    targetUtilizationPercent: Percent = Field(
        gt=0,
        description="the share of its CPU request each replica should use on average "
        "(`headroom.dev/target-utilization`)",
    )
    cpuMarginPercent: float = Field(
        default=15.0,
        ge=0,
        le=1000,
        description="added to the CPU percentile (`headroom.dev/cpu-margin`)",
    )
    memoryMarginPercent: float = Field(
        default=15.0,
        ge=0,
        le=1000,
        description="added to the memory peak (`headroom.dev/memory-margin`)",
    )
    minReplicas: Count = Field(
        default=1, description="the fewest replicas recommended (`headroom.dev/min-replicas`)"
    )
    maxReplicas: Count = Field(
        default=100, description="the most replicas recommended (`headroom.dev/max-replicas`)"
    )


class CurrentSizing(ApiModel):
    """What the Deployment asks for today (requests per pod, as the scheduler counts them)."""

    replicas: Count = Field(description="the Deployment's `spec.replicas` (1 when unset)")
    cpuRequestCores: Cores | None = Field(
        default=None,
        description="CPU per pod as the scheduler counts it (init containers, sidecars, "
        "pod-level resources, overhead); absent when nothing requests CPU",
    )
    cpuRequest: str | None = Field(default=None, description="as a Kubernetes quantity")
    memoryRequestBytes: Bytes | None = Field(
        default=None,
        description="memory per pod as the scheduler counts it; "
        "absent when nothing requests memory",
    )
    memoryRequest: str | None = Field(default=None, description="as a Kubernetes quantity")


class RequestBounds(ApiModel):
    """How far the per-pod requests may be off, given how much history there is.

    Wide while history is short, narrow as it grows (see ``status.confidence``
    and :mod:`headroom.recommend.confidence`).
    """

    factor: float = Field(ge=1, description="upper = recommended × factor (lower: ÷, see doc)")
    cpuLowerCores: Cores = Field(
        description="the recommended CPU request ÷ factor, rounded up, "
        "not below the minimum request"
    )
    cpuLower: str = Field(description="the same, as a Kubernetes quantity")
    cpuUpperCores: Cores = Field(
        description="the recommended CPU request × factor, rounded up, "
        "not above the maximum request"
    )
    cpuUpper: str = Field(description="the same, as a Kubernetes quantity")
    memoryLowerBytes: Bytes = Field(
        description="the recommended memory request ÷ factor, rounded up, "
        "never below the per-pod peak seen nor the minimum request"
    )
    memoryLower: str = Field(description="the same, as a Kubernetes quantity")
    memoryUpperBytes: Bytes = Field(
        description="the recommended memory request × factor, rounded up, "
        "not above the maximum request"
    )
    memoryUpper: str = Field(description="the same, as a Kubernetes quantity")


class HpaAdvice(ApiModel):
    """What to set on the HorizontalPodAutoscaler that owns the Deployment's replicas."""

    name: str = Field(description="the autoscaling/v2 HorizontalPodAutoscaler")
    currentMinReplicas: Count = Field(description="the HPA's `spec.minReplicas` (1 when unset)")
    currentMaxReplicas: Count = Field(description="the HPA's `spec.maxReplicas`")
    minReplicas: Count = Field(
        description="the `minReplicas` to set: for the window's trough of total CPU, "
        "raised to a PodDisruptionBudget's floor where that fits"
    )
    maxReplicas: Count = Field(
        description="the `maxReplicas` to set: for the window's peak of total CPU, "
        "at least `minReplicas`"
    )
    minReplicasReason: str = Field(description="how `minReplicas` was reached")
    maxReplicasReason: str = Field(description="how `maxReplicas` was reached")
    targetCPUUtilizationPercent: float | None = Field(
        default=None,
        ge=0,
        description="the HPA's CPU `Utilization` target; absent when it has none "
        "(an `AverageValue` target, or other metrics only)",
    )
    targetAgrees: bool | None = Field(
        default=None,
        description="whether the HPA's CPU target and the recommended CPU request agree",
    )
    targetReason: str = Field(
        default="", description="why the HPA's CPU target agrees with the request or not"
    )


class RecommendedSizing(ApiModel):
    """What Headroom recommends, each figure with the reason for it."""

    replicas: Count = Field(
        description="for the window's total CPU at the target utilisation, within the policy's "
        "min/max, raised to a PodDisruptionBudget's floor where that fits; "
        "the current count before any CPU sample"
    )
    replicasReason: str = Field(description="how `replicas` was reached, figures included")
    cpuRequestCores: Cores = Field(
        description="per pod: the percentile of per-pod CPU plus the CPU margin, rounded up "
        "and held within the request bounds; the current request before any sample"
    )
    cpuRequest: str = Field(description="the same, as a Kubernetes quantity")
    cpuReason: str = Field(description="how the CPU request was reached, figures included")
    memoryRequestBytes: Bytes = Field(
        description="per pod: the working-set peak in the window plus the memory margin, "
        "rounded up and held within the request bounds (the current request before any "
        "sample); raised after an OOM kill at a pod-level limit"
    )
    memoryRequest: str = Field(description="the same, as a Kubernetes quantity")
    memoryReason: str = Field(description="how the memory request was reached, figures included")
    bounds: RequestBounds | None = None
    hpa: HpaAdvice | None = Field(
        default=None,
        description="set when an HPA owns replicas: then apply its min/max, not `replicas`",
    )


class NodeFit(ApiModel):
    """How many more replicas of the recommended size fit on one node."""

    node: str = Field(description="the Node's name")
    replicas: Count = Field(description="more replicas of the recommended requests that fit on it")
    limitedBy: Literal["cpu", "memory"] = Field(
        description="the resource that runs out first (`cpu` on a tie)"
    )


class ExcludedNode(ApiModel):
    """A node left out of fit, and why (stale report, cordoned, under pressure)."""

    node: str = Field(description="the Node's name")
    reason: str = Field(
        description="every reason, `; `-joined: `no ResourceReport`, `stale report: …`, "
        "`cordoned`, `not Ready`, `under <pressure>`"
    )


class Fit(ApiModel):
    """Where more replicas fit right now."""

    additionalReplicas: Count = Field(
        description="more replicas of the recommended requests that fit now, all nodes together"
    )
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
    percentile: Percent = Field(description="the percentile of total CPU that replicas follow")
    percentileCores: Cores | None = Field(default=None, description="total CPU at the percentile")
    lowPercentile: Percent = Field(
        description="the lower one, which an HPA's `minReplicas` follows (the window's trough)"
    )
    lowPercentileCores: Cores | None = Field(default=None, description="total CPU at the low one")
    peakCores: Cores | None = Field(default=None, description="highest total within the window")


class Evidence(ApiModel):
    """What the figures rest on."""

    windowSeconds: Count = Field(
        description="how far back the memory peak, the load and OOM kills count"
    )
    halfLifeSeconds: Count | None = Field(default=None, description="of the samples' weights")
    samples: Count = Field(description="per-pod observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU")
    cpuPercentile: Percent = Field(
        description="the percentile of per-pod CPU samples the CPU request is taken at"
    )
    memoryPercentile: Percent = Field(description="always 100: memory is sized from the peak")
    cpuUsageCores: Cores | None = Field(default=None, description="per-pod CPU at the percentile")
    memoryPeakBytes: Bytes | None = Field(default=None, description="per-pod memory peak")
    totalCpuUsageCores: Cores | None = Field(default=None, description="all replicas, latest")
    totalMemoryUsageBytes: Bytes | None = Field(default=None, description="all replicas, latest")
    firstSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the first observation"
    )
    lastSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the latest observation"
    )
    load: LoadEvidence | None = None
    pdb: str | None = Field(default=None, description="the PodDisruptionBudget counted, if any")


class UsageHistory(ApiModel):
    """Persisted usage summary: survives a controller restart."""

    cpu: DecayingHistogram = Field(description="per-pod CPU samples, in cores")
    memory: DecayingHistogram = Field(description="per-pod working-set samples, in bytes")
    samples: Count = Field(default=0, description="per-pod observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU (not a pod's first)")
    firstSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the first observation"
    )
    lastSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the latest observation"
    )
    containers: list[ContainerHistory] | None = Field(
        default=None,
        description="each container's own history, by name",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    totalCpu: DecayingHistogram | None = Field(
        default=None, description="the expert's total CPU, sampled at a fixed cadence"
    )
    totalCpuSamples: Count = Field(default=0, description="samples added to `totalCpu`")
    lastTotalCpuAt: datetime | None = Field(
        default=None, description="when the controller last added one (its clock)"
    )
    gpu: GpuUsageHistory | None = Field(default=None, description="GP-004: GPU experts only")


class ContainerHistory(ApiModel):
    """One container's persisted usage summary (per container name)."""

    name: str = Field(
        min_length=1, max_length=253, description="the container's name in the pod template"
    )
    cpu: DecayingHistogram = Field(description="its CPU samples, in cores")
    memory: DecayingHistogram = Field(description="its working-set samples, in bytes")
    samples: Count = Field(default=0, description="its observations (memory)")
    cpuSamples: Count = Field(default=0, description="of which with CPU (not its first cycle)")
    firstSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the first observation"
    )
    lastSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the latest observation"
    )


class Confidence(ApiModel):
    """How much history the recommendation rests on (the ``Confident`` condition's figures)."""

    historySeconds: Count = Field(description="from the first to the last sample")
    historySpan: str = Field(description="the same, as a person reads it")
    days: float = Field(ge=0, description="min(history span, samples ÷ 1,440) in days (as VPA)")
    confident: bool = Field(
        description="whether `days` covers `confidentAfterSeconds` (the `Confident` condition)"
    )
    confidentAfterSeconds: Count = Field(
        description="how much history a recommendation needs to be confident"
    )


class RecommendationColumns(ApiModel):
    """The REC columns of ``kubectl get caprec``: figures, ``~`` while provisional."""

    replicas: str = Field(description="`3`, `~3` provisional, `hpa:2-6` when an HPA owns them")
    cpuRequest: str = Field(
        description="the recommended CPU request, `~` before it while provisional"
    )
    memoryRequest: str = Field(
        description="the recommended memory request, `~` before it while provisional"
    )


class CapacityRecommendationSpec(ApiModel):
    """Set by the controller when it creates the recommendation."""

    targetRef: TargetRef


class CapacityRecommendationStatus(ApiModel):
    """The controller's latest recommendation and what it rests on."""

    observedGeneration: Count | None = Field(
        default=None,
        description="the Deployment's `metadata.generation` this was computed from "
        "(not this object's)",
    )
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
        description="`PolicyValid` (the annotations are valid), `Ready` (usage seen), "
        "`Confident` (history long enough)",
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
