"""CT: the decaying histogram — buckets, percentiles, decay, window, persistence."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from headroom.api.capacityrecommendation import DecayingHistogram as HistogramModel
from headroom.api.capacityrecommendation import UsageHistory
from headroom.recommend.histogram import MAX_BUCKET, DecayingHistogram
from headroom.recommend.history import ExpertHistory

# 2026-01-01T00:00Z is 1767225600 s = 20454 whole days after the epoch: a half-life boundary.
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0
HOUR = timedelta(hours=1)
MI = 2**20
GI = 2**30

# CPU buckets: start(i) = 0.01 · (1.05ⁱ − 1) / 0.05 = 0.2 · (1.05ⁱ − 1)
START_1 = 0.01  # 0.2 · 0.05
START_2 = 0.0205  # 0.2 · 0.1025
START_3 = 0.031525  # 0.2 · 0.157625


def cpu_histogram(half_life: float = DAY) -> DecayingHistogram:
    return DecayingHistogram.for_cpu(half_life, T0)


def test_bucket_boundaries_grow_by_five_percent() -> None:
    histogram = cpu_histogram()
    assert histogram.bucket_start(0) == 0
    assert histogram.bucket_start(1) == pytest.approx(START_1)
    assert histogram.bucket_start(2) == pytest.approx(START_2)
    assert histogram.bucket_start(3) == pytest.approx(START_3)
    assert [histogram.bucket_of(v) for v in (0, 0.0099, 0.01, 0.02, 0.021, 0.03)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


@pytest.mark.parametrize("value", [0.0, 1e-9, 0.01, 0.2, 1.0, 63.9, 1000.0, 123456.0])
def test_a_value_lies_in_its_bucket(value: float) -> None:
    histogram = cpu_histogram()
    bucket = histogram.bucket_of(value)
    assert histogram.bucket_start(bucket) <= value < histogram.bucket_start(bucket + 1)


@pytest.mark.requirement("CT-001")
def test_percentile_is_the_upper_bound_of_the_bucket() -> None:
    histogram = cpu_histogram()
    for _ in range(90):
        histogram.add_sample(0.005, 1.0, T0)  # bucket 0: [0, 0.01)
    for _ in range(10):
        histogram.add_sample(0.025, 1.0, T0)  # bucket 2: [0.0205, 0.031525)
    # cumulative weight: 90 after bucket 0, 100 after bucket 2
    assert histogram.percentile(0) == pytest.approx(START_1)
    assert histogram.percentile(50) == pytest.approx(START_1)
    assert histogram.percentile(90) == pytest.approx(START_1)  # 90 ≥ 0.90 · 100
    assert histogram.percentile(90.1) == pytest.approx(START_3)  # 90 < 90.1
    assert histogram.percentile(100) == pytest.approx(START_3)
    assert histogram.total_weight(T0) == pytest.approx(100)


def test_an_empty_histogram_says_zero() -> None:
    histogram = cpu_histogram()
    assert histogram.is_empty()
    assert histogram.percentile(95) == 0
    assert histogram.peak(T0, 7 * DAY) == 0
    assert histogram.total_weight(T0) == 0


@pytest.mark.parametrize("percent", [-1, 100.5, math.nan])
def test_percentile_outside_0_100_is_refused(percent: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        cpu_histogram().percentile(percent)


@pytest.mark.requirement("CT-001")
def test_newer_samples_weigh_more() -> None:
    # A at t0 weighs 1; B one half-life later weighs 2: total 3, B holds 2/3 of it.
    newer_high = cpu_histogram()
    newer_high.add_sample(0.005, 1.0, T0)
    newer_high.add_sample(0.025, 1.0, T0 + timedelta(days=1))
    assert newer_high.percentile(33) == pytest.approx(START_1)  # 1 ≥ 0.33 · 3 = 0.99
    assert newer_high.percentile(34) == pytest.approx(START_3)  # 1 < 0.34 · 3 = 1.02
    assert newer_high.percentile(50) == pytest.approx(START_3)
    newer_low = cpu_histogram()
    newer_low.add_sample(0.025, 1.0, T0)
    newer_low.add_sample(0.005, 1.0, T0 + timedelta(days=1))
    assert newer_low.percentile(50) == pytest.approx(START_1)  # 2 ≥ 0.5 · 3


def test_total_weight_halves_every_half_life() -> None:
    histogram = cpu_histogram()
    histogram.add_sample(0.1, 1.0, T0)
    assert histogram.total_weight(T0) == 1
    assert histogram.total_weight(T0 + timedelta(days=1)) == 0.5
    assert histogram.total_weight(T0 + timedelta(days=2)) == 0.25


def test_reference_moves_forward_before_weights_overflow() -> None:
    histogram = cpu_histogram(half_life=1.0)  # one-second half-life: exponents grow fast
    histogram.add_sample(0.005, 1.0, T0)
    histogram.add_sample(0.025, 1.0, T0 + timedelta(seconds=100))  # 2¹⁰⁰ would be too big
    assert histogram.reference_time == T0 + timedelta(seconds=100)
    assert max(histogram.weights.values()) == 1.0  # the new sample, at the new reference
    assert histogram.weights[0] == 2.0**-100  # the old one, scaled exactly
    assert histogram.percentile(50) == pytest.approx(START_3)
    histogram.add_sample(0.025, 1.0, T0 + timedelta(seconds=3000))
    assert set(histogram.weights) == {2}  # 2⁻²⁹⁰⁰ underflowed and was dropped
    assert all(math.isfinite(w) for w in histogram.weights.values())


def memory_history() -> DecayingHistogram:
    """1Gi once at t0, then 512Mi once a day for eight days."""
    histogram = DecayingHistogram.for_memory(DAY, T0)
    histogram.add_sample(GI, 1.0, T0)
    for day in range(1, 9):
        histogram.add_sample(512 * MI, 1.0, T0 + timedelta(days=day))
    return histogram


def upper(histogram: DecayingHistogram, value: float) -> float:
    return histogram.bucket_start(histogram.bucket_of(value) + 1)


@pytest.mark.requirement("CT-001")
def test_a_one_off_peak_counts_for_exactly_the_window() -> None:
    histogram = memory_history()
    week = 7 * DAY
    # decayed weight of the 1Gi sample at t0 + 7d: 2⁻⁷ = the window's threshold 2^(−7d/1d)
    assert histogram.peak(T0 + timedelta(days=7), week) == upper(histogram, GI)
    assert histogram.peak(T0 + timedelta(days=7, seconds=1), week) == upper(histogram, 512 * MI)
    assert upper(histogram, GI) >= GI and upper(histogram, GI) < 1.05 * GI


def test_a_recurring_peak_is_remembered_longer() -> None:
    histogram = DecayingHistogram.for_memory(DAY, T0)
    for _ in range(4):
        histogram.add_sample(GI, 1.0, T0)  # weight 4 = 2²: remembered 7d + 2 half-lives
    histogram.add_sample(512 * MI, 1.0, T0 + timedelta(days=9))
    assert histogram.peak(T0 + timedelta(days=9), 7 * DAY) == upper(histogram, GI)
    assert histogram.peak(T0 + timedelta(days=9, seconds=1), 7 * DAY) == upper(histogram, 512 * MI)


def test_prune_forgets_what_left_the_window_and_rounds() -> None:
    histogram = memory_history()
    histogram.prune(T0 + timedelta(days=8) + HOUR, 7 * DAY)
    assert histogram.reference_time == T0 + timedelta(days=8)  # the half-life boundary before
    # the 1Gi sample now weighs 2⁻⁸ ≈ 0.0039 < 2^((1h − 7d) / 1d) ≈ 0.0080: forgotten
    assert list(histogram.weights) == [histogram.bucket_of(512 * MI)]
    # 512Mi: Σ 2^(k−8) for k = 1..8 = 510 / 256 = 1.9921875 → four digits: 1.992
    assert histogram.weights[histogram.bucket_of(512 * MI)] == 1.992


def persisted(history: ExpertHistory) -> ExpertHistory:
    """Through the API model and JSON, as the status stores it."""
    wire = json.loads(json.dumps(history.to_model().to_wire()))
    return ExpertHistory.from_model(UsageHistory.model_validate(wire))


def realistic_week(seed: int = 1) -> tuple[ExpertHistory, datetime]:
    """Five pods, one sample a minute for a week: CPU ~300m ± 30m, memory ~800Mi ± 20Mi."""
    rng = random.Random(seed)
    history = ExpertHistory.new(DAY, T0)
    for minute in range(7 * 24 * 60):
        at = T0 + timedelta(minutes=minute)
        for _ in range(5):
            cpu = None if minute == 0 else max(0.0, rng.gauss(0.3, 0.03))
            history.add_observation(cpu, int(rng.gauss(800, 20) * MI), at)
    return history, T0 + timedelta(days=7)


PERCENTS = (0, 1, 25, 50, 75, 90, 95, 99, 99.9, 100)


def test_persistence_round_trip_gives_identical_figures() -> None:
    history, now = realistic_week()
    for step in ("raw", "pruned"):
        if step == "pruned":
            history.prune(now, 7 * DAY)
        again = persisted(history)
        assert [again.cpu.percentile(p) for p in PERCENTS] == [
            history.cpu.percentile(p) for p in PERCENTS
        ]
        assert again.memory.peak(now, 7 * DAY) == history.memory.peak(now, 7 * DAY)
        assert again.cpu.weights == history.cpu.weights
        assert again.cpu.reference_time == history.cpu.reference_time
        assert (again.samples, again.cpu_samples) == (history.samples, history.cpu_samples)
        assert (again.first_sample_at, again.last_sample_at) == (T0, now - timedelta(minutes=1))


def test_a_pruned_week_is_stored_compactly() -> None:
    history, now = realistic_week()
    history.prune(now, 7 * DAY)
    size = len(json.dumps(history.to_model().to_wire()))
    assert size < 1024, size  # both histograms and the counters: well under 1 KiB
    assert (history.samples, history.cpu_samples) == (50_400, 50_395)  # 5 first cycles had no CPU


def model(**changes: object) -> HistogramModel:
    fields: dict[str, object] = {
        "firstBucketSize": 0.01,
        "growthRatio": 1.05,
        "halfLifeSeconds": DAY,
        "referenceTime": T0,
        "buckets": [1, 2],
        "weights": [1.0, 2.0],
    }
    return HistogramModel.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weights": [1.0]}, "2 buckets but 1 weights"),
        ({"buckets": [2, 2]}, "twice"),
        ({"buckets": [1, MAX_BUCKET + 1]}, "out of range"),
    ],
)
def test_an_inconsistent_model_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecayingHistogram.from_model(model(**changes))


def test_from_model_keeps_the_reference_and_skips_zero_weights() -> None:
    histogram = DecayingHistogram.from_model(
        model(referenceTime=T0 + timedelta(seconds=5), weights=[0.0, 2.0])
    )
    assert histogram.reference_time == T0 + timedelta(seconds=5)
    assert histogram.weights == {2: 2.0}


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_a_nonsense_sample_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="sample"):
        cpu_histogram().add_sample(value, 1.0, T0)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        cpu_histogram().add_sample(0.1, 1.0, datetime(2026, 1, 1))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="growth ratio"):
        DecayingHistogram(0.01, 1.0, DAY, T0)


def test_a_reference_far_behind_now_does_not_overflow() -> None:
    histogram = cpu_histogram(half_life=60.0)
    histogram.add_sample(0.1, 1.0, T0)
    # now is 1,440 half-lives after the reference: 2¹⁴⁴⁰ is beyond a float
    assert histogram.peak(T0 + timedelta(days=1), 3600) == 0
    assert histogram.total_weight(T0 + timedelta(days=1)) == 0


def test_a_larger_sample_never_lowers_the_peak() -> None:
    # Found by hypothesis: with weights counted per bucket, moving one of seven
    # faded samples up a bucket left neither bucket above the window threshold.
    half_life, window = 409_735.0, 60.0
    now = T0 + timedelta(seconds=1_068_410)
    low = DecayingHistogram.for_memory(half_life, T0)
    high = DecayingHistogram.for_memory(half_life, T0)
    for index in range(7):
        low.add_sample(0.0, 1.0, T0)
        high.add_sample(2**20 if index == 2 else 0.0, 1.0, T0)
    assert low.peak(now, window) > 0
    assert high.peak(now, window) >= low.peak(now, window)
