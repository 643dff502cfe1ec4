"""CT: replicas for the window's load, the PodDisruptionBudget floor, HPA min/max — by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headroom.api.capacityrecommendation import CurrentSizing, SizingPolicy
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.replicas import (
    Autoscaler,
    DisruptionBudget,
    allowed_down,
    disruption_floor,
    record_total_cpu,
)
from headroom.recommend.sizing import recommend
from tests.unit.test_recommend_properties import (
    RUNS,
    Sample,
    currents,
    history_of,
    policies,
    samples,
)
from tests.unit.test_recommend_properties import T0 as T1

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0
MI = 2**20
DEFAULTS = SizingDefaults()
POLICY = DEFAULTS.policy()  # target 70 %, margins 15 %, replicas 1–100
CURRENT = CurrentSizing(replicas=3, cpuRequestCores=0.5, memoryRequestBytes=2**30)
PODS = 4


def busy(minute: int) -> bool:
    """12:00–18:00 is the busy quarter of the day."""
    return 12 * 60 <= minute % 1440 < 18 * 60


def a_day(last_total: float) -> tuple[ExpertHistory, datetime]:
    """A day and a minute of per-minute reports from 4 pods: 2 cores in all from 12:00 to 18:00,
    0.5 cores the rest of the day; the very last minute at ``last_total``."""
    history = ExpertHistory.new(DAY, T0)
    for minute in range(1441):
        at = T0 + timedelta(minutes=minute)
        total = 2.0 if busy(minute) else 0.5
        if minute == 1440:
            total = last_total
        for _ in range(PODS):
            history.add_observation(total / PODS, 400 * MI, at)
        assert record_total_cpu(history, total, at, DEFAULTS.load_sample_seconds)
    return history, T0 + timedelta(minutes=1440)


# Buckets (see test_recommend_sizing): start(i) = 0.2 · (1.05ⁱ − 1) cores.
# per pod, busy: 0.5 → bucket 25, upper bound start(26) = 0.2 · (3.555673 − 1) = 0.511135
#   → ×1.15 = 0.587805 → CPU request 590m (25 % of samples are busy: p95 is among them);
# total, busy: 2.0 → bucket 49, upper bound start(50) = 0.2 · (11.467400 − 1) = 2.093480;
# total, quiet: 0.5 → 0.511135 (p10: 75 % of the time is quiet).
SHARE = 0.59 * 0.70  # = 0.413 cores per replica at the 70 % target


@pytest.mark.requirement("CT-001")
@pytest.mark.parametrize("last_total", [0.3, 2.0, 4.0])
def test_replicas_follow_the_days_load_not_its_last_minute(last_total: float) -> None:
    history, now = a_day(last_total)
    recommended, evidence = recommend(history, POLICY, CURRENT, last_total, now)
    assert recommended.cpuRequest == "590m"
    # p95 of the total 2.093480 / 0.413 = 5.07 → 6, whatever the last minute was; the rule of
    # the moment would have said ⌈0.3 / 0.413⌉ = 1, ⌈2.0 / 0.413⌉ = 5 or ⌈4.0 / 0.413⌉ = 10.
    assert recommended.replicas == 6
    assert recommended.replicasReason == (
        "p95 of 1,441 total-CPU samples over 1d = 2094m / (590m × 70% target) = 5.07 → 6"
    )
    assert evidence.totalCpuUsageCores == last_total  # the moment's figure stays in the evidence
    assert evidence.load is not None
    assert evidence.load.percentile == 95 and evidence.load.samples == 1441
    assert evidence.load.percentileCores == pytest.approx(2.093480, abs=1e-6)
    assert evidence.load.lowPercentileCores == pytest.approx(0.511135, abs=1e-6)


@pytest.mark.requirement("CT-001")
def test_without_load_history_the_total_of_the_moment_stands_in() -> None:
    history, now = a_day(0.5)
    history.total_cpu = None
    history.total_cpu_samples = 0
    recommended, evidence = recommend(history, POLICY, CURRENT, 1.2, now)
    # 1.2 / 0.413 = 2.91 → 3
    assert recommended.replicasReason == "total CPU 1200m / (590m × 70% target) = 2.91 → 3"
    assert evidence.load is None


def test_the_total_is_sampled_at_a_fixed_cadence() -> None:
    history = ExpertHistory.new(DAY, T0)
    assert record_total_cpu(history, 1.0, T0, 60)
    assert not record_total_cpu(history, 9.0, T0 + timedelta(seconds=59), 60)  # not due
    assert not record_total_cpu(history, None, T0 + timedelta(seconds=90), 60)  # no figure
    assert record_total_cpu(history, 2.0, T0 + timedelta(seconds=60), 60)
    assert history.total_cpu_samples == 2
    restored = ExpertHistory.from_model(history.to_model())
    assert (
        restored.total_cpu_samples == 2 and restored.last_total_cpu_at == history.last_total_cpu_at
    )
    assert restored.total_cpu is not None and history.total_cpu is not None
    assert restored.total_cpu.percentile(95) == history.total_cpu.percentile(95)


@pytest.mark.requirement("CT-001")
@pytest.mark.parametrize(
    ("budget", "floor"),
    [
        (DisruptionBudget("b", min_available=2), 3),  # 3 − 2 = 1 may go, 2 serve
        (DisruptionBudget("b", max_unavailable=1), 2),  # 1 may go, 1 serves
        (DisruptionBudget("b", max_unavailable=3), 4),
        # 50 %: r = 2 → ⌈1⌉ must stay, 1 may go
        (DisruptionBudget("b", min_available="50%"), 2),
        # 80 %: r = 4 → ⌈3.2⌉ = 4 stay, none may go; r = 5 → ⌈4⌉ = 4 stay, 1 may go
        (DisruptionBudget("b", min_available="80%"), 5),
        # 60 % unavailable: r = 2 → ⌈1.2⌉ = 2 down, none serves; r = 3 → ⌈1.8⌉ = 2, 1 serves
        (DisruptionBudget("b", max_unavailable="60%"), 3),
    ],
)
def test_the_disruption_budget_floor(budget: DisruptionBudget, floor: int) -> None:
    assert disruption_floor(budget)[0] == floor
    down = allowed_down(budget, floor)
    assert 1 <= down <= floor - 1  # a drain can evict one; one still serves
    below = allowed_down(budget, floor - 1)
    assert not 1 <= below <= floor - 2


@pytest.mark.parametrize(
    ("budget", "words"),
    [
        (DisruptionBudget("strict", min_available="100%"), "lets no replica be evicted"),
        (DisruptionBudget("strict", max_unavailable=0), "lets no replica be evicted"),
        (DisruptionBudget("loose", min_available=0), "lets every replica be down at once"),
        (DisruptionBudget("odd", min_available="half"), "unreadable"),
    ],
)
def test_budgets_that_set_no_floor_say_why(budget: DisruptionBudget, words: str) -> None:
    floor, reason = disruption_floor(budget)
    assert floor is None and words in reason


@pytest.mark.requirement("CT-001")
def test_the_budget_raises_replicas_and_says_so() -> None:
    history, now = a_day(0.5)
    recommended, evidence = recommend(
        history,
        POLICY,
        CURRENT,
        0.5,
        now,
        budget=DisruptionBudget("expert-pdb", min_available=6),
    )
    assert recommended.replicas == 7  # the load needs 6; minAvailable 6 needs 6 + 1
    assert recommended.replicasReason.endswith(
        "= 5.07 → 6, raised to 7 for PodDisruptionBudget expert-pdb (minAvailable 6)"
    )
    assert evidence.pdb == "expert-pdb"
    strict, _ = recommend(
        history, POLICY, CURRENT, 0.5, now, budget=DisruptionBudget("s", max_unavailable=0)
    )
    assert strict.replicas == 6 and "lets no replica be evicted" in strict.replicasReason


@pytest.mark.requirement("CT-001")
def test_an_hpa_gets_min_and_max_for_the_window() -> None:
    history, now = a_day(0.5)
    hpa = Autoscaler("expert-hpa", min_replicas=1, max_replicas=4, cpu_utilization_percent=70)
    recommended, _ = recommend(history, POLICY, CURRENT, 0.5, now, autoscaler=hpa)
    advice = recommended.hpa
    assert advice is not None
    # min: p10 of the total 0.511135 / 0.413 = 1.24 → 2; max: peak 2.093480 / 0.413 = 5.07 → 6
    assert (advice.minReplicas, advice.maxReplicas) == (2, 6)
    assert (advice.currentMinReplicas, advice.currentMaxReplicas) == (1, 4)
    assert advice.minReplicasReason == "p10 of the total CPU 512m / (590m × 70% HPA target) = 2"
    assert advice.maxReplicasReason == (
        "peak total CPU within the window 2094m / (590m × 70% HPA target) = 6"
    )
    # 70 % of 590m = 413m per pod ≤ the per-pod p95 511m the request is sized for
    assert advice.targetAgrees is True and advice.targetCPUUtilizationPercent == 70
    assert advice.targetReason == (
        "HPA target 70% of the recommended 590m = 413m per pod, at or below the per-pod CPU "
        "512m the request is sized for: agrees"
    )
    assert "HorizontalPodAutoscaler expert-hpa owns the replicas" in recommended.replicasReason


@pytest.mark.requirement("CT-001")
def test_an_hpa_target_above_what_the_request_plans_for_disagrees() -> None:
    history, now = a_day(0.5)
    hpa = Autoscaler("h", min_replicas=2, max_replicas=10, cpu_utilization_percent=90)
    recommended, _ = recommend(
        history,
        POLICY,
        CURRENT,
        0.5,
        now,
        autoscaler=hpa,
        budget=DisruptionBudget("b", min_available=2),
    )
    advice = recommended.hpa
    assert advice is not None
    # 90 % of 590m = 531m per pod > 511m: disagrees; the highest that agrees is
    # ⌊0.511135 / 0.59 × 100⌋ = ⌊86.6⌋ = 86 %
    assert advice.targetAgrees is False
    assert advice.targetReason.endswith("set the HPA's target to at most 86%")
    assert "(the policy's 70% is not used)" in advice.targetReason
    # share 0.59 × 0.9 = 0.531: p10 0.511135 / 0.531 → 1, raised to the PDB's floor 3;
    # peak 2.093480 / 0.531 = 3.94 → 4
    assert (advice.minReplicas, advice.maxReplicas) == (3, 4)
    assert advice.minReplicasReason.endswith(
        "raised to 3 for PodDisruptionBudget b (minAvailable 2)"
    )


def test_an_hpa_on_other_metrics_gets_an_estimate_and_no_agreement() -> None:
    history, now = a_day(0.5)
    hpa = Autoscaler("h", 1, 10, other_metrics=("Pods/requests_per_second",))
    recommended, _ = recommend(history, POLICY, CURRENT, 0.5, now, autoscaler=hpa)
    advice = recommended.hpa
    assert advice is not None and advice.targetAgrees is None
    assert advice.targetReason.startswith("the HPA scales on Pods/requests_per_second, not CPU")
    assert (advice.minReplicas, advice.maxReplicas) == (2, 6)  # at the policy's 70 %


def test_an_hpa_with_an_average_value_target() -> None:
    history, now = a_day(0.5)
    hpa = Autoscaler("h", 1, 10, cpu_average_cores=0.4)
    recommended, _ = recommend(history, POLICY, CURRENT, 0.5, now, autoscaler=hpa)
    advice = recommended.hpa
    assert advice is not None
    # 0.4 per pod ≤ 0.511135 agrees; min ⌈0.511135 / 0.4⌉ = 2, max ⌈2.093480 / 0.4⌉ = 6
    assert advice.targetAgrees is True
    assert (advice.minReplicas, advice.maxReplicas) == (2, 6)


def test_an_hpa_without_history_keeps_its_bounds_but_honours_the_floor() -> None:
    history = ExpertHistory.new(DAY, T0)
    hpa = Autoscaler("h", min_replicas=1, max_replicas=5, cpu_utilization_percent=80)
    recommended, _ = recommend(
        history, POLICY, CURRENT, None, T0, autoscaler=hpa, budget=DisruptionBudget("b", 2)
    )
    advice = recommended.hpa
    assert advice is not None and (advice.minReplicas, advice.maxReplicas) == (3, 5)
    assert advice.targetAgrees is None
    assert advice.minReplicasReason.startswith("no load history yet")


@RUNS
@given(
    samples,
    policies(),
    currents,
    st.lists(st.floats(min_value=0, max_value=500), min_size=0, max_size=30),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=200),
    st.none() | st.integers(min_value=0, max_value=20),
)
def test_hpa_bounds_are_ordered_and_within_the_policy(
    given_samples: list[Sample],
    policy: SizingPolicy,
    current: CurrentSizing,
    loads: list[float],
    target: int,
    hpa_max: int,
    min_available: int | None,
) -> None:
    history = history_of(given_samples, DAY)
    for minute, load in enumerate(loads):
        record_total_cpu(history, load, T1 + timedelta(minutes=minute), 60)
    budget = None if min_available is None else DisruptionBudget("b", min_available=min_available)
    hpa = Autoscaler("h", 1, hpa_max, cpu_utilization_percent=target)
    recommended, _ = recommend(
        history, policy, current, None, T1 + timedelta(days=1), autoscaler=hpa, budget=budget
    )
    advice = recommended.hpa
    assert advice is not None
    assert advice.minReplicas <= advice.maxReplicas
    if loads:
        assert policy.minReplicas <= advice.minReplicas
        assert advice.maxReplicas <= policy.maxReplicas
    assert policy.minReplicas <= recommended.replicas <= policy.maxReplicas
    floor = None if budget is None else disruption_floor(budget)[0]
    if floor is not None and floor <= policy.maxReplicas:
        assert recommended.replicas >= floor and advice.minReplicas >= floor
