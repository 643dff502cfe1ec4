"""Pieces shared by every Headroom custom resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from headroom.apiversion import API_VERSION, GROUP, VERSION

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ApiModel",
    "Bytes",
    "Condition",
    "Cores",
    "Count",
    "ObjectMeta",
    "Percent",
]


Percent = Annotated[float, Field(ge=0, le=100)]
"""A percentage, 0–100 inclusive."""
Cores = Annotated[float, Field(ge=0)]
"""CPU in cores (1.0 = one logical CPU fully busy)."""
Bytes = Annotated[int, Field(ge=0)]
"""A memory or disk quantity in bytes."""
Count = Annotated[int, Field(ge=0)]
"""A count of things (cores, pods, replicas, samples)."""


class ApiModel(BaseModel):
    """Base for API objects: camelCase on the wire is spelled out in field names.

    Unknown fields are refused so a typo in a hand-written object is an error,
    not silently dropped data.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """Serialise for the API server: JSON types, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Condition(ApiModel):
    """A Kubernetes-style condition (the ``metav1.Condition`` shape)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        description="what the condition is about, in CamelCase: `Stale` on a ResourceReport; "
        "`PolicyValid`, `Ready` and `Confident` on a CapacityRecommendation",
    )
    status: Literal["True", "False", "Unknown"] = Field(
        description="whether the condition holds now"
    )
    reason: str = Field(
        default="",
        max_length=1024,
        description="why, as one CamelCase word for programs (e.g. `NoHeartbeat`)",
    )
    message: str = Field(
        default="", max_length=32768, description="why, in words for people; may be empty"
    )
    lastTransitionTime: datetime | None = Field(
        default=None,
        description="when `status` last changed; on a report's `Stale` False, "
        "since when its agent has been writing",
    )
    observedGeneration: Count | None = Field(
        default=None,
        description="the `metadata.generation` the condition was set for; Headroom leaves it out",
    )


class ObjectMeta(BaseModel):
    """The parts of ``metadata`` Headroom reads or writes; the rest is kept."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    resourceVersion: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[dict[str, Any]] | None = None
