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

    firstBucketSize: float = Field(gt=0)
    growthRatio: float = Field(gt=1)
    halfLifeSeconds: float = Field(gt=0)
    referenceTime: datetime
    buckets: list[Count] = Field(default_factory=list)
    weights: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list)
