"""The recommendation for one expert: replicas, CPU and memory requests, each with its reason.

Pure (CT: recommendation logic in pure, documented functions): the caller
passes the history, the policy, the current sizing, the latest total usage
and the time; nothing is read from the cluster.

* **CPU request** = the ``cpu_percentile`` (95 by default) of the per-pod CPU
  samples, weighted by decay (half-life 24 h), × (1 + CPU margin, 15 %),
  rounded up (10m steps to 1 core, 50m above), clamped to [10m, 64 cores].
  CPU is compressible: a pod above its request for the remaining 5 % of the
  time is slowed down, not killed, so a percentile is the right measure.
* **Memory request** = the per-pod working-set *peak* within the window
  (7 days by default; see :mod:`headroom.recommend.histogram` for what a
  window means for a decaying history) × (1 + memory margin, 15 %), rounded
  up (16Mi steps to 1Gi, 64Mi above), clamped to [32Mi, 256Gi]. Memory is not
  compressible: a pod that needs more than the node can give is OOM-killed,
  so a percentile would plan for the kills it leaves out.
* **Replicas** = ⌈p95 of the expert's total CPU over the window ÷
  (recommended CPU request × target utilisation, 70 %)⌉, clamped to [min, max
  replicas] and at least one more than the PodDisruptionBudget allows to be
  down: the count at which the replicas, sharing the window's load evenly,
  each run at the target share of their request — the rule of a CPU
  HorizontalPodAutoscaler, for the load of the window rather than of the
  moment (see :mod:`headroom.recommend.replicas`, which also gives an HPA's
  min/max when one owns the replicas). Before the first total-CPU sample the
  total of the moment stands in. Memory does not drive replicas: an inference
  expert's memory is mostly its model, which every replica loads whole.
* **Bounds** around the requests, wide while the history is short (see
  :mod:`headroom.recommend.confidence`).
* With no samples yet a figure keeps the current value (clamped to the
  bounds), and its reason says so.

How this differs from the two usual references:

* **VPA's recommender** sets the *target* to p90 of CPU samples (weighted by
  the container's request) and p90 of *daily memory peaks* (8 days), each
  +15 %, widens lower and upper bounds by a confidence factor while the
  history is short, bumps memory after an OOM kill, and never recommends
  replicas (VPA and a CPU HPA on the same workload fight each other).
  Headroom takes p95 for CPU, the peak within the window for memory, and
  recommends replicas together with the requests so the two agree by
  construction; it recommends only — nothing is evicted or resized.
* **KRR's "simple" strategy** asks Prometheus for a fixed look-back window
  and sets the CPU request to a percentile of all pods' samples pooled
  (no CPU limit) and the memory request and limit to the maximum + a buffer;
  samples weigh the same whatever their age, and there are no replicas and no
  rounding. Headroom keeps its own decaying history (no Prometheus needed)
  and rounds figures to readable steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from headroom.api.capacityrecommendation import (
    CurrentSizing,
    Evidence,
    RecommendedSizing,
    SizingPolicy,
    UsageHistory,
)
from headroom.recommend.confidence import bounds_factor, confidence_days, request_bounds
from headroom.recommend.describe import describe_bytes, describe_cores, describe_duration
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    round_up_cpu_cores,
    round_up_memory_bytes,
)
from headroom.recommend.replicas import (
    Autoscaler,
    DisruptionBudget,
    disruption_floor,
    hpa_advice,
    load_words,
    replicas_for_load,
    window_load,
)

__all__ = ["recommend", "recommend_cpu", "recommend_memory", "recommend_replicas"]

_DEFAULTS = SizingDefaults()


def _clamped(
    value: float, low: float, high: float, show: Callable[[float], str]
) -> tuple[float, str]:
    """``value`` within ``[low, high]`` and the words to add to the reason when it moved."""
    if value < low:
        return low, f", raised to the minimum {show(low)}"
    if value > high:
        return high, f", capped at the maximum {show(high)}"
    return value, ""


def _span(history: ExpertHistory) -> str:
    if history.first_sample_at is None or history.last_sample_at is None:
        return "0s"
    return describe_duration((history.last_sample_at - history.first_sample_at).total_seconds())


def recommend_cpu(
    history: ExpertHistory, policy: SizingPolicy, current: CurrentSizing, defaults: SizingDefaults
) -> tuple[float, float | None, str]:
    """``(request cores, per-pod CPU at the percentile or None, reason)``."""
    low, high = defaults.min_cpu_cores, defaults.max_cpu_cores
    if history.cpu.is_empty():
        if current.cpuRequestCores is None:
            return (
                low,
                None,
                f"no CPU samples yet and no current request: the minimum {format_cpu(low)}",
            )
        kept = min(max(current.cpuRequestCores, low), high)
        reason = (
            f"no CPU samples yet: keeping the current request {format_cpu(current.cpuRequestCores)}"
        )
        if kept != current.cpuRequestCores:
            reason += f", clamped to {format_cpu(kept)}"
        return kept, None, reason
    usage = history.cpu.percentile(defaults.cpu_percentile)
    with_margin = usage * (1 + policy.cpuMarginPercent / 100)
    rounded = round_up_cpu_cores(with_margin)
    request, clamp = _clamped(rounded, low, high, format_cpu)
    reason = (
        f"p{defaults.cpu_percentile:g} of {history.cpu_samples:,} CPU samples over "
        f"{_span(history)} (half-life {describe_duration(history.cpu.half_life_seconds)}) = "
        f"{describe_cores(usage)}, +{policy.cpuMarginPercent:g}% margin = "
        f"{describe_cores(with_margin)}, rounded up to {format_cpu(rounded)}{clamp}"
    )
    return request, usage, reason


def recommend_memory(
    history: ExpertHistory,
    policy: SizingPolicy,
    current: CurrentSizing,
    defaults: SizingDefaults,
    now: datetime,
) -> tuple[int, float | None, str]:
    """``(request bytes, per-pod peak within the window or None, reason)``."""
    low, high = defaults.min_memory_bytes, defaults.max_memory_bytes
    peak = history.memory.peak(now, defaults.window_seconds)
    if peak == 0:
        if current.memoryRequestBytes is None:
            return (
                low,
                None,
                f"no memory samples in the window and no current request: "
                f"the minimum {format_memory(low)}",
            )
        kept = min(max(current.memoryRequestBytes, low), high)
        reason = (
            "no memory samples in the window: keeping the current request "
            f"{format_memory(current.memoryRequestBytes)}"
        )
        if kept != current.memoryRequestBytes:
            reason += f", clamped to {format_memory(kept)}"
        return kept, None, reason
    with_margin = peak * (1 + policy.memoryMarginPercent / 100)
    rounded = round_up_memory_bytes(with_margin)
    request, clamp = _clamped(rounded, low, high, format_memory)
    reason = (
        f"peak working set within {describe_duration(defaults.window_seconds)} "
        f"({history.samples:,} samples over {_span(history)}) = {describe_bytes(peak)}, "
        f"+{policy.memoryMarginPercent:g}% margin = {describe_bytes(with_margin)}, "
        f"rounded up to {format_memory(rounded)}{clamp}"
    )
    return int(request), peak, reason


def recommend_replicas(
    cpu_request_cores: float,
    total_cpu_usage_cores: float | None,
    policy: SizingPolicy,
    current_replicas: int,
    have_cpu_samples: bool,
    *,
    load_name: str = "total CPU",
    floor: int | None = None,
    floor_words: str = "",
) -> tuple[int, str]:
    """``(replicas, reason)``: ⌈load ÷ (request × target)⌉ within [min, max], ≥ ``floor``."""
    low, high = policy.minReplicas, policy.maxReplicas
    if not have_cpu_samples or total_cpu_usage_cores is None:
        kept = min(max(current_replicas, low), high)
        reason = f"no CPU samples yet: keeping the current {current_replicas} replicas"
        if kept != current_replicas:
            reason += f", clamped to [{low}, {high}]: {kept}"
        if floor is not None and kept < floor <= high:
            kept = floor
            reason += f", raised to {floor} for {floor_words}"
        return kept, reason
    return replicas_for_load(
        total_cpu_usage_cores,
        load_name,
        cpu_request_cores,
        policy.targetUtilizationPercent,
        policy,
        floor,
        floor_words,
    )


def recommend(
    history: ExpertHistory | UsageHistory,
    policy: SizingPolicy,
    current: CurrentSizing,
    total_cpu_usage_cores: float | None,
    now: datetime,
    *,
    defaults: SizingDefaults = _DEFAULTS,
    total_memory_usage_bytes: int | None = None,
    budget: DisruptionBudget | None = None,
    autoscaler: Autoscaler | None = None,
) -> tuple[RecommendedSizing, Evidence]:
    """Recommend replicas and per-pod requests for one expert (see the module docstring).

    ``total_cpu_usage_cores`` is the CPU all the expert's pods use now (the
    sum of their latest samples); ``None`` when unknown. It is evidence, and
    drives replicas only while the history holds no total-CPU sample yet.
    ``budget`` is the PodDisruptionBudget covering the expert's pods,
    ``autoscaler`` the HPA owning its replicas (then ``hpa`` advises its
    min/max). The policy's margins, target and replica bounds apply; the
    percentiles, request bounds, half-life and window come from ``defaults``.
    The history is read, never changed.
    """
    if isinstance(history, UsageHistory):
        history = ExpertHistory.from_model(history)
    cpu, cpu_usage, cpu_reason = recommend_cpu(history, policy, current, defaults)
    memory, memory_peak, memory_reason = recommend_memory(history, policy, current, defaults, now)
    load = window_load(
        history,
        now,
        defaults.window_seconds,
        defaults.load_percentile,
        defaults.load_low_percentile,
    )
    floor, floor_words = disruption_floor(budget) if budget is not None else (None, "")
    load_cores: float | None
    if load.at_percentile is not None:
        load_cores, load_name = load.at_percentile, load_words(load)
    else:
        load_cores, load_name = total_cpu_usage_cores, "total CPU"
    replicas, replicas_reason = recommend_replicas(
        cpu,
        load_cores,
        policy,
        current.replicas,
        cpu_usage is not None,
        load_name=load_name,
        floor=floor,
        floor_words=floor_words,
    )
    if budget is not None and floor is None:
        replicas_reason += f"; {floor_words}"
    hpa = None
    if autoscaler is not None:
        hpa = hpa_advice(autoscaler, load, cpu, cpu_usage, policy, floor, floor_words)
        replicas_reason += (
            f"; HorizontalPodAutoscaler {autoscaler.name} owns the replicas: "
            f"set its minReplicas {hpa.minReplicas} and maxReplicas {hpa.maxReplicas} instead"
        )
    recommended = RecommendedSizing(
        replicas=replicas,
        replicasReason=replicas_reason,
        cpuRequestCores=cpu,
        cpuRequest=format_cpu(cpu),
        cpuReason=cpu_reason,
        memoryRequestBytes=memory,
        memoryRequest=format_memory(memory),
        memoryReason=memory_reason,
        hpa=hpa,
    )
    recommended.bounds = request_bounds(
        recommended, memory_peak, bounds_factor(confidence_days(history)), defaults
    )
    evidence = Evidence(
        windowSeconds=math.ceil(defaults.window_seconds),
        halfLifeSeconds=math.ceil(history.cpu.half_life_seconds),
        samples=history.samples,
        cpuSamples=history.cpu_samples,
        cpuPercentile=defaults.cpu_percentile,
        memoryPercentile=100.0,
        cpuUsageCores=None if cpu_usage is None else round(cpu_usage, 6),
        memoryPeakBytes=None if memory_peak is None else math.ceil(memory_peak),
        totalCpuUsageCores=total_cpu_usage_cores,
        totalMemoryUsageBytes=total_memory_usage_bytes,
        firstSampleAt=history.first_sample_at,
        lastSampleAt=history.last_sample_at,
        load=load.evidence() if load.samples else None,
        pdb=None if budget is None else budget.name,
    )
    return recommended, evidence
