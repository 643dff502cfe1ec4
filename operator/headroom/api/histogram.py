"""The persisted form of a decaying histogram (see :mod:`headroom.recommend.histogram`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from headroom.api.common import ApiModel, Count

__all__ = ["DecayingHistogram"]


class DecayingHistogram(ApiModel):
    """A histogram with exponentially growing buckets and exponentially decaying weights.

    Only non-empty buckets are kept (``buckets[i]`` has weight ``weights[i]``),
    which keeps the stored history to a few hundred bytes per expert.
    """

    firstBucketSize: float = Field(
        gt=0,
        description="width of bucket 0, in the histogram's unit "
        "(cores for CPU, bytes for memory, GPUs for GPU use)",
    )
    growthRatio: float = Field(
        gt=1, description="each bucket is this many times as wide as the one before"
    )
    halfLifeSeconds: float = Field(gt=0, description="a sample's weight halves in this long")
    referenceTime: datetime = Field(
        description="the moment the weights are relative to (a sample then weighs 1)"
    )
    buckets: list[Count] = Field(
        default_factory=list, description="indices of the non-empty buckets, ascending"
    )
    weights: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=list,
        description="the weight of each of `buckets`, in order, relative to `referenceTime`",
    )
