"""CT: bounds wide while history is short, narrow as it grows; `Confident`; provisional columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given

from headroom.api.capacityrecommendation import CurrentSizing, SizingPolicy
from headroom.recommend.confidence import (
    bounds_factor,
    columns,
    confidence,
    confidence_days,
    confident_condition,
)
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.replicas import Autoscaler
from headroom.recommend.sizing import recommend
from tests.unit.test_recommend_properties import (
    RUNS,
    Sample,
    currents,
    history_of,
    offsets,
    policies,
    samples,
    sizing_defaults,
    totals,
)
from tests.unit.test_recommend_properties import T0 as T1

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0
MI = 2**20
DEFAULTS = SizingDefaults()
POLICY = DEFAULTS.policy()
CURRENT = CurrentSizing(replicas=3, cpuRequestCores=0.5, memoryRequestBytes=2**30)


def per_minute(minutes: int, pods: int = 1) -> ExpertHistory:
    """One sample a minute per pod for ``minutes`` minutes (0.2 cores, 400Mi each)."""
    history = ExpertHistory.new(DAY, T0)
    for minute in range(minutes + 1):
        for _ in range(pods):
            history.add_observation(0.2, 400 * MI, T0 + timedelta(minutes=minute))
    return history


@pytest.mark.requirement("CT-001")
@pytest.mark.parametrize(
    ("minutes", "factor"),
    [
        (10, 37.0),  # c = 10 / 1440 days: 1 + 0.25 × 144
        (60, 7.0),  # c = 1/24: 1 + 0.25 × 24
        (360, 2.0),  # c = 1/4
        (1440, 1.25),  # a day
        (7 * 1440, 1 + 0.25 / 7),  # a week: 1.0357
    ],
)
def test_the_factor_narrows_as_the_history_grows(minutes: int, factor: float) -> None:
    history = per_minute(minutes)
    assert bounds_factor(confidence_days(history)) == pytest.approx(factor)


def test_few_samples_over_a_long_span_count_as_little_history() -> None:
    history = ExpertHistory.new(DAY, T0)
    for day in range(8):  # one sample a day for a week: 8 samples
        history.add_observation(0.2, 400 * MI, T0 + timedelta(days=day))
    # span 7 days, but 8 / 1440 days of samples (as VPA counts)
    assert confidence_days(history) == pytest.approx(8 / 1440)
    assert not confidence(history, DEFAULTS).confident
    assert bounds_factor(0) == 100


@pytest.mark.requirement("CT-001")
def test_an_hour_of_history_gives_a_useful_figure_with_wide_bounds() -> None:
    history = per_minute(60)
    recommended, _ = recommend(history, POLICY, CURRENT, 0.2, T0 + timedelta(hours=1))
    # The figure itself is what a week would give for the same usage (see test_recommend_sizing)
    assert (recommended.cpuRequest, recommended.memoryRequest) == ("250m", "480Mi")
    bounds = recommended.bounds
    assert bounds is not None and bounds.factor == 7
    # CPU: 250m ÷ 7 = 35.7m → 40m; 250m × 7 = 1750m
    assert (bounds.cpuLower, bounds.cpuUpper) == ("40m", "1750m")
    # memory: 480Mi × 7 = 3360Mi → 64Mi steps: 3392Mi; 480Mi ÷ 7 = 68.6Mi, but never below the
    # peak already seen (400Mi in the bucket up to 412.47Mi → 416Mi)
    assert (bounds.memoryLower, bounds.memoryUpper) == ("416Mi", "3392Mi")
    figures = confidence(history, DEFAULTS)
    assert (figures.historySeconds, figures.historySpan, figures.confident) == (3600, "1h", False)
    condition = confident_condition(figures)
    assert (condition.status, condition.reason) == ("False", "ShortHistory")
    assert condition.message.startswith("history spans 1h, confident from 1d: provisional")
    shown = columns(recommended, figures.confident)
    assert (shown.replicas, shown.cpuRequest, shown.memoryRequest) == ("~2", "~250m", "~480Mi")


@pytest.mark.requirement("CT-001")
def test_a_day_of_history_is_confident_and_the_bounds_narrow() -> None:
    history = per_minute(1440, pods=2)
    recommended, _ = recommend(history, POLICY, CURRENT, 0.4, T0 + timedelta(days=1))
    bounds = recommended.bounds
    assert bounds is not None and bounds.factor == 1.25
    # 250m ÷ 1.25 = 200m, × 1.25 = 312.5m → 320m; memory 480Mi × 1.25 = 600Mi → 608Mi
    assert (bounds.cpuLower, bounds.cpuUpper) == ("200m", "320m")
    assert (bounds.memoryLower, bounds.memoryUpper) == ("416Mi", "608Mi")
    figures = confidence(history, DEFAULTS)
    assert figures.confident and figures.days == 1
    condition = confident_condition(figures)
    assert (condition.status, condition.reason) == ("True", "EnoughHistory")
    assert condition.message == "history spans 1d (confident from 1d)"
    shown = columns(recommended, figures.confident)
    assert (shown.replicas, shown.cpuRequest) == ("3", "250m")  # 0.4 / 0.175 = 2.29 → 3


def test_the_condition_message_changes_by_the_hour_not_the_minute() -> None:
    messages = {
        confident_condition(confidence(per_minute(minutes), DEFAULTS)).message
        for minutes in range(120, 180)
    }
    assert messages == {
        "history spans 2h, confident from 1d: provisional, see the bounds "
        "(status.recommended.bounds)"
    }


def test_the_columns_show_an_hpa_owning_replicas() -> None:
    history = per_minute(1440)
    hpa = Autoscaler("h", 1, 10, cpu_utilization_percent=70)
    recommended, _ = recommend(
        history, POLICY, CURRENT, 0.2, T0 + timedelta(days=1), autoscaler=hpa
    )
    assert recommended.hpa is not None
    low, high = recommended.hpa.minReplicas, recommended.hpa.maxReplicas
    assert columns(recommended, True).replicas == f"hpa:{low}-{high}"
    assert columns(recommended, False).replicas == f"~hpa:{low}-{high}"


def test_no_history_at_all_has_the_widest_bounds_within_the_request_limits() -> None:
    recommended, _ = recommend(ExpertHistory.new(DAY, T0), POLICY, CURRENT, None, T0)
    bounds = recommended.bounds
    assert bounds is not None and bounds.factor == 100
    assert (bounds.cpuLower, bounds.cpuUpper) == ("10m", "50")  # 500m ÷ / × 100
    assert bounds.memoryUpper == "100Gi"


@RUNS
@given(samples, sizing_defaults(), policies(), currents, totals, offsets)
def test_bounds_always_hold_the_recommendation(
    given_samples: list[Sample],
    defaults: SizingDefaults,
    policy: SizingPolicy,
    current: CurrentSizing,
    total: float | None,
    now_offset: int,
) -> None:
    history = history_of(given_samples, defaults.half_life_seconds)
    now = T1 + timedelta(seconds=now_offset)
    recommended, _ = recommend(history, policy, current, total, now, defaults=defaults)
    bounds = recommended.bounds
    assert bounds is not None and 1 <= bounds.factor <= 100
    assert defaults.min_cpu_cores <= bounds.cpuLowerCores <= recommended.cpuRequestCores
    assert recommended.cpuRequestCores <= bounds.cpuUpperCores <= defaults.max_cpu_cores
    assert bounds.memoryLowerBytes <= recommended.memoryRequestBytes <= bounds.memoryUpperBytes
    assert bounds.memoryUpperBytes <= defaults.max_memory_bytes
