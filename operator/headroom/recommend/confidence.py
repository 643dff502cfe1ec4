"""How sure a recommendation is: bounds that narrow as history grows, and ``Confident`` (pure).

**Confidence** ``c`` is the history's length in days, counted as VPA counts it:
``c = min(span in days, samples ÷ 1,440)`` — the span from the first sample to
the last, but no more days than the samples could fill at one a minute (a
history of three samples spread over a day is not a day of history).

**Bounds.** ``factor = min(100, 1 + 0.25 / c)``;

* CPU: lower = recommended ÷ factor, upper = recommended × factor;
* memory: upper = recommended × factor, lower = recommended ÷ factor but never
  below the per-pod peak already seen (a request below a pod's own peak
  invites the OOM killer: usage seen is a hard floor);

each rounded up to the request steps and held within the request bounds.
So the factor is 37 after 10 minutes, 7 after an hour, 2 after 6 hours, 1.25
after a day and 1.036 after a week: the recommended figure is useful from the
first samples (it is p95 of what was seen, with the margin), the bounds say
how far it may still move.

**Confident** once ``c`` reaches ``confident_after_seconds`` (a day by
default: one daily cycle of traffic, bounds within ×1.25). Until then the
``Confident`` condition is False, the REC columns of ``kubectl get caprec``
carry a ``~`` and ``status.confidence`` says how long the history is.

**VPA's rule**, the reference: it scales its upper bound (p95 of CPU samples,
daily memory peaks) by ``(1 + 1/c)^1`` and its lower bound (p50) by
``(1 + 0.001/c)^-2``, with the same ``c``. Its upper bound is twice the p95
after a day (×1.14 after a week) and ×25 after an hour; the lower bound hardly
moves from p50. Headroom keeps VPA's form, ``(1 + m/c)^e``, with ``m = 0.25``
and ``e = ±1`` around its *recommended* figure (not around other percentiles),
so one factor reads for both bounds, reaches ×1.25 after the daily cycle VPA
would still double, and a first hour's figure carries bounds a user can read
(×7) rather than ×25. Goldilocks (VPA inside) tells its users to wait 8 days;
KRR gives no bounds at all.
"""

from __future__ import annotations

import math

from headroom.api.capacityrecommendation import (
    Confidence,
    RecommendationColumns,
    RecommendedSizing,
    RequestBounds,
)
from headroom.api.common import Condition
from headroom.recommend.describe import describe_duration
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    round_up_cpu_cores,
    round_up_memory_bytes,
)

__all__ = [
    "BOUNDS_MULTIPLIER",
    "MAX_FACTOR",
    "SAMPLES_PER_DAY",
    "bounds_factor",
    "columns",
    "confidence",
    "confidence_days",
    "confident_condition",
    "request_bounds",
]

SAMPLES_PER_DAY = 1440
"""One sample a minute (VPA's figure; the agent's default heartbeat is 60 s)."""
BOUNDS_MULTIPLIER = 0.25
"""``m`` in ``1 + m / c`` (VPA: 1 for the upper bound)."""
MAX_FACTOR = 100.0
"""The factor with no history at all (``c = 0``) or next to none."""
_DAY = 86_400.0


def history_seconds(history: ExpertHistory) -> float:
    """From the first sample to the last (0 without samples)."""
    if history.first_sample_at is None or history.last_sample_at is None:
        return 0.0
    return max(0.0, (history.last_sample_at - history.first_sample_at).total_seconds())


def confidence_days(history: ExpertHistory) -> float:
    """``min(span in days, samples ÷ 1,440)``."""
    return min(history_seconds(history) / _DAY, history.samples / SAMPLES_PER_DAY)


def bounds_factor(days: float) -> float:
    """``min(100, 1 + 0.25 / days)`` (100 for no history)."""
    if days <= 0:
        return MAX_FACTOR
    return min(MAX_FACTOR, 1 + BOUNDS_MULTIPLIER / days)


def request_bounds(
    recommended: RecommendedSizing,
    memory_peak_bytes: float | None,
    factor: float,
    defaults: SizingDefaults,
) -> RequestBounds:
    """The lower and upper bounds of the recommended per-pod requests (see the module)."""
    cpu = recommended.cpuRequestCores
    cpu_low = min(cpu, max(defaults.min_cpu_cores, round_up_cpu_cores(cpu / factor)))
    cpu_high = max(cpu, min(defaults.max_cpu_cores, round_up_cpu_cores(cpu * factor)))
    memory = recommended.memoryRequestBytes
    floor = round_up_memory_bytes(memory_peak_bytes) if memory_peak_bytes else 0
    memory_low = min(
        memory, max(defaults.min_memory_bytes, floor, round_up_memory_bytes(memory / factor))
    )
    memory_high = max(
        memory, min(defaults.max_memory_bytes, round_up_memory_bytes(memory * factor))
    )
    return RequestBounds(
        factor=round(factor, 4),
        cpuLowerCores=cpu_low,
        cpuLower=format_cpu(cpu_low),
        cpuUpperCores=cpu_high,
        cpuUpper=format_cpu(cpu_high),
        memoryLowerBytes=int(memory_low),
        memoryLower=format_memory(memory_low),
        memoryUpperBytes=int(memory_high),
        memoryUpper=format_memory(memory_high),
    )


def confidence(history: ExpertHistory, defaults: SizingDefaults) -> Confidence:
    """The figures behind the ``Confident`` condition."""
    seconds = history_seconds(history)
    days = confidence_days(history)
    return Confidence(
        historySeconds=math.floor(seconds),
        historySpan=describe_duration(seconds),
        days=round(days, 4),
        confident=days * _DAY >= defaults.confident_after_seconds,
        confidentAfterSeconds=math.ceil(defaults.confident_after_seconds),
    )


def _coarse_span(seconds: float) -> str:
    """The span to the hour (to the day past a day): a condition must not change every minute."""
    if seconds < 3600:
        return "less than 1h"
    if seconds < _DAY:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // _DAY)}d"


def confident_condition(figures: Confidence) -> Condition:
    """``Confident``: True once the history is long enough (see the module)."""
    after = describe_duration(figures.confidentAfterSeconds)
    span = _coarse_span(figures.historySeconds)
    if figures.confident:
        return Condition(
            type="Confident",
            status="True",
            reason="EnoughHistory",
            message=f"history spans {span} (confident from {after})",
        )
    return Condition(
        type="Confident",
        status="False",
        reason="ShortHistory",
        message=(
            f"history spans {span}, confident from {after}: provisional, see the bounds "
            "(status.recommended.bounds)"
        ),
    )


def columns(recommended: RecommendedSizing, confident: bool) -> RecommendationColumns:
    """What the REC columns show: ``~`` before each figure until confident; HPA bounds."""
    mark = "" if confident else "~"
    hpa = recommended.hpa
    replicas = (
        f"hpa:{hpa.minReplicas}-{hpa.maxReplicas}" if hpa is not None else str(recommended.replicas)
    )
    return RecommendationColumns(
        replicas=mark + replicas,
        cpuRequest=mark + recommended.cpuRequest,
        memoryRequest=mark + recommended.memoryRequest,
    )
