"""The controller's moving parts, shared by the kopf handlers (one per process)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from headroom.api import API_VERSION
from headroom.controller import metrics
from headroom.controller.compute import BatchResult, compute_batch
from headroom.controller.lease import LeaseElector
from headroom.controller.settings import ControllerSettings
from headroom.controller.state import ClusterState
from headroom.controller.writer import RecommendationWriter
from headroom.recommend.policy import SizingDefaults

__all__ = ["Runtime"]

log = logging.getLogger(__name__)

#: Leftover recommendations are deleted only after the first lists have arrived.
_SETTLE_SECONDS = 10.0


@dataclass
class Runtime:
    """State, election and writer of one controller process."""

    settings: ControllerSettings
    state: ClusterState
    elector: LeaseElector
    writer: RecommendationWriter
    defaults: SizingDefaults
    started: float = field(default_factory=time.monotonic)
    last_batch_seconds: float = 0.0
    batches: int = 0
    known_stale: set[str] = field(default_factory=set)

    def restore_histories(self) -> int:
        """Read every CapacityRecommendation once, before any watch: persisted history first."""
        answer = self.writer.client.get(f"/apis/{API_VERSION}/capacityrecommendations")
        for item in answer.get("items", []):
            self.state.upsert_recommendation(item)
        restored = len(self.state.histories)
        log.info("restored the usage history of %d experts", restored)
        return restored

    async def lease_loop(self) -> None:
        """Acquire, then renew the Lease every third of its duration."""
        period = self.settings.lease_duration_seconds / 3
        while True:
            try:
                leading = await asyncio.to_thread(self.elector.try_acquire_or_renew)
            except Exception:  # an election round must never end the election
                log.exception("lease round failed")
                leading = self.elector.is_leader = False
            metrics.IS_LEADER.set(1 if leading else 0)
            await asyncio.sleep(period)

    async def batch_loop(self) -> None:
        """Debounced recomputation: at most one batch per ``recompute_seconds``."""
        while True:
            await asyncio.sleep(self.settings.recompute_seconds)
            try:
                await self.run_batch()
            except Exception:  # one bad batch must not stop the next
                log.exception("batch failed")

    async def run_batch(self) -> None:
        """Recompute if anything changed (or history is due); write if leading."""
        state = self.state
        if not (state.dirty or state.gone or self._persist_due() or self._stale_due()):
            return
        state.dirty = False
        pending, state.pending_since = state.pending_since, []
        now = state.now()
        started = time.perf_counter()
        state.ingest_pending()
        if state.unprocessed:
            state.dirty = True  # some pods not placed yet: look again next batch
        result = compute_batch(state, self.defaults, now, self.settings.stale_heartbeats)
        self.last_batch_seconds = time.perf_counter() - started
        self.batches += 1
        metrics.RECOMPUTE_SECONDS.observe(self.last_batch_seconds)
        metrics.REPORTS.labels("fresh").set(result.fresh_reports)
        metrics.REPORTS.labels("stale").set(len(result.stale_reports))
        self.known_stale = set(result.stale_reports)
        log.debug(
            "batch %d: %d experts, %d fresh / %d stale reports in %.1f ms",
            self.batches,
            len(result.statuses),
            result.fresh_reports,
            len(result.stale_reports),
            self.last_batch_seconds * 1000,
        )
        if not self.elector.is_leader:
            return
        await asyncio.to_thread(self._write, result, now)
        finished = time.monotonic()
        for received in pending:
            metrics.REPORT_TO_RECOMMENDATION_SECONDS.observe(finished - received)

    def _stale_due(self) -> bool:
        """A report went silent and is not flagged yet: a quiet cluster must still notice."""
        now = self.state.now()
        periods = self.settings.stale_heartbeats
        return any(
            (now - report.collected_at).total_seconds() > periods * report.heartbeat_seconds
            for name, report in self.state.reports.items()
            if name not in self.known_stale
        )

    def _persist_due(self) -> bool:
        horizon = self.writer.clock() - self.settings.persist_history_seconds
        return any(w.at <= horizon for w in self.writer.written.values())

    def _write(self, result: BatchResult, now: datetime) -> None:
        for expert, status in result.statuses.values():
            self.writer.write(expert, status, now)
        if time.monotonic() - self.started >= _SETTLE_SECONDS:
            for key in sorted(self.state.gone):
                if key not in self.state.experts and self.writer.delete(key):
                    self.state.gone.discard(key)
        self.writer.flag_stale(result.stale_reports, now)
