"""The controller's moving parts, shared by the kopf handlers (one per process).

Pods and ReplicaSets, by far the most numerous objects, ResourceReports, the
busiest (one write per node per minute, 30 pods each), Deployments, and the
HorizontalPodAutoscalers and PodDisruptionBudgets that shape replica advice are
listed and watched here (:mod:`~headroom.controller.watch`) rather than
through kopf, which keeps per-object records and tasks (see there), and whose
lists give no sign of being complete: leftover recommendations are deleted,
and any written, only once all of them are listed — else a slow start (kopf still
listing Deployments) reads every recommendation as a leftover and deletes it
with its history. Once both are listed the model of
the cluster is long-lived: it is moved out of the garbage collector's sight
(``gc.freeze``) so a collection no longer re-scans a million objects in the
middle of a batch — without it, full collections cost about 100 ms per batch
at 5,000 nodes. Within a batch's writes, recommendations whose replicas or
requests changed go first: fit figures move with every report, advice rarely;
and they stop after three quarters of a period (the rest is left to the next
batch), so a slow API server delays figures, not new advice. Nothing is written
before the model is listed: advice from half a model is wrong advice.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from headroom.api import API_VERSION, CapacityRecommendationStatus
from headroom.controller import metrics
from headroom.controller.compute import BatchResult, compute_batch
from headroom.controller.intake import report_problem
from headroom.controller.lease import LeaseElector
from headroom.controller.settings import ControllerSettings
from headroom.controller.state import ClusterState, ExpertInfo, ExpertKey
from headroom.controller.watch import ListWatch
from headroom.controller.writer import RecommendationWriter
from headroom.kube.client import ApiError
from headroom.kube.config import load_config
from headroom.recommend.policy import SizingDefaults

__all__ = ["Runtime", "freeze_long_lived_objects", "tune_memory_allocator"]

log = logging.getLogger(__name__)

#: Leftover recommendations are deleted only after the first lists have arrived.
_SETTLE_SECONDS = 10.0
#: Young-generation threshold: a batch allocates far more than the default 700 objects.
_GC_YOUNG_THRESHOLD = 10_000
#: Share of a batch period the recommendation writes may take before the rest waits.
_WRITE_BUDGET_SHARE = 0.75
#: The event loop always gets this long between two batches.
_MIN_PAUSE_SECONDS = 0.1


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
    watches: list[ListWatch] = field(default_factory=list)
    frozen: bool = False
    adopted: bool = False
    """Whether the writer started from the stored recommendations since this replica leads."""
    ignored_reports: dict[str, str] = field(default_factory=dict)
    """Reports ignored as malformed (node → why), until that node sends a good one (CT-006)."""

    def restore_histories(self) -> int:
        """Read every CapacityRecommendation once, before any watch: persisted history first."""
        answer = self.writer.client.get(f"/apis/{API_VERSION}/capacityrecommendations")
        for item in answer.get("items", []):
            self.state.upsert_recommendation(item)
        restored = len(self.state.histories)
        log.info("restored the usage history of %d experts", restored)
        return restored

    def adopt_stored(self) -> int:
        """On becoming leader: start the writer from the recommendations as stored now.

        Read at the moment of leading, not at start: a standby's view would be as
        old as its start, and another leader has written since. Only what differs
        from the stored object (or whose history is due) is then written.
        """
        answer = self.writer.client.get(f"/apis/{API_VERSION}/capacityrecommendations")
        now = self.state.now()
        self.writer.written.clear()
        adopted = sum(self.writer.remember(item, now) for item in answer.get("items", []))
        log.info("leading: %d stored recommendations kept until they change", adopted)
        return adopted

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

    async def watch_loop(self) -> None:
        """List and watch what the model is made of (all but Nodes) until cancelled."""
        config = load_config(self.settings.kubeconfig)
        connector = aiohttp.TCPConnector(ssl=config.ssl_context())
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=400)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.watches = [
                ListWatch(
                    session,
                    config,
                    "/api/v1/pods",
                    key=_uid,
                    on_event=self._pod_event,
                    on_listed=self._pods_listed,
                ),
                ListWatch(
                    session,
                    config,
                    "/apis/apps/v1/replicasets",
                    key=_namespaced_name,
                    on_event=self._replicaset_event,
                    on_listed=self._replicasets_listed,
                ),
                ListWatch(
                    session,
                    config,
                    "/apis/apps/v1/deployments",
                    key=_namespaced_name,
                    on_event=self._deployment_event,
                    on_listed=self._deployments_listed,
                    label_selector=self.settings.expert_selector,  # only experts
                ),
                ListWatch(
                    session,
                    config,
                    f"/apis/{API_VERSION}/resourcereports",
                    key=_name,
                    on_event=self._report_event,
                    on_listed=self._reports_listed,
                ),
                ListWatch(
                    session,
                    config,
                    "/apis/autoscaling/v2/horizontalpodautoscalers",
                    key=_namespaced_name,
                    on_event=self._autoscaler_event,
                    on_listed=self._autoscalers_listed,
                ),
                ListWatch(
                    session,
                    config,
                    "/apis/policy/v1/poddisruptionbudgets",
                    key=_namespaced_name,
                    on_event=self._budget_event,
                    on_listed=self._budgets_listed,
                ),
            ]
            await asyncio.gather(*(watch.run() for watch in self.watches))

    def _pod_event(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.state.delete_pod(body["metadata"]["uid"])
        else:
            self.state.upsert_pod(body)

    def _pods_listed(self, keys: set[Hashable]) -> None:
        """Forget the pods deleted while no watch ran."""
        for uid in set(self.state.pods) - keys:
            self.state.delete_pod(uid)

    def _replicasets_listed(self, keys: set[Hashable]) -> None:
        for namespace, name in set(self.state.replicaset_owner) - keys:
            self.state.delete_replicaset(namespace, name)

    def _replicaset_event(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if kind == "DELETED":
            self.state.delete_replicaset(meta.get("namespace", ""), meta["name"])
        else:
            self.state.upsert_replicaset(body)

    def _deployment_event(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if kind == "DELETED":
            self.state.delete_deployment(meta.get("namespace", ""), meta["name"])
        else:
            self.state.upsert_deployment(body)

    def _deployments_listed(self, keys: set[Hashable]) -> None:
        for namespace, name in set(self.state.experts) - keys:
            self.state.delete_deployment(namespace, name)

    def _autoscaler_event(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if kind == "DELETED":
            self.state.delete_autoscaler(meta.get("namespace", ""), meta["name"])
        else:
            self.state.upsert_autoscaler(body)

    def _autoscalers_listed(self, keys: set[Hashable]) -> None:
        for namespace, name in set(self.state.autoscalers) - keys:
            self.state.delete_autoscaler(namespace, name)

    def _budget_event(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if kind == "DELETED":
            self.state.delete_budget(meta.get("namespace", ""), meta["name"])
        else:
            self.state.upsert_budget(body)

    def _budgets_listed(self, keys: set[Hashable]) -> None:
        known = {(ns, name) for ns, names in self.state.budgets.items() for name in names}
        for namespace, name in known - keys:
            self.state.delete_budget(namespace, name)

    def _report_event(self, kind: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.ignored_reports.pop(name, None)
            self.state.delete_report(name)
            return
        problem = report_problem(body, self.state.now())
        if problem is not None:
            self._ignore_report(name, problem)
            return
        self.ignored_reports.pop(name, None)
        self.state.upsert_report(body)

    def _ignore_report(self, name: str, problem: str) -> None:
        """Keep the node's last good figures; say why in the log and (leader) in an Event."""
        log.warning("ignoring ResourceReport %s: %s", name, problem)
        metrics.REPORTS_IGNORED.inc()
        self.ignored_reports[name] = problem
        self.state.dirty = True  # the leader's next batch posts the Event

    def _reports_listed(self, keys: set[Hashable]) -> None:
        for name in set(self.state.reports) - keys:
            self.state.delete_report(name)

    def listed(self) -> bool:
        """Whether the resources watched here have been listed once (the model is complete)."""
        return bool(self.watches) and all(watch.listed.is_set() for watch in self.watches)

    def _freeze_model(self) -> None:
        """After the first batch on a complete model: keep the collector off the model."""
        frozen = freeze_long_lived_objects()
        self.frozen = True
        log.info("model complete: %d objects frozen for the garbage collector", frozen)

    async def batch_loop(self) -> None:
        """Debounced recomputation: a batch starts every ``recompute_seconds`` at most.

        The period runs from one start to the next (a batch with many writes does
        not push the next one a whole period further out).
        """
        period = self.settings.recompute_seconds
        await asyncio.sleep(period)
        while True:
            started = time.monotonic()
            try:
                await self.run_batch()
            except Exception:  # one bad batch must not stop the next
                log.exception("batch failed")
            await asyncio.sleep(max(_MIN_PAUSE_SECONDS, started + period - time.monotonic()))

    async def run_batch(self) -> None:
        """Recompute if anything changed (or history is due); write if leading."""
        state = self.state
        if not self.elector.is_leader:
            self.adopted = False  # leading again later starts from what is stored then
        if not (state.dirty or state.gone or self._persist_due() or self._stale_due()):
            return
        state.dirty = False
        pending, state.pending_since = state.pending_since, []
        now = state.now()
        started, started_cpu = time.perf_counter(), time.thread_time()
        state.ingest_pending()
        if state.unprocessed:
            state.dirty = True  # some pods not placed yet: look again next batch
        result = compute_batch(state, self.defaults, now, self.settings.stale_heartbeats)
        self.last_batch_seconds = time.perf_counter() - started
        cpu_seconds = time.thread_time() - started_cpu
        self.batches += 1
        metrics.RECOMPUTE_SECONDS.observe(self.last_batch_seconds)
        metrics.REPORTS.labels("fresh").set(result.fresh_reports)
        metrics.REPORTS.labels("stale").set(len(result.stale_reports))
        self.known_stale = set(result.stale_reports)
        log.debug(
            "batch %d: %d experts, %d fresh / %d stale reports in %.1f ms (%.1f ms CPU)",
            self.batches,
            len(result.statuses),
            result.fresh_reports,
            len(result.stale_reports),
            self.last_batch_seconds * 1000,
            cpu_seconds * 1000,
        )
        if not self.frozen and self.listed():
            self._freeze_model()
        if not self.elector.is_leader:
            return
        if self.watches and not self.listed():
            return  # still listing: requests per node and usage are not complete yet
        if not self.adopted:
            try:
                await asyncio.to_thread(self.adopt_stored)
            except ApiError as error:  # then every recommendation is written, as on a first start
                log.warning("cannot read the stored recommendations: %s", error)
                self.writer.written.clear()
            self.adopted = True
        gone = sorted(key for key in state.gone if key not in state.experts)
        await asyncio.to_thread(self._write, result, now, gone)
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

    def _write(self, result: BatchResult, now: datetime, gone: list[ExpertKey]) -> None:
        """Runs in a thread: only the writer's own state and the snapshot ``gone``.

        Writing stops after most of a period: what is left (fit figures, never a
        change of advice, which goes first) is written by a later batch, which
        recomputes it anyway, so a slow API server never holds up new reports.
        """
        deadline = time.monotonic() + _WRITE_BUDGET_SHARE * self.settings.recompute_seconds
        ordered = self._advice_first(result)
        for index, (expert, status) in enumerate(ordered):
            if time.monotonic() > deadline:
                log.debug("%d recommendations left for the next batch", len(ordered) - index)
                break
            self.writer.write(expert, status, now)
        if time.monotonic() - self.started >= _SETTLE_SECONDS:
            for key in gone:
                if self.writer.delete(key):
                    self.state.gone.discard(key)
        self.writer.flag_stale(result.stale_reports, now)
        self.writer.flag_malformed(dict(self.ignored_reports), now)

    def _advice_first(
        self, result: BatchResult
    ) -> list[tuple[ExpertInfo, CapacityRecommendationStatus]]:
        """The batch's statuses, those whose replicas or requests changed first."""

        def advice(status: CapacityRecommendationStatus | None) -> Hashable:
            rec = status.recommended if status is not None else None
            if rec is None:
                return None
            hpa = None if rec.hpa is None else (rec.hpa.minReplicas, rec.hpa.maxReplicas)
            return (rec.replicas, rec.cpuRequest, rec.memoryRequest, hpa)

        def changed(item: tuple[ExpertInfo, CapacityRecommendationStatus]) -> bool:
            expert, status = item
            last = self.writer.written.get((expert.namespace, expert.name))
            return last is None or advice(last.status) != advice(status)

        return sorted(result.statuses.values(), key=lambda item: not changed(item))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's mallopt()
_ALLOCATOR_TUNING = (
    (_M_MMAP_THRESHOLD, 128 * 1024),
    (_M_TRIM_THRESHOLD, 128 * 1024),
    (_M_ARENA_MAX, 2),
)


def tune_memory_allocator() -> bool:
    """Keep glibc from holding on to memory the controller has freed (about 25 MB at scale).

    Listing 150,000 Pods passes megabytes of JSON through large buffers; glibc
    raises its mmap threshold to the largest buffer freed so far, so later
    ones come from the heap and stay there, and each thread (writer, watches)
    gets an arena of its own. A fixed 128 KiB threshold, trimming above
    128 KiB and two arenas give that memory back — what the environment
    variables ``MALLOC_MMAP_THRESHOLD_`` etc. would do. Returns False where
    there is no glibc (nothing changes then).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in _ALLOCATOR_TUNING)


def freeze_long_lived_objects() -> int:
    """Collect once, then move every object alive now out of the collector's sight.

    Objects alive at this point (the model, modules, kopf's machinery) go to
    the permanent generation; objects made later are collected as usual, and a
    young generation of 10,000 objects (not 700) spares each batch dozens of
    collections. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return gc.get_freeze_count()


def _uid(body: dict[str, Any]) -> Hashable:
    uid: str = body["metadata"]["uid"]
    return uid


def _name(body: dict[str, Any]) -> Hashable:
    name: str = body["metadata"]["name"]
    return name


def _namespaced_name(body: dict[str, Any]) -> Hashable:
    meta = body["metadata"]
    return (meta.get("namespace", ""), meta["name"])
