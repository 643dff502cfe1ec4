"""Writes only on change, one create per recommendation, Events on material changes."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from headroom.api import CapacityRecommendationStatus
from headroom.api.capacityrecommendation import ExcludedNode, NodeFit
from headroom.api.gpu import GpuAdvice
from headroom.controller.compute import compute_batch
from headroom.controller.writer import RecommendationWriter
from headroom.kube.client import ApiError
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import MiB, deployment, report
from tests.unit.test_controller_state import T0, populated


class FakeApi:
    """Objects by path, resourceVersions, and a log of every call."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.version = 0
        self.conflict_next_put = False
        self.events: list[dict[str, Any]] = []

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        return body

    def get(self, path: str) -> dict[str, Any]:
        self.calls.append(("GET", path))
        if path == "/apis/headroom.dev/v1alpha1/capacityrecommendations":  # the cluster-wide list
            items = [o for p, o in self.objects.items() if "/capacityrecommendations/" in p]
            return copy.deepcopy({"items": items})
        if path not in self.objects:
            raise ApiError(404, "NotFound", path)
        return copy.deepcopy(self.objects[path])

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("POST", path))
        if body.get("kind") == "Event":
            self.events.append(body)
            return body
        stored = self._stamp(body)
        self.objects[f"{path}/{body['metadata']['name']}"] = stored
        return stored

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("PUT", path))
        target = path.removesuffix("/status")
        current = self.objects[target]
        if self.conflict_next_put:
            self.conflict_next_put = False
            self.objects[target] = self._stamp(current)
            raise ApiError(409, "Conflict", path)
        if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", path)
        stored = self._stamp({**current, "status": body["status"]})
        self.objects[target] = stored
        return stored

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("PATCH", path))
        return body

    def delete(self, path: str) -> dict[str, Any]:
        self.calls.append(("DELETE", path))
        self.objects.pop(path, None)
        return {}

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, p in self.calls if m == method and fragment in p)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[FakeApi, RecommendationWriter, Clock]:
    api, clock = FakeApi(), Clock()
    writer = RecommendationWriter(
        api,
        identity="me",
        persist_history_seconds=300,  # type: ignore[arg-type]
        material_change_percent=10,
        clock=clock,
    )
    return api, writer, clock


def batch(
    pods: dict[str, tuple[float | None, int]], minutes: int = 0, replicas: int = 2
) -> tuple[Any, CapacityRecommendationStatus]:
    state = populated()
    state.upsert_deployment(deployment("expert-a", replicas=replicas))
    state.upsert_report(report("n1", T0 + timedelta(minutes=minutes), pods))
    state.ingest_pending()
    result = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=minutes))
    return result.statuses[("team", "expert-a")]


@pytest.mark.requirement("CT-003", "CT-004")
def test_first_write_creates_owned_object_then_status_and_an_event() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    assert writer.write(expert, status, T0)
    created = api.objects[
        "/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a"
    ]
    owner = created["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Deployment",
        "expert-a",
        "uid-team-expert-a",
        True,
    )
    assert created["status"]["recommended"]["cpuRequest"] == "250m"
    assert api.count("POST", "/events") == 1


def test_unchanged_figures_are_not_written_again_until_history_is_due() -> None:
    api, writer, clock = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    puts = api.count("PUT")
    # A later report (evidence and history change) with the same recommendation: no write.
    expert, again = batch({"p1": (0.2, 600 * MiB)}, minutes=1)
    assert again.evidence != status.evidence
    assert again.recommended is not None and status.recommended is not None
    assert again.recommended.cpuRequest == status.recommended.cpuRequest
    clock.now = 299
    assert not writer.write(expert, again, T0)
    assert api.count("PUT") == puts
    clock.now = 300  # history persistence is due
    assert writer.write(expert, again, T0)
    assert api.count("PUT") == puts + 1


def test_a_conflict_is_resolved_with_a_fresh_version() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    api.conflict_next_put = True
    expert, changed = batch({"p1": (0.2, 600 * MiB)}, replicas=5)
    assert writer.write(expert, changed, T0)
    stored = api.objects[
        "/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a"
    ]
    assert stored["status"]["current"]["replicas"] == 5


@pytest.mark.requirement("CT-003")
def test_material_changes_raise_events_small_ones_do_not() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    expert, current_changed = batch({"p1": (0.2, 600 * MiB)}, replicas=3)
    writer.write(expert, current_changed, T0)  # written (current changed) but same advice
    assert api.count("POST", "/events") == 1
    expert, bigger = batch({"p1": (0.8, 600 * MiB)}, minutes=1, replicas=3)
    writer.write(expert, bigger, T0)
    assert api.count("POST", "/events") == 2


@pytest.mark.requirement("CT-002", "CT-003")
def test_stale_reports_are_flagged_once() -> None:
    api, writer, _ = setup()
    writer.flag_stale({"n9": "stale report: 400s old"}, T0)
    writer.flag_stale({"n9": "stale report: 460s old"}, T0)
    assert api.count("PATCH", "/resourcereports/n9/status") == 1
    assert api.count("POST", "/namespaces/default/events") == 1
    writer.flag_stale({}, T0)  # recovered
    writer.flag_stale({"n9": "stale again"}, T0)
    assert api.count("PATCH", "/resourcereports/n9/status") == 2


def test_delete_tolerates_a_missing_object() -> None:
    api, writer, _ = setup()
    assert writer.delete(("team", "gone"))
    assert api.count("DELETE") == 1


def _with_fit(status: CapacityRecommendationStatus, **changes: Any) -> CapacityRecommendationStatus:
    assert status.fit is not None
    return status.model_copy(update={"fit": status.fit.model_copy(update=changes)})


def test_fit_totals_are_written_when_they_move_beyond_the_threshold_only() -> None:
    api, writer, clock = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    n1, n2 = (NodeFit(node=n, replicas=10, limitedBy="cpu") for n in ("n1", "n2"))
    status = _with_fit(status, additionalReplicas=100, fittingNodeCount=10, nodes=[n1])
    assert writer.write(expert, status, T0)
    puts = api.count("PUT")
    # 100 -> 105 more replicas, another listed node: within 10 %, not written.
    nudged = _with_fit(status, additionalReplicas=105, nodes=[n2, n1])
    assert not writer.write(expert, nudged, T0)
    assert not writer.write(expert, _with_fit(status, fittingNodeCount=11), T0)
    assert api.count("PUT") == puts
    # 100 -> 111: beyond 10 %, written, with the listed nodes as they are now.
    assert writer.write(expert, _with_fit(nudged, additionalReplicas=111), T0)
    stored = api.objects[
        "/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a"
    ]
    assert stored["status"]["fit"]["additionalReplicas"] == 111
    assert [n["node"] for n in stored["status"]["fit"]["nodes"]] == ["n2", "n1"]
    # To zero, and back from zero, are always written, however small the numbers.
    assert writer.write(expert, _with_fit(status, additionalReplicas=0, fittingNodeCount=0), T0)
    assert writer.write(expert, _with_fit(status, additionalReplicas=1, fittingNodeCount=1), T0)
    # A node left out of fit (stale, cordoned) is written at once.
    left_out = _with_fit(
        status,
        additionalReplicas=1,
        fittingNodeCount=1,
        excludedNodeCount=1,
        excludedNodes=[ExcludedNode(node="n9", reason="stale report")],
    )
    assert writer.write(expert, left_out, T0)
    # Whatever moved a little is written with the history, when due.
    assert not writer.write(expert, _with_fit(left_out, nodes=[]), T0)
    clock.now += 300
    assert writer.write(expert, left_out, T0)


def _stored_object(api: FakeApi) -> dict[str, Any]:
    return copy.deepcopy(
        api.objects["/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a"]
    )


def _restarted(api: FakeApi) -> tuple[RecommendationWriter, Clock]:
    clock = Clock()
    clock.now = 1000.0
    writer = RecommendationWriter(
        api,  # type: ignore[arg-type]
        identity="me",
        persist_history_seconds=300,
        material_change_percent=10,
        clock=clock,
    )
    return writer, clock


def test_after_a_restart_an_unchanged_stored_recommendation_is_not_written_again() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    stored = _stored_object(api)
    stored["metadata"]["managedFields"] = [
        {
            "manager": "headroom",
            "operation": "Update",
            "subresource": "status",
            "time": (T0 - timedelta(seconds=60)).isoformat(),
        },
    ]
    restarted, clock = _restarted(api)
    assert restarted.remember(stored, T0)
    calls = len(api.calls)
    assert not restarted.write(expert, status, T0)  # the same recommendation: nothing sent
    assert len(api.calls) == calls
    clock.now += 239
    assert not restarted.write(expert, status, T0)
    clock.now += 1  # 60 s before the restart + 240 s after: the history is due
    assert restarted.write(expert, status, T0)
    # Written straight away with the stored resourceVersion: no GET first.
    assert api.calls[calls:] == [
        (
            "PUT",
            "/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a/status",
        )
    ]


def test_after_a_restart_a_changed_or_unreadable_recommendation_is_written() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    stored = _stored_object(api)
    restarted, _ = _restarted(api)
    assert restarted.remember(stored, T0)
    expert, changed = batch({"p1": (0.2, 600 * MiB)}, replicas=5)
    assert restarted.write(expert, changed, T0)
    assert api.count("POST", "/events") == 1  # current changed, advice did not: no new Event

    broken = _stored_object(api)
    broken["status"]["recommended"]["replicas"] = "many"
    restarted, _ = _restarted(api)
    assert not restarted.remember(broken, T0)
    assert restarted.write(expert, changed, T0)


def test_a_stored_recommendation_without_a_write_time_is_due_at_once() -> None:
    api, writer, _ = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})
    writer.write(expert, status, T0)
    stored = _stored_object(api)
    stored["status"].pop("history", None)
    restarted, _ = _restarted(api)
    assert restarted.remember(stored, T0)
    assert restarted.write(expert, status, T0)


@pytest.mark.requirement("CT-004")
def test_an_oom_kill_raises_one_warning_event_on_the_deployment_not_again_after_a_restart() -> None:
    from tests.unit.test_controller_containers import KEY, learnt_state

    api, writer, _ = setup()
    state = learnt_state(kill="2026-11-01T11:58:00Z")
    expert, status = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=3)).statuses[KEY]
    events: list[dict[str, Any]] = []
    original = api.create

    def record(path: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("kind") == "Event":
            events.append(body)
        return original(path, body)

    api.create = record  # type: ignore[method-assign]
    assert writer.write(expert, status, T0)
    warnings = [e for e in events if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["OOMKilled"]
    assert warnings[0]["involvedObject"]["kind"] == "Deployment"
    assert "container app was OOM-killed at its 1Gi limit" in warnings[0]["message"]
    assert "1280Mi" in warnings[0]["message"]

    restarted, clock = _restarted(api)
    assert restarted.remember(_stored_object(api), T0)
    clock.now += 1000  # due: written again, but the kill was reported already
    assert restarted.write(expert, status, T0)
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["OOMKilled"]


def test_a_containers_small_moves_wait_for_the_next_write_large_ones_do_not() -> None:
    from tests.unit.test_controller_containers import KEY, learnt_state

    _, writer, _ = setup()
    expert, status = compute_batch(
        learnt_state(), SizingDefaults(), T0 + timedelta(minutes=3)
    ).statuses[KEY]
    assert writer.write(expert, status, T0)
    assert status.containers is not None

    def with_app_cpu(cores: float) -> CapacityRecommendationStatus:
        changed = status.model_copy(deep=True)
        assert changed.containers is not None and changed.containers[0].recommended is not None
        changed.containers[0].recommended.cpuRequestCores = cores
        return changed

    assert not writer.needs_write(KEY, with_app_cpu(0.26))  # 250m → 260m: 4 %
    assert writer.needs_write(KEY, with_app_cpu(0.30))  # 250m → 300m: 20 %


@pytest.mark.requirement("GP-004")
def test_a_gpu_replica_change_is_written_at_once_its_moving_figures_wait() -> None:
    api, writer, clock = setup()
    expert, status = batch({"p1": (0.2, 600 * MiB)})

    def with_gpu(replicas: int, utilization: float) -> CapacityRecommendationStatus:
        advice = GpuAdvice(
            resource="nvidia.com/gpu",
            requestPerReplica=1,
            replicas=replicas,
            utilizationPercent=utilization,
            replicasReason=f"{utilization}% of 1 GPU",
        )
        return status.model_copy(update={"gpu": advice})

    assert writer.write(expert, with_gpu(2, 61.0), T0)
    puts, events = api.count("PUT"), api.count("POST", "/events")
    clock.now = 60
    # The GPU use moved, the advice did not: it waits for the next write.
    assert not writer.write(expert, with_gpu(2, 64.0), T0)
    assert api.count("PUT") == puts
    # The GPU replicas moved: written now, not when the history is next due, with an Event.
    clock.now = 120
    assert writer.write(expert, with_gpu(3, 95.0), T0)
    assert api.count("PUT") == puts + 1
    assert api.count("POST", "/events") == events + 1
    assert "GPU use: 3 replicas × 1 nvidia.com/gpu" in api.events[-1]["message"]
    stored = api.objects[
        "/apis/headroom.dev/v1alpha1/namespaces/team/capacityrecommendations/expert-a"
    ]
    assert stored["status"]["gpu"]["replicas"] == 3
