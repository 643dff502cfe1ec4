"""The agent's cycle: collect, decide, write, wait (AG requirements).

Time comes in through ``clock`` (monotonic seconds) so the write rule and the
backoff are tested with a fake clock; waiting goes through ``wait`` so a
SIGTERM (which sets the stop event) ends the loop at once. Counters go to a
``CycleMetrics`` (Prometheus when the admin endpoint is on, nothing otherwise).

Host surprises are reported, never fatal (HR-002, HR-003): a reading that
fails as a whole (the node's procfs unreadable or gone) is logged, written
nowhere (the report keeps its last figures and their ``collectedAt``; the
controller flags it stale after three heartbeats; ``/readyz`` fails after
three intervals) and tried again next cycle, with a log line when it
recovers. Partial problems (a pod whose cgroup could not be read, a missing
disk path) are in the reading itself; their warnings are logged when they
first appear.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from headroom import __version__
from headroom.agent.policy import Backoff, WritePolicy
from headroom.agent.reports import ReportStore
from headroom.agent.settings import AgentSettings
from headroom.collection.derive import derive_status
from headroom.collection.figures import Condition, ReportStatus
from headroom.collection.sample import NodeReader, RawSample
from headroom.kube.client import ApiError

__all__ = ["Agent", "CycleMetrics", "NoMetrics"]

log = logging.getLogger(__name__)

#: Readiness: the latest collection is at most this many intervals old.
READY_WITHIN_INTERVALS = 3


class CycleMetrics(Protocol):
    """What the cycle reports to its metrics (see ``headroom.agent.metrics``)."""

    def collected(self, status: ReportStatus, seconds: float) -> None: ...

    def written(self, at: datetime) -> None: ...

    def write_failed(self, status: int) -> None: ...


class NoMetrics:
    """Counts nothing: the admin endpoint, the only reader of metrics, is off."""

    def collected(self, status: ReportStatus, seconds: float) -> None:
        """Nothing to count."""

    def written(self, at: datetime) -> None:
        """Nothing to count."""

    def write_failed(self, status: int) -> None:
        """Nothing to count."""


class Agent:
    """Keeps one node's ResourceReport current."""

    def __init__(
        self,
        settings: AgentSettings,
        reader: NodeReader,
        store: ReportStore | None,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        metrics: CycleMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.store = store
        self.clock = clock
        self.wall_clock = wall_clock
        self.metrics: CycleMetrics = metrics if metrics is not None else NoMetrics()
        self.policy = WritePolicy(
            heartbeat_seconds=settings.heartbeat_seconds,
            min_interval_seconds=settings.interval_seconds,
            threshold_percent=settings.change_threshold_percent,
        )
        # Never wait longer than a heartbeat: after an outage the report is
        # current again within one heartbeat of the API server's return.
        self.backoff = Backoff(
            settings.backoff_initial_seconds,
            min(settings.backoff_max_seconds, settings.heartbeat_seconds),
            rng or random.Random(),
        )
        self.retry_at = 0.0
        self.previous: RawSample | None = None
        self.latest: ReportStatus | None = None
        self.latest_at: float | None = None
        self.reporting_since: datetime | None = None
        self.writes = 0
        self.failures = 0
        self.read_error: str | None = None
        #: The latest reading's warnings (each logged when it first appears).
        self.warnings: tuple[str, ...] = ()

    def read(self) -> RawSample | None:
        """One reading of the node; None (logged once per distinct cause) when it failed."""
        try:
            sample = self.reader.read()
        except OSError as error:
            message = f"{error.strerror or type(error).__name__}: {error.filename or ''}"
            if message != self.read_error:
                log.warning("cannot read the node (%s); retrying every cycle", message)
            self.read_error = message
            return None
        if self.read_error is not None:
            log.warning("reading the node again (was: %s)", self.read_error)
            self.read_error = None
            # Rates need two readings in a row: this one is the new baseline.
            self.previous = sample
            return None
        if sample.warnings != self.warnings:
            for warning in sample.warnings:
                if warning not in self.warnings:
                    log.warning("%s", warning)
            self.warnings = sample.warnings
        return sample

    def collect(self) -> ReportStatus | None:
        """Read the node once and derive figures against the previous reading."""
        started = self.clock()
        sample = self.read()
        if sample is None:
            return None
        status = derive_status(
            self.previous,
            sample,
            collected_at=self.wall_clock(),
            agent_version=__version__,
            heartbeat_seconds=self.settings.heartbeat_seconds,
        )
        self.previous = sample
        if self.reporting_since is None:
            self.reporting_since = status.collectedAt
        # The controller sets Stale=True when heartbeats stop; every write clears it.
        status.conditions = [
            Condition(
                type="Stale",
                status="False",
                reason="AgentReporting",
                message=f"agent heartbeat every {self.settings.heartbeat_seconds}s",
                lastTransitionTime=self.reporting_since,
            )
        ]
        self.latest = status
        self.latest_at = self.clock()
        self.metrics.collected(status, self.latest_at - started)
        return status

    def ready(self) -> bool:
        """Readiness: collected at least once, and not more than 3 intervals ago."""
        if self.latest_at is None:
            return False
        age = self.clock() - self.latest_at
        return age <= READY_WITHIN_INTERVALS * self.settings.interval_seconds

    def tick(self) -> float:
        """One cycle; returns how long to wait before the next."""
        interval = self.settings.interval_seconds
        now = self.clock()
        status = self.collect()
        if status is None or self.store is None:
            return interval
        if now < self.retry_at:
            return min(interval, self.retry_at - now)
        reason = self.policy.reason_to_write(now, status)
        if reason is None:
            return interval
        try:
            self.store.write(status)
        except ApiError as error:
            self.failures += 1
            self.metrics.write_failed(error.status)
            delay = self.backoff.next_delay()
            self.retry_at = now + delay
            log.warning("writing the report failed (%s); next attempt in %.1fs", error, delay)
            return min(interval, delay)
        self.writes += 1
        self.metrics.written(self.wall_clock())
        self.policy.written(now, status)
        self.backoff.reset()
        self.retry_at = 0.0
        log.debug("report written (%s)", reason)
        return interval

    def run(self, stop: threading.Event, first_delay: float = 1.0) -> None:
        """Cycle until ``stop`` is set; the first reading is only a CPU baseline."""
        self.previous = self.read()
        if stop.wait(min(first_delay, self.settings.interval_seconds)):
            return
        while not stop.is_set():
            delay = self.tick()
            stop.wait(delay)
        log.info("agent stopped after %d writes", self.writes)
