"""Per-container sizing in a CapacityRecommendation: what each container asks, what it should.

Requests are set per container, so a pod-level figure cannot be pasted into a
manifest for an expert with a sidecar. ``status.containers`` lists every
container of the Deployment's template (regular containers and native
sidecars, the init containers with ``restartPolicy: Always``) with its
current resources, its recommendation (each figure with its reason) and the
OOM kills seen; its usage history is kept beside the pod total's
(``status.history.containers``). ``status.podLevel`` is there only for
a Deployment that sets pod-level ``spec.resources``: then the pod total in
``status.recommended`` is what to set, with the limits here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from headroom.api.common import ApiModel, Bytes, Cores, Count

__all__ = [
    "ContainerRecommendation",
    "ContainerResources",
    "ContainerSizing",
    "OomKills",
    "PodLevelRecommendation",
]


class ContainerResources(ApiModel):
    """A container's (or the pod's) resources as the Deployment's template sets them."""

    cpuRequestCores: Cores | None = Field(
        default=None,
        description="the CPU request (the limit where only a limit is set); absent when neither",
    )
    cpuRequest: str | None = Field(default=None, description="the same, as a Kubernetes quantity")
    memoryRequestBytes: Bytes | None = Field(
        default=None,
        description="the memory request (the limit where only a limit is set); absent when neither",
    )
    memoryRequest: str | None = Field(
        default=None, description="the same, as a Kubernetes quantity"
    )
    cpuLimitCores: Cores | None = Field(default=None, description="the CPU limit; absent when none")
    cpuLimit: str | None = Field(default=None, description="the same, as a Kubernetes quantity")
    memoryLimitBytes: Bytes | None = Field(
        default=None, description="the memory limit; absent when none"
    )
    memoryLimit: str | None = Field(default=None, description="the same, as a Kubernetes quantity")


class OomKills(ApiModel):
    """OOM kills of one container seen in its Pods' status (kept across restarts)."""

    count: Count = Field(description="kills counted since the recommendation was created")
    lastKilledAt: datetime = Field(description="when the last one ended the container")
    limitBytes: Bytes | None = Field(
        default=None, description="the memory limit it was killed at; absent when unlimited"
    )


class ContainerRecommendation(ApiModel):
    """What Headroom recommends for one container, each figure with its reason.

    ``cpuLimit`` is absent when no CPU limit is recommended (the current one,
    if any, is left as it is).
    """

    cpuRequestCores: Cores = Field(
        description="the percentile of the container's CPU samples plus the CPU margin, "
        "rounded up and held within the request bounds; the current request before any sample"
    )
    cpuRequest: str = Field(description="the same, as a Kubernetes quantity")
    cpuReason: str = Field(description="how the CPU request was reached, figures included")
    cpuLimitCores: Cores | None = Field(
        default=None,
        description="set only where the current CPU limit is below the recommended request: "
        "then the request",
    )
    cpuLimit: str | None = Field(default=None, description="the same, as a Kubernetes quantity")
    cpuLimitReason: str = Field(description="why none is recommended, or why this one")
    memoryRequestBytes: Bytes = Field(
        description="the container's working-set peak in the window plus the memory margin, "
        "rounded up and held within the request bounds (the current request before any "
        "sample); raised after an OOM kill at its own limit within the window"
    )
    memoryRequest: str = Field(description="the same, as a Kubernetes quantity")
    memoryReason: str = Field(description="how the memory request was reached, figures included")
    memoryLimitBytes: Bytes = Field(description="equal to the recommended memory request")
    memoryLimit: str = Field(description="the same, as a Kubernetes quantity")
    memoryLimitReason: str = Field(description="why the limit equals the request")


class ContainerSizing(ApiModel):
    """One container of the expert: current resources, recommendation, evidence, history."""

    name: str = Field(
        min_length=1, max_length=253, description="the container's name in the pod template"
    )
    sidecar: bool = Field(default=False, description="a native sidecar (restartable init)")
    current: ContainerResources | None = None
    recommended: ContainerRecommendation | None = None
    oomKills: OomKills | None = None
    samples: Count = Field(default=0, description="observations of this container (memory)")
    cpuSamples: Count = Field(
        default=0, description="of which with CPU (not the container's first cycle)"
    )
    cpuUsageCores: Cores | None = Field(default=None, description="CPU at the percentile")
    memoryPeakBytes: Bytes | None = Field(default=None, description="peak within the window")


class PodLevelRecommendation(ApiModel):
    """Limits for a Deployment that sizes its pods with pod-level ``spec.resources``.

    Requests are ``status.recommended``'s (the pod total); these are the limits
    that go with them and the current pod-level resources.
    """

    current: ContainerResources = Field(
        description="the pod-level `spec.resources` of the Deployment's template"
    )
    cpuLimitCores: Cores | None = Field(
        default=None,
        description="set only where the current pod-level CPU limit is below the recommended "
        "request: then the request",
    )
    cpuLimit: str | None = Field(default=None, description="the same, as a Kubernetes quantity")
    cpuLimitReason: str = Field(description="why none is recommended, or why this one")
    memoryLimitBytes: Bytes = Field(
        description="equal to the pod's recommended memory request (`status.recommended`)"
    )
    memoryLimit: str = Field(description="the same, as a Kubernetes quantity")
    memoryLimitReason: str = Field(description="why the limit equals the request")
