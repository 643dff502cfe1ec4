"""The sizing policy: chart-wide defaults, overridden per Deployment by annotations.

The defaults of the five figures below come from the controller's settings
(the Helm values) once, at start; the others of :class:`SizingDefaults`
(percentiles, request bounds, half-life, window, load sampling, confidence)
are this release's constants, not settings. :class:`SizingDefaults` refuses
inconsistent ones with a
:class:`ValueError`, because a controller that starts with a bad policy would
only be wrong quietly.

A Deployment may override five figures with these annotations (exact keys):

==================================== ========================================
``headroom.dev/target-utilization``  percent of the CPU request each replica
                                     should use on average, ``0 < x ≤ 100``
                                     (e.g. ``"70"`` or ``"70%"``)
``headroom.dev/cpu-margin``          percent added to the CPU percentile,
                                     ``0 ≤ x ≤ 1000``
``headroom.dev/memory-margin``       percent added to the memory peak,
                                     ``0 ≤ x ≤ 1000``
``headroom.dev/min-replicas``        whole number ``≥ 1``
``headroom.dev/max-replicas``        whole number ``≥ 1``, not below the minimum
==================================== ========================================

A bad override never stops a recommendation: :func:`policy_from_annotations`
reports it as a problem (the controller turns problems into a condition and an
Event) and uses the default for that figure. A minimum above the maximum
reverts both to their defaults. An unknown ``headroom.dev/`` key that is close
to a known one (``target-utilisation``) is reported as a likely typo.

The CPU percentile, the request bounds, the half-life and the window are not
overridable per Deployment: they shape the history every expert shares.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from headroom.api.capacityrecommendation import SizingPolicy

__all__ = [
    "ANNOTATION_KEYS",
    "CPU_MARGIN",
    "MAX_REPLICAS",
    "MEMORY_MARGIN",
    "MIN_REPLICAS",
    "TARGET_UTILIZATION",
    "SizingDefaults",
    "policy_from_annotations",
]

_PREFIX = "headroom.dev/"
TARGET_UTILIZATION = f"{_PREFIX}target-utilization"
CPU_MARGIN = f"{_PREFIX}cpu-margin"
MEMORY_MARGIN = f"{_PREFIX}memory-margin"
MIN_REPLICAS = f"{_PREFIX}min-replicas"
MAX_REPLICAS = f"{_PREFIX}max-replicas"
ANNOTATION_KEYS = (TARGET_UTILIZATION, CPU_MARGIN, MEMORY_MARGIN, MIN_REPLICAS, MAX_REPLICAS)
"""Every annotation :func:`policy_from_annotations` reads."""
OTHER_ANNOTATION_KEYS = (f"{_PREFIX}gpu-target-utilization", f"{_PREFIX}gpu-memory-margin")
"""Read elsewhere (:mod:`headroom.recommend.gpu`): known keys, never typos."""

_MAX_MARGIN = 1000.0
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SizingDefaults:
    """Chart-wide sizing defaults and bounds (CT: percentiles, margins, bounds, window).

    Requests are clamped to ``[min, max]`` after margins and rounding: the
    minimum keeps an idle expert schedulable with some room, the maximum
    keeps a runaway sample from asking for a node nobody has.
    """

    target_utilization_percent: float = 70.0
    cpu_percentile: float = 95.0
    cpu_margin_percent: float = 15.0
    memory_margin_percent: float = 15.0
    min_replicas: int = 1
    max_replicas: int = 100
    min_cpu_cores: float = 0.01
    max_cpu_cores: float = 64.0
    min_memory_bytes: int = 32 * 2**20
    max_memory_bytes: int = 256 * 2**30
    half_life_seconds: float = _DAY
    window_seconds: float = 7 * _DAY
    load_percentile: float = 95.0
    """Replicas follow this percentile of the total CPU over the window."""
    load_low_percentile: float = 10.0
    """An HPA's minReplicas follows this one (the window's trough)."""
    load_sample_seconds: float = 60.0
    """The total CPU is sampled this often (each sample stands for this long)."""
    confident_after_seconds: float = _DAY
    """History needed before a recommendation is ``Confident`` (one daily cycle)."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.target_utilization_percent <= 100:
            problems.append("target utilisation must be in (0, 100] percent")
        if not 0 < self.cpu_percentile <= 100:
            problems.append("CPU percentile must be in (0, 100]")
        for name, margin in (
            ("CPU", self.cpu_margin_percent),
            ("memory", self.memory_margin_percent),
        ):
            if not 0 <= margin <= _MAX_MARGIN:
                problems.append(f"{name} margin must be in [0, {_MAX_MARGIN:g}] percent")
        if not 1 <= self.min_replicas <= self.max_replicas:
            problems.append("replicas need 1 ≤ min ≤ max")
        if not 0 < self.min_cpu_cores <= self.max_cpu_cores < math.inf:
            problems.append("CPU bounds need 0 < min ≤ max")
        if not 0 < self.min_memory_bytes <= self.max_memory_bytes:
            problems.append("memory bounds need 0 < min ≤ max")
        if not 0 < self.half_life_seconds < math.inf or not 0 < self.window_seconds < math.inf:
            problems.append("half-life and window must be positive")
        if not 0 <= self.load_low_percentile <= self.load_percentile <= 100:
            problems.append("load percentiles need 0 ≤ low ≤ high ≤ 100")
        if not 0 < self.load_sample_seconds < math.inf:
            problems.append("the load sample period must be positive")
        if not 0 <= self.confident_after_seconds < math.inf:
            problems.append("the history needed for confidence must be ≥ 0")
        if problems:
            raise ValueError("bad sizing defaults: " + "; ".join(problems))

    def policy(self) -> SizingPolicy:
        """The defaults as the effective policy of a Deployment without overrides."""
        return SizingPolicy(
            targetUtilizationPercent=self.target_utilization_percent,
            cpuMarginPercent=self.cpu_margin_percent,
            memoryMarginPercent=self.memory_margin_percent,
            minReplicas=self.min_replicas,
            maxReplicas=self.max_replicas,
        )


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def _percent(text: str, low: float, high: float, *, low_open: bool) -> float | None:
    """``"70"``, ``"70%"`` or ``"12.5"`` (plain ASCII decimals) within the bounds, else ``None``."""
    number = text.strip().removesuffix("%").strip()
    if not _DECIMAL.fullmatch(number):
        return None
    value = float(number)
    if value > high or value < low or (low_open and value == low):
        return None
    return value


def _whole(text: str) -> int | None:
    """A whole number ``≥ 1`` written in digits (``"3"``), else ``None``."""
    number = text.strip()
    if not number.isascii() or not number.isdigit():
        return None
    value = int(number)
    return value if value >= 1 else None


def _likely_typos(annotations: Mapping[str, str]) -> list[str]:
    known = [key.removeprefix(_PREFIX) for key in (*ANNOTATION_KEYS, *OTHER_ANNOTATION_KEYS)]
    problems = []
    for key in sorted(annotations):
        if not key.startswith(_PREFIX) or key in ANNOTATION_KEYS or key in OTHER_ANNOTATION_KEYS:
            continue
        close = difflib.get_close_matches(key.removeprefix(_PREFIX), known, n=1, cutoff=0.8)
        if close:
            problems.append(f"unknown annotation {key} ignored: did you mean {_PREFIX}{close[0]}?")
    return problems


def policy_from_annotations(
    defaults: SizingDefaults, annotations: Mapping[str, str] | None
) -> tuple[SizingPolicy, list[str]]:
    """The effective policy of one Deployment and the problems found in its annotations.

    Never raises: each unreadable or out-of-range value is reported (key,
    value, what was expected, the default used instead) and replaced by the
    default; see the module docstring for the keys and their ranges.
    """
    annotations = annotations or {}
    problems: list[str] = []

    def percent(key: str, default: float, low: float, high: float, low_open: bool) -> float:
        text = annotations.get(key)
        if text is None:
            return default
        value = _percent(text, low, high, low_open=low_open)
        if value is None:
            opening = "(" if low_open else "["
            problems.append(
                f"{key}={text!r} is not a percentage in {opening}{low:g}, {high:g}]; "
                f"using the default {default:g}"
            )
            return default
        return value

    def whole(key: str, default: int) -> int:
        text = annotations.get(key)
        if text is None:
            return default
        value = _whole(text)
        if value is None:
            problems.append(
                f"{key}={text!r} is not a whole number ≥ 1; using the default {default}"
            )
            return default
        return value

    target = percent(TARGET_UTILIZATION, defaults.target_utilization_percent, 0, 100, True)
    cpu_margin = percent(CPU_MARGIN, defaults.cpu_margin_percent, 0, _MAX_MARGIN, False)
    memory_margin = percent(MEMORY_MARGIN, defaults.memory_margin_percent, 0, _MAX_MARGIN, False)
    low = whole(MIN_REPLICAS, defaults.min_replicas)
    high = whole(MAX_REPLICAS, defaults.max_replicas)
    if low > high:
        problems.append(
            f"{MIN_REPLICAS} {low} is above {MAX_REPLICAS} {high}; "
            f"using the defaults {defaults.min_replicas}–{defaults.max_replicas}"
        )
        low, high = defaults.min_replicas, defaults.max_replicas
    problems += _likely_typos(annotations)
    policy = SizingPolicy(
        targetUtilizationPercent=target,
        cpuMarginPercent=cpu_margin,
        memoryMarginPercent=memory_margin,
        minReplicas=low,
        maxReplicas=high,
    )
    return policy, problems
