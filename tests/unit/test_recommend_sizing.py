"""CT: replicas and requests from the history — percentiles, margins, bounds, window, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headroom.api.capacityrecommendation import CurrentSizing, SizingPolicy
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import SizingDefaults
from headroom.recommend.sizing import recommend

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
DAY = 86_400.0
MI = 2**20
GI = 2**30
DEFAULTS = SizingDefaults()
POLICY = DEFAULTS.policy()  # target 70 %, margins 15 %, replicas 1–100
CURRENT = CurrentSizing(replicas=3, cpuRequestCores=0.5, memoryRequestBytes=GI)


def steady(cpu: float | None = 0.2, memory: int = 400 * MI, count: int = 100) -> ExpertHistory:
    history = ExpertHistory.new(DAY, T0)
    for _ in range(count):
        history.add_observation(cpu, memory, T0)
    return history


@pytest.mark.requirement("CT-001")
def test_the_worked_example() -> None:
    recommended, evidence = recommend(steady(), POLICY, CURRENT, 1.2, NOW)
    # CPU: 0.2 lies in bucket 14 (1.05ⁱ = 2 → i = 14.2), whose upper bound is
    # 0.2 · (1.05¹⁵ − 1) = 0.2 · 1.078928 = 0.215786 (the p95) → ×1.15 = 0.248153 → 250m
    assert recommended.cpuRequestCores == 0.25 and recommended.cpuRequest == "250m"
    assert recommended.cpuReason == (
        "p95 of 100 CPU samples over 0s (half-life 1d) = 216m, +15% margin = 249m, "
        "rounded up to 250m"
    )
    # memory: 400Mi lies in bucket 62 = [20Mi · (1.05⁶² − 1), 20Mi · (1.05⁶³ − 1))
    # = [391.88Mi, 412.47Mi); peak 412.47Mi × 1.15 = 474.34Mi → 30 × 16Mi = 480Mi
    assert recommended.memoryRequestBytes == 480 * MI and recommended.memoryRequest == "480Mi"
    assert recommended.memoryReason == (
        "peak working set within 7d (100 samples over 0s) = 412.5Mi, +15% margin = 474.4Mi, "
        "rounded up to 480Mi"
    )
    # replicas: 1.2 / (0.25 × 0.70) = 1.2 / 0.175 = 6.86 → 7
    assert recommended.replicas == 7
    assert recommended.replicasReason == "total CPU 1200m / (250m × 70% target) = 6.86 → 7"
    assert evidence.windowSeconds == 7 * 86_400 and evidence.halfLifeSeconds == 86_400
    assert (evidence.samples, evidence.cpuSamples) == (100, 100)
    assert (evidence.cpuPercentile, evidence.memoryPercentile) == (95, 100)
    assert evidence.cpuUsageCores == pytest.approx(0.215786, abs=1e-6)
    assert evidence.memoryPeakBytes == pytest.approx(412.47 * MI, rel=1e-4)
    assert evidence.totalCpuUsageCores == 1.2 and evidence.totalMemoryUsageBytes is None
    assert evidence.firstSampleAt == evidence.lastSampleAt == T0


@pytest.mark.requirement("CT-001")
def test_margins_and_target_come_from_the_policy() -> None:
    policy = SizingPolicy(
        targetUtilizationPercent=50,
        cpuMarginPercent=50,
        memoryMarginPercent=0,
        minReplicas=1,
        maxReplicas=100,
    )
    recommended, _ = recommend(steady(), policy, CURRENT, 1.2, NOW)
    # 0.215786 × 1.5 = 0.323679 → 330m; 412.47Mi × 1.0 → 26 × 16Mi = 416Mi
    assert recommended.cpuRequest == "330m" and recommended.memoryRequest == "416Mi"
    # 1.2 / (0.33 × 0.5) = 7.27 → 8
    assert recommended.replicas == 8


def test_the_percentile_comes_from_the_defaults() -> None:
    history = ExpertHistory.new(DAY, T0)
    for index in range(100):
        history.add_observation(0.1 if index < 90 else 1.0, 100 * MI, T0)
    # p95 lands among the 1-core samples; p90 among the 100m ones
    p95, _ = recommend(history, POLICY, CURRENT, None, NOW)
    p90, evidence = recommend(
        history, POLICY, CURRENT, None, NOW, defaults=SizingDefaults(cpu_percentile=90)
    )
    assert p95.cpuRequestCores > 1.0 > 0.2 > p90.cpuRequestCores
    assert evidence.cpuPercentile == 90


@pytest.mark.requirement("CT-001")
def test_memory_takes_the_peak_not_a_percentile() -> None:
    history = steady(memory=400 * MI, count=999)
    history.add_observation(0.2, 2 * GI, T0)  # one sample in a thousand
    recommended, _ = recommend(history, POLICY, CURRENT, None, NOW)
    # 2048Mi lies in bucket 95 = [20Mi · (1.05⁹⁵ − 1), 20Mi · (1.05⁹⁶ − 1)) = [2040.7Mi, 2143.7Mi)
    # → 2143.7Mi × 1.15 = 2465.3Mi → 64Mi steps above 1Gi: 39 × 64Mi = 2496Mi
    assert recommended.memoryRequest == "2496Mi"


@pytest.mark.requirement("CT-001")
def test_a_peak_outside_the_window_is_forgotten() -> None:
    history = steady(memory=2 * GI, count=1)
    history.add_observation(0.2, 400 * MI, T0 + timedelta(days=8))
    later = T0 + timedelta(days=8)
    recommended, _ = recommend(history, POLICY, CURRENT, None, later)
    assert recommended.memoryRequest == "480Mi"  # the 2Gi sample is 8 days old: gone


def test_no_samples_keep_the_current_sizing() -> None:
    recommended, evidence = recommend(ExpertHistory.new(DAY, T0), POLICY, CURRENT, 1.2, NOW)
    assert (recommended.replicas, recommended.cpuRequest, recommended.memoryRequest) == (
        3,
        "500m",
        "1Gi",
    )
    assert recommended.replicasReason == "no CPU samples yet: keeping the current 3 replicas"
    assert recommended.cpuReason == "no CPU samples yet: keeping the current request 500m"
    assert recommended.memoryReason == (
        "no memory samples in the window: keeping the current request 1Gi"
    )
    assert evidence.samples == 0 and evidence.cpuUsageCores is None
    assert evidence.memoryPeakBytes is None


def test_no_samples_and_no_requests_give_the_minimums() -> None:
    current = CurrentSizing(replicas=0)
    recommended, _ = recommend(ExpertHistory.new(DAY, T0), POLICY, current, None, NOW)
    assert (recommended.replicas, recommended.cpuRequest, recommended.memoryRequest) == (
        1,
        "10m",
        "32Mi",
    )
    assert recommended.replicasReason.endswith("clamped to [1, 100]: 1")
    assert "no current request: the minimum 10m" in recommended.cpuReason


def test_memory_only_samples_size_memory_but_not_cpu() -> None:
    # a pod's first cycle carries no CPU figure
    recommended, evidence = recommend(steady(cpu=None), POLICY, CURRENT, 1.2, NOW)
    assert recommended.memoryRequest == "480Mi" and recommended.cpuRequest == "500m"
    assert recommended.replicas == 3
    assert (evidence.samples, evidence.cpuSamples) == (100, 0)


@pytest.mark.requirement("CT-001")
def test_requests_are_clamped_to_the_bounds() -> None:
    tight = SizingDefaults(
        min_cpu_cores=0.3, max_cpu_cores=2, min_memory_bytes=512 * MI, max_memory_bytes=GI
    )
    low, _ = recommend(steady(), POLICY, CURRENT, None, NOW, defaults=tight)
    assert (low.cpuRequest, low.memoryRequest) == ("300m", "512Mi")
    assert low.cpuReason.endswith("rounded up to 250m, raised to the minimum 300m")
    assert low.memoryReason.endswith("rounded up to 480Mi, raised to the minimum 512Mi")
    high, _ = recommend(steady(cpu=5.0, memory=4 * GI), POLICY, CURRENT, None, NOW, defaults=tight)
    assert (high.cpuRequest, high.memoryRequest) == ("2", "1Gi")
    assert high.cpuReason.endswith("capped at the maximum 2")
    assert high.memoryReason.endswith("capped at the maximum 1Gi")


def test_a_current_request_out_of_bounds_is_clamped_when_kept() -> None:
    current = CurrentSizing(replicas=3, cpuRequestCores=100.0, memoryRequestBytes=MI)
    recommended, _ = recommend(ExpertHistory.new(DAY, T0), POLICY, current, None, NOW)
    assert (recommended.cpuRequest, recommended.memoryRequest) == ("64", "32Mi")
    assert recommended.cpuReason.endswith(", clamped to 64")
    assert recommended.memoryReason.endswith(", clamped to 32Mi")


@pytest.mark.requirement("CT-001")
@pytest.mark.parametrize(
    ("total", "replicas", "reason_end"),
    [
        (0.0, 1, "= 0.00 → 0, raised to minReplicas 1"),
        (0.175, 1, "= 1.00 → 1"),  # exactly one replica's share: no spurious second
        (0.1751, 2, "= 1.00 → 2"),
        (100.0, 100, "= 571.43 → 572, capped at maxReplicas 100"),  # 100 / 0.175
    ],
)
def test_replicas_follow_total_usage_within_bounds(
    total: float, replicas: int, reason_end: str
) -> None:
    recommended, _ = recommend(steady(), POLICY, CURRENT, total, NOW)
    assert recommended.replicas == replicas
    assert recommended.replicasReason.endswith(reason_end)


def test_unknown_total_keeps_the_current_replicas() -> None:
    recommended, _ = recommend(steady(), POLICY, CURRENT, None, NOW)
    assert recommended.replicas == 3


def test_the_persisted_history_is_accepted_as_is() -> None:
    history = steady()
    from_model, _ = recommend(history.to_model(), POLICY, CURRENT, 1.2, NOW)
    from_memory, _ = recommend(history, POLICY, CURRENT, 1.2, NOW)
    assert from_model == from_memory


def test_recommend_leaves_the_history_alone() -> None:
    history = steady()
    before = history.to_model()
    recommend(history, POLICY, CURRENT, 1.2, NOW + timedelta(days=30))
    assert history.to_model() == before


def test_the_span_and_counts_read_well() -> None:
    history = ExpertHistory.new(DAY, T0)
    for minute in range(0, 3 * 24 * 60 + 4 * 60, 10):
        history.add_observation(0.2, 400 * MI, T0 + timedelta(minutes=minute))
    recommended, evidence = recommend(history, POLICY, CURRENT, 1.2, T0 + timedelta(days=4))
    # (3 × 24 × 60 + 240) / 10 = 456 samples, the last at 3d 3h 50m
    assert recommended.cpuReason.startswith("p95 of 456 CPU samples over 3d 3h (half-life 1d)")
    assert evidence.lastSampleAt == T0 + timedelta(days=3, hours=3, minutes=50)
