"""Apply the batch's results to the API server: write only what changed (CT).

A recommendation is written when its significant part changed — policy,
current and recommended sizing (not the reason texts, which quote growing
sample counts), conditions, the nodes left out of fit, the containers listed,
their current resources and OOM kills — or when a container's recommended
figures moved by more than ``material_change_percent``, or when its fit
totals (``additionalReplicas``, ``fittingNodeCount``) moved by more than
``material_change_percent`` (or to or from zero), or when the persisted
history is older than ``persist_history_seconds``. Evidence, history and the
exact fit move with every report and would otherwise turn every batch into a
write per expert: the listed fitting nodes and their counts are therefore up
to ``persist_history_seconds`` old, and the totals within that percentage of
the truth. After a restart the writer starts from the recommendations as
stored (:meth:`RecommendationWriter.remember`), so an unchanged one is not
written again. Material changes raise an Event on the Deployment; a report
going stale raises an Event on the report and sets its ``Stale`` condition.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headroom.api import API_VERSION, CapacityRecommendationStatus, Condition
from headroom.api.capacityrecommendation import Fit, RecommendedSizing
from headroom.api.common import ApiModel
from headroom.controller import metrics
from headroom.controller.events import build_event, event_path
from headroom.controller.state import ExpertInfo, ExpertKey
from headroom.kube.client import ApiError, KubeClient
from headroom.recommend.quantities import format_memory

__all__ = ["RecommendationWriter", "recommendation_path"]

log = logging.getLogger(__name__)


def recommendation_path(namespace: str, name: str = "") -> str:
    """REST path of the CapacityRecommendations of a namespace, or of one."""
    base = f"/apis/{API_VERSION}/namespaces/{namespace}/capacityrecommendations"
    return f"{base}/{name}" if name else base


def _object(expert: ExpertInfo, metadata: dict[str, Any]) -> dict[str, Any]:
    """A CapacityRecommendation for ``expert`` with extra ``metadata`` fields."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CapacityRecommendation",
        "metadata": {"name": expert.name, "namespace": expert.namespace, **metadata},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": expert.name}},
    }


_REASONS: dict[str, Any] = {
    "replicasReason": True,
    "cpuReason": True,
    "memoryReason": True,
    # The bounds narrow with every sample while history is short: written with the history.
    "bounds": True,
    "hpa": {"minReplicasReason", "maxReplicasReason", "targetReason"},
}
_FIT_EXCLUSIONS = {"excludedNodes", "excludedNodeCount"}
_LIMIT_REASONS = {"cpuLimitReason", "memoryLimitReason"}
_CONTAINER_MOVING = {"samples", "cpuSamples", "cpuUsageCores", "memoryPeakBytes", "recommended"}
_GPU_DECISIONS = {
    "resource",
    "requestPerReplica",
    "targetUtilizationPercent",
    "replicas",
    "replicasPerSharedGpu",
    "smallestMigProfile",
    "additionalReplicas",
}
"""What of the GPU advice a user acts on; its peaks, utilisation and reasons move with samples."""


def _dump(model: ApiModel | None, **options: Any) -> Any:
    return None if model is None else model.model_dump(mode="json", exclude_none=True, **options)


def _signature(status: CapacityRecommendationStatus) -> str:
    """The part of a status whose every change is written.

    Left out: history, evidence and confidence (they grow with every report),
    the reason texts (they quote sample counts; refreshed with the next real
    change or history write) and the bounds (they narrow with every sample),
    transition times, the fit apart from its exclusions (see
    :func:`_fit_moved`), and of the GPU advice all but its decisions
    (``_GPU_DECISIONS``: devices, replicas, sharing, MIG profile, how many
    more fit, each a small whole number or a name). The REC columns follow
    from what is kept.
    """
    parts = (
        _dump(status.policy),
        _dump(status.current),
        _dump(status.recommended, exclude=_REASONS),
        _dump(status.fit, include=_FIT_EXCLUSIONS),
        [_dump(c, exclude={"lastTransitionTime"}) for c in status.conditions],
        [_dump(c, exclude=_CONTAINER_MOVING) for c in status.containers or ()],
        _dump(status.podLevel, exclude=_LIMIT_REASONS),
        _dump(status.gpu, include=_GPU_DECISIONS),
    )
    return json.dumps(parts, sort_keys=True)


def _gpu_replicas(status: CapacityRecommendationStatus) -> int | None:
    return None if status.gpu is None else status.gpu.replicas


def _hpa_bounds(recommended: RecommendedSizing) -> tuple[int, int] | None:
    hpa = recommended.hpa
    return None if hpa is None else (hpa.minReplicas, hpa.maxReplicas)


def _fit_moved(old: Fit | None, new: Fit | None, percent: float) -> bool:
    """Whether the fit totals moved enough to be written (hysteresis, see the module)."""
    if old is None or new is None:
        return old is not new
    return _moved(old.additionalReplicas, new.additionalReplicas, percent) or _moved(
        old.fittingNodeCount, new.fittingNodeCount, percent
    )


def _containers_moved(
    old: CapacityRecommendationStatus, new: CapacityRecommendationStatus, percent: float
) -> bool:
    """Whether a container's recommendation moved enough to be written (as for fit).

    Each container's figures follow its own samples; written on every 10m
    step they would turn most batches into writes at scale. A CPU limit
    appearing or going, a memory figure or CPU request moving by more than
    ``percent``, is written at once; smaller moves with the next write.
    """
    before = {c.name: c.recommended for c in old.containers or ()}
    for container in new.containers or ():
        a, b = before.get(container.name), container.recommended
        if a is None or b is None:
            if a is not b:
                return True
            continue
        if (a.cpuLimit is None) != (b.cpuLimit is None) or any(
            _moved(x, y, percent)
            for x, y in (
                (a.cpuRequestCores, b.cpuRequestCores),
                (a.memoryRequestBytes, b.memoryRequestBytes),
                (a.memoryLimitBytes, b.memoryLimitBytes),
            )
        ):
            return True
    return False


def _moved(old: float | None, new: float | None, percent: float) -> bool:
    if old is None or new is None:
        return old != new
    if old == 0:
        return new != 0
    return abs(new - old) / old * 100 > percent


def _status_written_at(meta: Mapping[str, Any]) -> datetime | None:
    """When the status subresource was last written, from the object's managedFields."""
    times = [
        entry.get("time")
        for entry in meta.get("managedFields") or []
        if entry.get("subresource") == "status" and entry.get("time")
    ]
    if not times:
        return None
    try:
        return max(datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in times)
    except ValueError:
        return None


def _deployment_ref(expert: ExpertInfo) -> dict[str, str]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": expert.name,
        "namespace": expert.namespace,
        "uid": expert.uid,
    }


@dataclass
class _Written:
    signature: str
    at: float
    status: CapacityRecommendationStatus
    resource_version: str | None


class RecommendationWriter:
    """Creates, updates and deletes CapacityRecommendations; posts Events."""

    def __init__(
        self,
        client: KubeClient,
        *,
        identity: str,
        persist_history_seconds: float,
        material_change_percent: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.identity = identity
        self.persist_history_seconds = persist_history_seconds
        self.material_change_percent = material_change_percent
        self.clock = clock
        self.written: dict[ExpertKey, _Written] = {}
        self.flagged_stale: set[str] = set()
        self.flagged_malformed: dict[str, str] = {}

    # --- recommendations ------------------------------------------------------------

    def needs_write(self, key: ExpertKey, status: CapacityRecommendationStatus) -> bool:
        """Whether ``status`` differs enough from what we last wrote (or is due)."""
        last = self.written.get(key)
        if last is None:
            return True
        if last.signature != _signature(status):
            return True
        if _fit_moved(last.status.fit, status.fit, self.material_change_percent):
            return True
        if _containers_moved(last.status, status, self.material_change_percent):
            return True
        return self.clock() - last.at >= self.persist_history_seconds

    def remember(self, body: Mapping[str, Any], now: datetime) -> bool:
        """Start from a stored recommendation (after a restart); False when it has no usable status.

        Its age is that of its last status write (``managedFields``; else the
        history's last sample), so history persisted just before a restart is
        not written again at once and history due is written at once.
        """
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        try:
            status = CapacityRecommendationStatus.model_validate(body.get("status") or {})
        except ValueError as error:
            log.warning("%s/%s: stored status unreadable, rewritten: %s", *key, error)
            return False
        if status.recommended is None:
            return False
        written_at = _status_written_at(meta) or (
            status.history.lastSampleAt if status.history else None
        )
        age = (
            self.persist_history_seconds
            if written_at is None
            else max(0.0, (now - written_at).total_seconds())
        )
        # Kept for comparisons, conditions and Events only: not the bulky history and evidence.
        status.history = status.evidence = None
        version = meta.get("resourceVersion")
        self.written[key] = _Written(
            _signature(status),
            self.clock() - age,
            status,
            None if version is None else str(version),
        )
        return True

    def write(
        self, expert: ExpertInfo, status: CapacityRecommendationStatus, now: datetime
    ) -> bool:
        """Write one recommendation if needed; returns whether it was written."""
        key = (expert.namespace, expert.name)
        if not self.needs_write(key, status):
            return False
        last = self.written.get(key)
        self._keep_transition_times(last.status if last else None, status)
        wire = status.to_wire()
        try:
            version = self._put_status(expert, wire, last.resource_version if last else None)
        except ApiError as error:
            metrics.API_ERRORS.labels("write_recommendation", str(error.status)).inc()
            log.warning("writing %s/%s failed: %s", *key, error)
            return False
        if last is None or self._material(last.status, status):
            self._post_change_event(expert, last.status if last else None, status, now)
        self._post_oom_events(expert, last.status if last else None, status, now)
        self.written[key] = _Written(_signature(status), self.clock(), status, version)
        metrics.RECOMMENDATIONS_WRITTEN.labels("status").inc()
        return True

    @staticmethod
    def _keep_transition_times(
        old: CapacityRecommendationStatus | None, new: CapacityRecommendationStatus
    ) -> None:
        before = {c.type: c for c in old.conditions} if old else {}
        for condition in new.conditions:
            previous = before.get(condition.type)
            if previous is not None and previous.status == condition.status:
                condition.lastTransitionTime = previous.lastTransitionTime

    def _put_status(self, expert: ExpertInfo, status: dict[str, Any], version: str | None) -> str:
        path = recommendation_path(expert.namespace, expert.name)
        if version is None:
            version = self._get_or_create(expert)
        for attempt in range(2):
            body = _object(expert, {"resourceVersion": version})
            body["status"] = status
            try:
                answer = self.client.replace(path + "/status", body)
                return str(answer["metadata"]["resourceVersion"])
            except ApiError as error:
                if attempt or error.status not in (404, 409):
                    raise
                version = self._get_or_create(expert)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_or_create(self, expert: ExpertInfo) -> str:
        path = recommendation_path(expert.namespace, expert.name)
        try:
            return str(self.client.get(path)["metadata"]["resourceVersion"])
        except ApiError as error:
            if error.status != 404:
                raise
        body = _object(
            expert,
            {
                "labels": {"app.kubernetes.io/managed-by": "headroom-controller"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": expert.name,
                        "uid": expert.uid,
                        "controller": True,
                    }
                ],
            },
        )
        created = self.client.create(recommendation_path(expert.namespace), body)
        metrics.RECOMMENDATIONS_WRITTEN.labels("create").inc()
        log.info("created CapacityRecommendation %s/%s", expert.namespace, expert.name)
        return str(created["metadata"]["resourceVersion"])

    def delete(self, key: ExpertKey) -> bool:
        """Remove the recommendation of a Deployment that is gone or no longer an expert."""
        try:
            self.client.delete(recommendation_path(*key))
        except ApiError as error:
            if error.status != 404:
                metrics.API_ERRORS.labels("delete_recommendation", str(error.status)).inc()
                log.warning("deleting %s/%s failed: %s", *key, error)
                return False
        self.written.pop(key, None)
        metrics.RECOMMENDATIONS_WRITTEN.labels("delete").inc()
        log.info("deleted CapacityRecommendation %s/%s", *key)
        return True

    # --- events ---------------------------------------------------------------------

    def _material(
        self, old: CapacityRecommendationStatus, new: CapacityRecommendationStatus
    ) -> bool:
        a, b = old.recommended, new.recommended
        if a is None or b is None:
            return a is not b
        pct = self.material_change_percent
        return (
            _gpu_replicas(old) != _gpu_replicas(new)
            or a.replicas != b.replicas
            or _hpa_bounds(a) != _hpa_bounds(b)
            or _moved(a.cpuRequestCores, b.cpuRequestCores, pct)
            or _moved(a.memoryRequestBytes, b.memoryRequestBytes, pct)
        )

    def _post_change_event(
        self,
        expert: ExpertInfo,
        old: CapacityRecommendationStatus | None,
        new: CapacityRecommendationStatus,
        now: datetime,
    ) -> None:
        rec = new.recommended
        if rec is None:
            return
        before = old.recommended if old else None
        was = (
            f" (was {before.replicas} × {before.cpuRequest} CPU, {before.memoryRequest})"
            if before
            else ""
        )
        message = (
            f"recommend {rec.replicas} replicas × {rec.cpuRequest} CPU, {rec.memoryRequest} memory"
            f"{was}; {new.fit.additionalReplicas if new.fit else 0} more fit now"
        )
        gpu = new.gpu
        if gpu is not None and gpu.replicas is not None:
            message += (
                f"; GPU use: {gpu.replicas} replicas × {gpu.requestPerReplica} {gpu.resource}"
            )
        if rec.hpa is not None:
            message = (
                f"recommend HPA {rec.hpa.name} minReplicas {rec.hpa.minReplicas}, maxReplicas "
                f"{rec.hpa.maxReplicas} (it has {rec.hpa.currentMinReplicas}–"
                f"{rec.hpa.currentMaxReplicas}); {message}"
            )
        self._post(
            build_event(
                involved=_deployment_ref(expert),
                reason="RecommendationChanged",
                message=message,
                now=now,
                identity=self.identity,
            )
        )

    def _post_oom_events(
        self,
        expert: ExpertInfo,
        old: CapacityRecommendationStatus | None,
        new: CapacityRecommendationStatus,
        now: datetime,
    ) -> None:
        """A Warning Event on the Deployment for each container with kills not reported yet."""
        before = {
            c.name: c.oomKills.count for c in (old.containers if old else None) or () if c.oomKills
        }
        for container in new.containers or ():
            kills = container.oomKills
            if kills is None or kills.count <= before.get(container.name, 0):
                continue
            limit = (
                "no limit of its own"
                if kills.limitBytes is None
                else f"its {format_memory(kills.limitBytes)} limit"
            )
            rec = container.recommended
            advice = f"; recommend memory {rec.memoryRequest} (request and limit)" if rec else ""
            self._post(
                build_event(
                    involved=_deployment_ref(expert),
                    reason="OOMKilled",
                    message=(
                        f"container {container.name} was OOM-killed at {limit} "
                        f"({kills.count} kill{'s' if kills.count != 1 else ''}, the last at "
                        f"{kills.lastKilledAt.isoformat()}){advice}"
                    ),
                    now=now,
                    identity=self.identity,
                    kind="Warning",
                )
            )

    def _post(self, event: dict[str, Any]) -> None:
        try:
            self.client.create(event_path(event["metadata"]["namespace"]), event)
        except ApiError as error:
            metrics.API_ERRORS.labels("post_event", str(error.status)).inc()
            log.warning("posting event %s failed: %s", event["reason"], error)

    def _warn_about_report(self, node: str, reason: str, message: str, now: datetime) -> None:
        """A Warning Event on the ResourceReport of ``node``."""
        involved = {"apiVersion": API_VERSION, "kind": "ResourceReport", "name": node}
        self._post(
            build_event(
                involved=involved,
                reason=reason,
                message=message,
                now=now,
                identity=self.identity,
                kind="Warning",
            )
        )

    # --- stale reports --------------------------------------------------------------

    def flag_stale(self, stale: dict[str, str], now: datetime) -> None:
        """Mark newly stale reports (condition + Event); forget ones that recovered."""
        for node in sorted(stale.keys() - self.flagged_stale):
            message = stale[node]
            condition = Condition(
                type="Stale",
                status="True",
                reason="NoHeartbeat",
                message=message,
                lastTransitionTime=now,
            )
            path = f"/apis/{API_VERSION}/resourcereports/{node}/status"
            try:
                self.client.merge_patch(path, {"status": {"conditions": [condition.to_wire()]}})
            except ApiError as error:
                metrics.API_ERRORS.labels("flag_stale", str(error.status)).inc()
                log.warning("flagging report %s stale failed: %s", node, error)
                continue
            self._warn_about_report(node, "StaleReport", message, now)
            self.flagged_stale.add(node)
        self.flagged_stale &= set(stale)

    # --- malformed reports ----------------------------------------------------------

    def flag_malformed(self, ignored: dict[str, str], now: datetime) -> None:
        """A Warning Event on each report newly ignored as malformed (once per problem)."""
        for node in sorted(ignored):
            problem = ignored[node]
            if self.flagged_malformed.get(node) == problem:
                continue
            self._warn_about_report(
                node,
                "MalformedReport",
                f"ignored (the last good figures stay in use): {problem}",
                now,
            )
            self.flagged_malformed[node] = problem
        for node in set(self.flagged_malformed) - set(ignored):
            del self.flagged_malformed[node]
