"""Replicas for the load over the window, the PodDisruptionBudget's floor, and HPA advice (pure).

**The load.** Every ``load_sample_seconds`` (60 s by default) the controller
adds the expert's *total* CPU — the sum of its pods' latest figures — to a
decaying histogram kept beside the per-pod ones
(:func:`record_total_cpu`; same buckets, half-life and window, see
:mod:`headroom.recommend.histogram`). A fixed cadence makes every sample
stand for the same stretch of time, so a percentile of the histogram is a
percentile over *time*, whatever the number of pods or how often reports come.

**Replicas** = ⌈p95 of the total CPU ÷ (recommended CPU request × target
utilisation)⌉ within [min, max] and at least the PDB's floor. p95 (the
``load_percentile``) plans for the load the expert carries at all but its
busiest 5 % of the time — with a 24 h half-life, mostly today's and
yesterday's — instead of the load of the moment, which swings with every
report. The figure of the moment stays in the evidence
(``totalCpuUsageCores``). The highest 5 % is left to the HPA where there is
one, and to the 30 % of each request the 70 % target leaves free where there
is none.

**PodDisruptionBudget floor**: the fewest replicas at which, with the budget
honoured, a drain can evict one replica *and* one replica still serves while
the budget's whole allowance is down — "one more than the PDB allows to be
down". ``minAvailable: k`` → k + 1; ``maxUnavailable: m`` → m + 1; a
percentage is scaled and rounded up as the disruption controller does, and the
smallest count that works is taken. A budget that never lets a replica go
(``minAvailable: 100%``, ``maxUnavailable: 0``) or always lets all go gives no
floor, and the reason says so.

**An HPA owns replicas.** When an ``autoscaling/v2`` HorizontalPodAutoscaler
targets the Deployment, a replica count would fight it; Headroom recommends
the HPA's bounds instead, with the HPA's own CPU target (the per-replica
share it scales to) in place of the policy's:

* ``minReplicas`` = max(policy minimum, PDB floor, ⌈p10 of the total CPU ÷
  share⌉): the trough of the window, which the HPA would scale down to
  anyway; holding it there keeps the expert warm through a metrics gap.
* ``maxReplicas`` = max(minReplicas, ⌈peak of the total CPU within the window
  ÷ share⌉), at most the policy maximum: room for the busiest moment seen.
* **Agreement** of the HPA's target with the request: the HPA keeps a pod's
  average CPU at ``target × request``; the recommended request is sized for
  the per-pod p95 ``P``. They agree when ``target × request ≤ P`` — the HPA
  adds a replica before pods run past the usage their request plans for. With
  the default 15 % margin that holds for targets up to about 87 %.

An HPA scaling on other metrics only gets min/max from CPU as an estimate,
and no agreement figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from headroom.api.capacityrecommendation import HpaAdvice, LoadEvidence, SizingPolicy
from headroom.recommend.describe import describe_cores, describe_duration
from headroom.recommend.histogram import DecayingHistogram
from headroom.recommend.history import ExpertHistory
from headroom.recommend.quantities import format_cpu

__all__ = [
    "Autoscaler",
    "DisruptionBudget",
    "WindowLoad",
    "allowed_down",
    "bounded_replicas",
    "disruption_floor",
    "histogram_load",
    "hpa_advice",
    "load_words",
    "record_total_cpu",
    "replicas_for_load",
    "total_sample_due",
    "window_load",
]

_FLOOR_SEARCH = 10_000
"""No integer or whole-percent budget needs more replicas than this for its floor."""


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """The parts of a ``policy/v1`` PodDisruptionBudget that set a replica floor.

    ``min_available`` / ``max_unavailable``: an int, a percentage string
    (``"50%"``) or ``None`` when not set (the API allows one of them).
    """

    name: str
    min_available: int | str | None = None
    max_unavailable: int | str | None = None


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """The parts of an ``autoscaling/v2`` HorizontalPodAutoscaler the advice needs."""

    name: str
    min_replicas: int
    max_replicas: int
    cpu_utilization_percent: float | None = None
    """The target of a ``Resource`` cpu metric of type ``Utilization``."""
    cpu_average_cores: float | None = None
    """The target of a ``Resource`` cpu metric of type ``AverageValue`` (cores per pod)."""
    other_metrics: tuple[str, ...] = field(default=())
    """Other metrics it scales on (``memory``, ``Pods/requests_per_second``, …)."""


@dataclass(frozen=True, slots=True)
class WindowLoad:
    """The total CPU over the window, as replicas need it (all ``None`` without history)."""

    samples: int
    percentile: float
    at_percentile: float | None
    low_percentile: float
    at_low_percentile: float | None
    peak: float | None
    span_seconds: float

    def evidence(self) -> LoadEvidence:
        """The evidence sub-model."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 6)

        return LoadEvidence(
            samples=self.samples,
            percentile=self.percentile,
            percentileCores=rounded(self.at_percentile),
            lowPercentile=self.low_percentile,
            lowPercentileCores=rounded(self.at_low_percentile),
            peakCores=rounded(self.peak),
        )


def total_sample_due(value: float, last: datetime | None, at: datetime, every: float) -> bool:
    """Whether a total ``value`` observed at ``at`` is to be sampled: a finite figure ≥ 0,
    and ``every`` seconds since the ``last`` sample (the cadence of the CPU and GPU totals)."""
    if not math.isfinite(value) or value < 0:
        return False
    return last is None or (at - last).total_seconds() >= every


def record_total_cpu(
    history: ExpertHistory,
    total_cores: float | None,
    at: datetime,
    every_seconds: float,
    window_seconds: float | None = None,
) -> bool:
    """Add the expert's total CPU at ``at`` when ``every_seconds`` passed since the last one.

    Returns whether a sample was added. Nothing is added without a figure
    (no fresh report) or before the cadence is due, so every sample stands
    for the same time whatever the number of batches. With ``window_seconds``
    the total-CPU histogram is pruned right after a sample is added (so a
    batch need not prune it: it changes only here).
    """
    if total_cores is None or not total_sample_due(
        total_cores, history.last_total_cpu_at, at, every_seconds
    ):
        return False
    history.add_total_cpu(total_cores, at)
    if window_seconds is not None and history.total_cpu is not None:
        history.total_cpu.prune(at, window_seconds)
    return True


def histogram_load(
    total: DecayingHistogram | None,
    samples: int,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    window_seconds: float,
    percentile: float,
    low_percentile: float,
) -> WindowLoad:
    """A total's percentiles and peak within the window, from its histogram (read only).

    ``since``/``until`` bound the span the reason quotes (the history's first
    sample, the total's last). Shared by the CPU and the GPU replica rules.
    """
    if total is None or total.is_empty():
        return WindowLoad(0, percentile, None, low_percentile, None, None, 0.0)
    span = 0.0
    if since is not None and until is not None:
        span = max(0.0, (until - since).total_seconds())
    peak = total.peak(now, window_seconds)
    return WindowLoad(
        samples=samples,
        percentile=percentile,
        at_percentile=total.percentile(percentile),
        low_percentile=low_percentile,
        at_low_percentile=total.percentile(low_percentile),
        peak=peak if peak > 0 else total.percentile(100),
        span_seconds=span,
    )


def window_load(
    history: ExpertHistory,
    now: datetime,
    window_seconds: float,
    percentile: float,
    low_percentile: float,
) -> WindowLoad:
    """The total CPU's percentiles and peak within the window (read only)."""
    return histogram_load(
        history.total_cpu,
        history.total_cpu_samples,
        history.first_sample_at,
        history.last_total_cpu_at,
        now,
        window_seconds,
        percentile,
        low_percentile,
    )


def _scaled(value: int | str, replicas: int) -> int:
    """An int-or-percent of ``replicas``, a percentage rounded up (as the disruption controller)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%") or not text[:-1].strip().isdigit():
        raise ValueError(f"not a count or a whole percentage: {value!r}")
    return math.ceil(int(text[:-1]) * replicas / 100)


def allowed_down(budget: DisruptionBudget, replicas: int) -> int:
    """How many of ``replicas`` healthy replicas the budget lets be down at once."""
    if budget.min_available is not None:
        return max(0, replicas - _scaled(budget.min_available, replicas))
    if budget.max_unavailable is not None:
        return max(0, min(replicas, _scaled(budget.max_unavailable, replicas)))
    return 0


def disruption_floor(budget: DisruptionBudget) -> tuple[int | None, str]:
    """``(floor, words)``: the fewest replicas one more than the budget allows to be down.

    The floor is the smallest ``r`` with ``1 ≤ allowed_down(r) ≤ r − 1``: a
    drain can evict one, and one still serves while the allowance is down.
    ``None`` when no count satisfies both (the words then say why).
    """
    try:
        for replicas in range(1, _FLOOR_SEARCH + 1):
            down = allowed_down(budget, replicas)
            if 1 <= down <= replicas - 1:
                return replicas, f"PodDisruptionBudget {budget.name} ({_budget_text(budget)})"
    except ValueError as error:
        return None, f"PodDisruptionBudget {budget.name} unreadable ({error}): no floor"
    if allowed_down(budget, _FLOOR_SEARCH) == 0:
        why = "lets no replica be evicted whatever the count (drains will wait)"
    else:
        why = "lets every replica be down at once"
    return None, f"PodDisruptionBudget {budget.name} ({_budget_text(budget)}) {why}: no floor"


def _budget_text(budget: DisruptionBudget) -> str:
    if budget.min_available is not None:
        return f"minAvailable {budget.min_available}"
    if budget.max_unavailable is not None:
        return f"maxUnavailable {budget.max_unavailable}"
    return "neither minAvailable nor maxUnavailable"


def bounded_replicas(
    load: float, per_replica: float, low: int, high: int
) -> tuple[float, int, int, str]:
    """``(exact, needed, replicas, words)``: ⌈load ÷ per_replica⌉ within [low, high].

    ``words`` is empty, or says the bound that moved it (``", raised to minReplicas 2"``).
    Shared by the CPU and the GPU replica rules.
    """
    exact = load / per_replica
    needed = max(0, math.ceil(exact - 1e-9))
    replicas = min(max(needed, low), high)
    words = ""
    if replicas > needed:
        words = f", raised to minReplicas {low}"
    elif replicas < needed:
        words = f", capped at maxReplicas {high}"
    return exact, needed, replicas, words


def replicas_for_load(
    load_cores: float,
    load_words: str,
    cpu_request_cores: float,
    target_percent: float,
    policy: SizingPolicy,
    floor: int | None,
    floor_words: str,
) -> tuple[int, str]:
    """``(replicas, reason)``: ⌈load ÷ (request × target)⌉ within [min, max], ≥ the PDB floor.

    ``load_words`` names the load (``"p95 of 1,440 total-CPU samples over 1d"``).
    The policy maximum wins over the floor: a floor above it is reported, not obeyed.
    """
    low, high = policy.minReplicas, policy.maxReplicas
    exact, needed, replicas, bounded = bounded_replicas(
        load_cores, cpu_request_cores * target_percent / 100, low, high
    )
    reason = (
        f"{load_words} {describe_cores(load_cores)} / ({format_cpu(cpu_request_cores)} "
        f"× {target_percent:g}% target) = {exact:.2f} → {needed}{bounded}"
    )
    if floor is not None and replicas < floor:
        if floor <= high:
            replicas = floor
            reason += f", raised to {floor} for {floor_words}"
        else:
            reason += f"; {floor_words} needs {floor}, above maxReplicas {high}"
    return replicas, reason


def load_words(load: WindowLoad, total: str = "CPU") -> str:
    """How the load in a reason is named: ``p95 of 1,440 total-CPU samples over 1d =``.

    ``total`` names what was summed (``"GPU"`` for the GPU replica rule).
    """
    return (
        f"p{load.percentile:g} of {load.samples:,} total-{total} samples over "
        f"{describe_duration(load.span_seconds)} ="
    )


def hpa_advice(
    autoscaler: Autoscaler,
    load: WindowLoad,
    cpu_request_cores: float,
    per_pod_cpu_cores: float | None,
    policy: SizingPolicy,
    floor: int | None,
    floor_words: str,
) -> HpaAdvice:
    """The HPA's min/max for the window's load, and whether its CPU target agrees.

    ``per_pod_cpu_cores`` is the per-pod CPU percentile the request was sized
    from (``None`` without CPU samples). See the module docstring for the rules.
    """
    low, high = policy.minReplicas, policy.maxReplicas
    target, share_words, agrees, target_reason = _target(
        autoscaler, cpu_request_cores, per_pod_cpu_cores, policy
    )
    share = target if autoscaler.cpu_average_cores is not None else cpu_request_cores * target / 100
    if load.at_percentile is None or load.peak is None or load.at_low_percentile is None:
        minimum = max(autoscaler.min_replicas, floor or 0)
        maximum = max(autoscaler.max_replicas, minimum)
        min_reason = f"no load history yet: keeping the HPA's minReplicas {autoscaler.min_replicas}"
        if minimum > autoscaler.min_replicas:
            min_reason += f", raised to {minimum} for {floor_words}"
        max_reason = f"no load history yet: keeping the HPA's maxReplicas {autoscaler.max_replicas}"
        if maximum > autoscaler.max_replicas:
            max_reason += f", raised to minReplicas {maximum}"
    else:
        trough = max(0, math.ceil(load.at_low_percentile / share - 1e-9))
        minimum = min(max(trough, low, floor or 0), high)
        min_reason = (
            f"p{load.low_percentile:g} of the total CPU {describe_cores(load.at_low_percentile)}"
            f" / {share_words} = {trough}"
        )
        if minimum > trough:
            if floor is not None and minimum == floor and floor > low:
                min_reason += f", raised to {floor} for {floor_words}"
            else:
                min_reason += f", raised to the policy's minReplicas {low}"
        elif minimum < trough:
            min_reason += f", capped at the policy's maxReplicas {high}"
        if floor is not None and floor > high:
            min_reason += f"; {floor_words} needs {floor}, above maxReplicas {high}"
        peak = max(0, math.ceil(load.peak / share - 1e-9))
        maximum = min(max(peak, minimum), high)
        max_reason = (
            f"peak total CPU within the window {describe_cores(load.peak)} / {share_words} = {peak}"
        )
        if maximum > peak:
            max_reason += f", raised to minReplicas {minimum}"
        elif maximum < peak:
            max_reason += f", capped at the policy's maxReplicas {high}"
    return HpaAdvice(
        name=autoscaler.name,
        currentMinReplicas=autoscaler.min_replicas,
        currentMaxReplicas=autoscaler.max_replicas,
        minReplicas=minimum,
        maxReplicas=maximum,
        minReplicasReason=min_reason,
        maxReplicasReason=max_reason,
        targetCPUUtilizationPercent=autoscaler.cpu_utilization_percent,
        targetAgrees=agrees,
        targetReason=target_reason,
    )


def _target(
    autoscaler: Autoscaler,
    request: float,
    per_pod: float | None,
    policy: SizingPolicy,
) -> tuple[float, str, bool | None, str]:
    """``(target, share words, agrees, reason)``: the share each replica is planned to carry.

    The target is a percentage of the request, or cores per pod for an
    ``AverageValue`` target.
    """
    if autoscaler.cpu_average_cores is not None:
        per_pod_target = autoscaler.cpu_average_cores
        share_words = f"{format_cpu(per_pod_target)} per pod (the HPA's CPU averageValue)"
        lead = f"HPA target {format_cpu(per_pod_target)} CPU per pod"
        target: float = per_pod_target
    elif autoscaler.cpu_utilization_percent is not None:
        utilization = autoscaler.cpu_utilization_percent
        per_pod_target = request * utilization / 100
        share_words = f"({format_cpu(request)} × {utilization:g}% HPA target)"
        lead = (
            f"HPA target {utilization:g}% of the recommended {format_cpu(request)} = "
            f"{describe_cores(per_pod_target)} per pod"
        )
        if utilization != policy.targetUtilizationPercent:
            lead += f" (the policy's {policy.targetUtilizationPercent:g}% is not used)"
        target = utilization
    else:
        scales_on = ", ".join(autoscaler.other_metrics) or "no metrics"
        target = policy.targetUtilizationPercent
        share_words = f"({format_cpu(request)} × {target:g}% policy target)"
        reason = (
            f"the HPA scales on {scales_on}, not CPU: min/max from CPU are an estimate "
            f"at the policy's {target:g}% target"
        )
        return target, share_words, None, reason
    if per_pod is None:
        return target, share_words, None, f"{lead}; no CPU samples yet to compare with"
    if per_pod_target <= per_pod + 1e-9:
        reason = (
            f"{lead}, at or below the per-pod CPU {describe_cores(per_pod)} the request is "
            "sized for: agrees"
        )
        return target, share_words, True, reason
    highest = math.floor(per_pod / request * 100) if request > 0 else 0
    advice = (
        f"set the HPA's target to at most {highest}%"
        if autoscaler.cpu_average_cores is None
        else f"set its averageValue to at most {format_cpu(per_pod)}"
    )
    reason = (
        f"{lead}, above the per-pod CPU {describe_cores(per_pod)} the request is sized for: "
        f"pods would run past it before the HPA adds one; {advice}"
    )
    return target, share_words, False, reason
