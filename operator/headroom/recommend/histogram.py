"""A decaying histogram of usage samples, after VPA's recommender (CT: percentiles, window).

**Buckets** grow exponentially, so the relative resolution is the same for a
20m expert and a 20-core one: bucket ``i`` covers
``[start(i), start(i+1))`` with ``start(i) = first · (ratioⁱ − 1) / (ratio − 1)``.
With a first bucket of 0.01 core (CPU) or 1 MiB (memory) and a ratio of 1.05,
each bucket is 5 % wider than the one before; a percentile is reported as the
*upper* bound of its bucket, so it errs high by at most about 5 %.

**Weights decay** with a half-life: a sample loses half its weight every
half-life (24 h by default), so last week still counts but today counts more.
As in VPA, weights are not decayed in place: a sample taken at ``t`` is stored
with weight ``w · 2^((t − reference) / half-life)``, which makes newer samples
heavier instead. Only relative weights matter for a percentile, so the
reference time can move forward at any moment by multiplying every weight by
``2^-k``; it does so in whole half-lives (exact in binary floating point) when
the exponent would grow large, and at every :meth:`DecayingHistogram.prune`.

**Window.** A decaying history has no hard edge, so "the last 7 days" needs a
definition. Here a *window* ``W`` is a weight threshold: a bucket still counts
for the peak while its weight, decayed to now, is at least ``2^(-W / half-life)``
— exactly the weight of a single weight-1 sample taken ``W`` ago. So a value
seen once is remembered for ``W``; a value seen ``n`` times (weight ``n``) for
``W + half-life · log2(n)``: a peak that recurs is remembered longer than a
one-off, which for memory is the safe side. :meth:`DecayingHistogram.prune`
forgets buckets below the same threshold.

**Persistence.** :meth:`DecayingHistogram.to_model` writes the non-empty
buckets only (indices and weights) into :class:`headroom.api.DecayingHistogram`,
which lives in the CapacityRecommendation status so a restarted controller
carries on where it stopped; :meth:`DecayingHistogram.from_model` reads it back
exactly. :meth:`DecayingHistogram.prune` keeps the record small (a few hundred
bytes): weights relative to a reference near now, four significant digits.

Differences from VPA (``pkg/recommender/util``): VPA keeps a dense array of
buckets up to a fixed maximum (1,000 cores, 1 TB), stores its checkpoints in a
separate ``VerticalPodAutoscalerCheckpoint`` object with weights rescaled to
integers ≤ 10,000, and weights CPU samples by the container's request; here
buckets are sparse (a dict), the checkpoint is part of the recommendation's own
status, and every per-pod sample weighs 1. KRR keeps no history at all: it asks
Prometheus for a fixed look-back window each run, every sample weighing the
same, so a spike 13 days ago counts as much as one an hour ago, and one 15 days
ago not at all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from headroom.api.capacityrecommendation import DecayingHistogram as HistogramModel

__all__ = [
    "CPU_FIRST_BUCKET_CORES",
    "GROWTH_RATIO",
    "MAX_BUCKET",
    "MEMORY_FIRST_BUCKET_BYTES",
    "DecayingHistogram",
    "to_seconds",
]

CPU_FIRST_BUCKET_CORES = 0.01
"""Width of the first CPU bucket (VPA's too): 10m."""
MEMORY_FIRST_BUCKET_BYTES = float(2**20)
"""Width of the first memory bucket: 1 MiB (VPA uses 10 MB)."""
GROWTH_RATIO = 1.05
"""Each bucket is 5 % wider than the previous one (VPA's ``HistogramBucketSizeGrowth``)."""
MAX_BUCKET = 1000
"""The highest bucket index: far beyond any real figure (1.05¹⁰⁰⁰ ≈ 1.5·10²¹)."""
_MAX_EXPONENT = 64
"""Move the reference forward once a new sample would weigh more than 2⁶⁴."""
_SIGNIFICANT_DIGITS = 4


def to_seconds(moment: datetime) -> float:
    """Seconds since the epoch of a timezone-aware datetime (a naive one is a bug: refused)."""
    if moment.tzinfo is None:
        raise ValueError(f"timezone-aware datetime required, got {moment!r}")
    return moment.timestamp()


def _pow2(exponent: float) -> float:
    """``2 ** exponent``, infinite instead of an OverflowError (a reference far in the past)."""
    return math.inf if exponent >= 1024 else math.exp2(exponent)


def _round_significant(value: float) -> float:
    return float(f"{value:.{_SIGNIFICANT_DIGITS}g}")


class DecayingHistogram:
    """Per-pod usage samples in exponential buckets with exponentially decaying weights.

    ``weights`` maps a bucket index to its weight relative to
    ``reference_seconds`` (see the module docstring). Not thread-safe; cheap
    to add to (one logarithm and one power of two per sample).
    """

    __slots__ = (
        "_log_ratio",
        "_rounded",
        "first_bucket_size",
        "growth_ratio",
        "half_life_seconds",
        "reference_seconds",
        "weights",
    )

    def __init__(
        self,
        first_bucket_size: float,
        growth_ratio: float,
        half_life_seconds: float,
        reference_time: datetime,
    ) -> None:
        if not first_bucket_size > 0 or not growth_ratio > 1 or not half_life_seconds > 0:
            raise ValueError(
                "first bucket size and half-life must be > 0 and the growth ratio > 1, got "
                f"{first_bucket_size!r}, {half_life_seconds!r}, {growth_ratio!r}"
            )
        self.first_bucket_size = float(first_bucket_size)
        self.growth_ratio = float(growth_ratio)
        self.half_life_seconds = float(half_life_seconds)
        self._log_ratio = math.log(self.growth_ratio)
        self.reference_seconds = self._aligned(to_seconds(reference_time))
        self.weights: dict[int, float] = {}
        self._rounded = False
        """Every weight is rounded as :meth:`prune` rounds it (nothing added or shifted since)."""

    @classmethod
    def for_cpu(cls, half_life_seconds: float, reference_time: datetime) -> DecayingHistogram:
        """A histogram for CPU cores: first bucket 10m, ratio 1.05."""
        return cls(CPU_FIRST_BUCKET_CORES, GROWTH_RATIO, half_life_seconds, reference_time)

    @classmethod
    def for_memory(cls, half_life_seconds: float, reference_time: datetime) -> DecayingHistogram:
        """A histogram for memory bytes: first bucket 1 MiB, ratio 1.05."""
        return cls(MEMORY_FIRST_BUCKET_BYTES, GROWTH_RATIO, half_life_seconds, reference_time)

    def _aligned(self, seconds: float) -> float:
        """The whole multiple of the half-life at or before ``seconds`` (as VPA aligns it)."""
        return math.floor(seconds / self.half_life_seconds) * self.half_life_seconds

    @property
    def reference_time(self) -> datetime:
        """The moment at which a stored weight equals the sample's own weight."""
        return datetime.fromtimestamp(self.reference_seconds, UTC)

    def bucket_start(self, bucket: int) -> float:
        """The lower bound of ``bucket`` (0 for bucket 0)."""
        return (
            self.first_bucket_size * math.expm1(bucket * self._log_ratio) / (self.growth_ratio - 1)
        )

    def bucket_of(self, value: float) -> int:
        """The bucket holding ``value``: ``start(i) ≤ value < start(i + 1)``."""
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a sample must be a finite, non-negative number, got {value!r}")
        scaled = value * (self.growth_ratio - 1) / self.first_bucket_size
        bucket = min(int(math.log1p(scaled) / self._log_ratio), MAX_BUCKET)
        while bucket > 0 and self.bucket_start(bucket) > value:
            bucket -= 1
        while bucket < MAX_BUCKET and self.bucket_start(bucket + 1) <= value:
            bucket += 1
        if bucket == MAX_BUCKET and self.bucket_start(MAX_BUCKET + 1) <= value:
            raise ValueError(f"sample {value!r} is beyond the histogram's last bucket")
        return bucket

    def _shift_reference(self, seconds: float) -> None:
        """Move the reference to the half-life boundary at or before ``seconds`` (forward only)."""
        target = self._aligned(seconds)
        steps = round((target - self.reference_seconds) / self.half_life_seconds)
        if steps <= 0:
            return
        shifted = {bucket: math.ldexp(weight, -steps) for bucket, weight in self.weights.items()}
        self.weights = {bucket: weight for bucket, weight in shifted.items() if weight > 0}
        self.reference_seconds = target
        self._rounded = False

    def _decay_exponent(self, seconds: float) -> float:
        return (seconds - self.reference_seconds) / self.half_life_seconds

    def add_sample(self, value: float, weight: float, time: datetime) -> None:
        """Record ``value`` observed at ``time`` with ``weight`` (1 for one pod's sample)."""
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"a weight must be a finite, non-negative number, got {weight!r}")
        bucket = self.bucket_of(value)
        seconds = to_seconds(time)
        if self._decay_exponent(seconds) > _MAX_EXPONENT:
            self._shift_reference(seconds)
        stored = weight * math.exp2(self._decay_exponent(seconds))
        if stored > 0:
            self.weights[bucket] = self.weights.get(bucket, 0.0) + stored
            self._rounded = False

    def is_empty(self) -> bool:
        """True when no sample has any weight left."""
        return not self.weights

    def total_weight(self, at: datetime) -> float:
        """The summed weight of all samples, each decayed to ``at``.

        With weight-1 samples this is the effective number of samples: one
        taken a half-life before ``at`` counts ½.
        """
        total = sum(self.weights.values())
        return total * _pow2(-self._decay_exponent(to_seconds(at))) if total else 0.0

    def percentile(self, percent: float) -> float:
        """The upper bound of the bucket where the cumulative weight reaches ``percent`` %.

        ``percent`` is 0–100. Returns 0 for an empty histogram. Decay weights
        recent samples more; the result never undershoots the true weighted
        percentile and overshoots it by at most one bucket (about 5 %).
        """
        if not 0 <= percent <= 100:
            raise ValueError(f"a percentile is 0–100, got {percent!r}")
        if not self.weights:
            return 0.0
        buckets = sorted(self.weights)
        threshold = percent / 100 * sum(self.weights.values())
        cumulative = 0.0
        for bucket in buckets:
            cumulative += self.weights[bucket]
            if cumulative >= threshold:
                return self.bucket_start(bucket + 1)
        return self.bucket_start(buckets[-1] + 1)

    def _threshold(self, now_seconds: float, window_seconds: float) -> float:
        """The stored weight a bucket needs to still count ``window_seconds`` before now."""
        return _pow2(
            (now_seconds - self.reference_seconds - window_seconds) / self.half_life_seconds
        )

    def peak(self, now: datetime, window_seconds: float) -> float:
        """The upper bound of the highest bucket still within the window; 0 when there is none.

        "Within the window" means the weight of it and every bucket above it, decayed to ``now``, is at least
        that of a single weight-1 sample taken ``window_seconds`` ago (see the
        module docstring): a one-off peak counts for the window, a recurring
        one longer.
        """
        threshold = self._threshold(to_seconds(now), window_seconds)
        # Weight is counted from the top down (this bucket and all above it), so
        # that a larger sample can never lower the peak by leaving a bucket.
        above = 0.0
        for bucket in sorted(self.weights, reverse=True):
            above += self.weights[bucket]
            if above >= threshold:
                return self.bucket_start(bucket + 1)
        return 0.0

    def prune(self, now: datetime, window_seconds: float) -> None:
        """Forget what fell out of the window and keep the record compact.

        Moves the reference time to the half-life boundary at or before
        ``now``, drops buckets whose decayed weight is below the window's
        threshold (they no longer count for the peak and weigh next to
        nothing in a percentile), and rounds the remaining weights to four
        significant digits (a relative change below 0.05 %). Call it before
        :meth:`to_model`.
        """
        seconds = to_seconds(now)
        self._shift_reference(seconds)
        threshold = self._threshold(seconds, window_seconds)
        if self._rounded:  # rounding is idempotent: only what left the window goes
            if any(weight < threshold for weight in self.weights.values()):
                self.weights = {b: w for b, w in self.weights.items() if w >= threshold}
            return
        self.weights = {
            bucket: _round_significant(weight)
            for bucket, weight in self.weights.items()
            if weight >= threshold
        }
        self._rounded = True

    def to_model(self) -> HistogramModel:
        """The persisted form: sparse bucket indices, ascending, with their weights (exact)."""
        buckets = sorted(self.weights)
        return HistogramModel(
            firstBucketSize=self.first_bucket_size,
            growthRatio=self.growth_ratio,
            halfLifeSeconds=self.half_life_seconds,
            referenceTime=self.reference_time,
            buckets=buckets,
            weights=[self.weights[bucket] for bucket in buckets],
        )

    @classmethod
    def from_model(cls, model: HistogramModel) -> DecayingHistogram:
        """Read a persisted histogram back; :class:`ValueError` when it is inconsistent."""
        if len(model.buckets) != len(model.weights):
            raise ValueError(
                f"histogram has {len(model.buckets)} buckets but {len(model.weights)} weights"
            )
        if len(set(model.buckets)) != len(model.buckets):
            raise ValueError("histogram lists a bucket twice")
        histogram = cls(
            model.firstBucketSize, model.growthRatio, model.halfLifeSeconds, model.referenceTime
        )
        histogram.reference_seconds = to_seconds(model.referenceTime)
        for bucket, weight in zip(model.buckets, model.weights, strict=True):
            if bucket > MAX_BUCKET or not math.isfinite(weight):
                raise ValueError(
                    f"histogram bucket {bucket} with weight {weight!r} is out of range"
                )
            if weight > 0:
                histogram.weights[bucket] = weight
        return histogram
