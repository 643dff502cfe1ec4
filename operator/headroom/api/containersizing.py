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

    cpuRequestCores: Cores | None = None
    cpuRequest: str | None = None
    memoryRequestBytes: Bytes | None = None
    memoryRequest: str | None = None
    cpuLimitCores: Cores | None = None
    cpuLimit: str | None = None
    memoryLimitBytes: Bytes | None = None
    memoryLimit: str | None = None


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

    cpuRequestCores: Cores
    cpuRequest: str
    cpuReason: str
    cpuLimitCores: Cores | None = None
    cpuLimit: str | None = None
    cpuLimitReason: str
    memoryRequestBytes: Bytes
    memoryRequest: str
    memoryReason: str
    memoryLimitBytes: Bytes
    memoryLimit: str
    memoryLimitReason: str


class ContainerSizing(ApiModel):
    """One container of the expert: current resources, recommendation, evidence, history."""

    name: str = Field(min_length=1, max_length=253)
    sidecar: bool = Field(default=False, description="a native sidecar (restartable init)")
    current: ContainerResources | None = None
    recommended: ContainerRecommendation | None = None
    oomKills: OomKills | None = None
    samples: Count = Field(default=0, description="observations of this container (memory)")
    cpuSamples: Count = 0
    cpuUsageCores: Cores | None = Field(default=None, description="CPU at the percentile")
    memoryPeakBytes: Bytes | None = Field(default=None, description="peak within the window")


class PodLevelRecommendation(ApiModel):
    """Limits for a Deployment that sizes its pods with pod-level ``spec.resources``.

    Requests are ``status.recommended``'s (the pod total); these are the limits
    that go with them and the current pod-level resources.
    """

    current: ContainerResources
    cpuLimitCores: Cores | None = None
    cpuLimit: str | None = None
    cpuLimitReason: str
    memoryLimitBytes: Bytes
    memoryLimit: str
    memoryLimitReason: str
