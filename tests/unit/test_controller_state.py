"""The controller's in-memory model: what it learns from watch events, in any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headroom.controller.selector import LabelSelector
from headroom.controller.state import ClusterState
from tests.unit.controller_bodies import GiB, MiB, deployment, node, pod, replicaset, report

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fresh_state() -> ClusterState:
    return ClusterState(selector=LabelSelector.parse("headroom.dev/expert=true"))


def populated() -> ClusterState:
    state = fresh_state()
    state.upsert_node(node("n1"))
    state.upsert_deployment(deployment("expert-a"))
    state.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    state.upsert_pod(pod("p1", "expert-a-rs", "n1"))
    state.upsert_pod(pod("p2", "expert-a-rs", "n1"))
    return state


def test_requests_per_node_follow_pods_incrementally() -> None:
    state = populated()
    assert state.node_requests["n1"] == [1.0, 2 * GiB]
    state.upsert_pod(
        pod("p2", "expert-a-rs", "n1", phase="Succeeded")
    )  # finished: no longer counts
    assert state.node_requests["n1"] == [0.5, 1 * GiB]
    state.delete_pod("p1")
    assert state.node_requests["n1"] == [0.0, 0]


def test_report_observations_reach_the_expert_history_once() -> None:
    state = populated()
    state.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB), "p2": (None, 500 * MiB)}))
    assert state.ingest_pending() == 2
    history = state.histories[("team", "expert-a")]
    assert (history.samples, history.cpu_samples) == (2, 1)  # no CPU on a pod's first cycle
    state.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB)}))  # a replay: ignored
    assert state.ingest_pending() == 0
    assert state.usage[("team", "expert-a")]["n1"] == (0.2, 1100 * MiB, 2)


def test_a_report_before_its_pods_is_learnt_from_once_they_arrive() -> None:
    state = fresh_state()
    state.upsert_report(report("n1", T0, {"p1": (0.3, 700 * MiB)}))
    assert state.ingest_pending() == 0
    assert state.unprocessed == {"n1": {"p1"}}
    state.upsert_deployment(deployment("expert-a"))
    state.upsert_pod(pod("p1", "expert-a-rs", "n1"))
    assert state.ingest_pending() == 0  # the ReplicaSet is still unknown
    state.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    assert state.ingest_pending() == 1
    assert state.unprocessed == {}


def test_pods_of_other_workloads_are_not_experts() -> None:
    state = populated()
    state.upsert_pod(pod("other", None, "n1"))
    state.upsert_report(report("n1", T0, {"other": (1.0, GiB)}))
    assert state.ingest_pending() == 0
    assert state.unprocessed == {}


@pytest.mark.requirement("CT-004")
def test_deployment_that_stops_matching_is_forgotten_and_its_recommendation_goes() -> None:
    state = populated()
    state.upsert_recommendation(
        {"metadata": {"name": "expert-a", "namespace": "team", "resourceVersion": "7"}}
    )
    state.upsert_deployment(deployment("expert-a", labels={}))
    assert ("team", "expert-a") not in state.experts
    assert state.gone == {("team", "expert-a")}
    state.upsert_deployment(deployment("expert-a"))  # labelled again before the batch
    assert state.gone == set()


def test_history_persisted_in_a_recommendation_is_restored() -> None:
    first = populated()
    first.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB), "p2": (0.4, 700 * MiB)}))
    first.ingest_pending()
    persisted = first.histories[("team", "expert-a")].to_model().model_dump(mode="json")

    second = populated()
    second.upsert_recommendation(
        {"metadata": {"name": "expert-a", "namespace": "team"}, "status": {"history": persisted}}
    )
    restored = second.histories[("team", "expert-a")]
    assert restored.samples == 2
    # The report the first controller already learnt from is not counted again...
    second.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB), "p2": (0.4, 700 * MiB)}))
    second.ingest_pending()
    assert restored.samples == 2
    # ...but a newer one is.
    second.upsert_report(report("n1", T0 + timedelta(minutes=1), {"p1": (0.2, 600 * MiB)}))
    second.ingest_pending()
    assert restored.samples == 3


@pytest.mark.parametrize(
    ("conditions", "unschedulable", "problems"),
    [
        ([{"type": "Ready", "status": "True"}], False, ()),
        ([{"type": "Ready", "status": "False"}], False, ("NotReady",)),
        (
            [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}],
            True,
            ("MemoryPressure",),
        ),
    ],
)
def test_node_health_is_read_from_conditions(
    conditions: list[dict[str, str]], unschedulable: bool, problems: tuple[str, ...]
) -> None:
    state = fresh_state()
    state.upsert_node(node("n1", conditions=conditions, unschedulable=unschedulable))
    info = state.nodes["n1"]
    assert info.problems == problems
    assert info.unschedulable is unschedulable
    assert (info.allocatable_cpu, info.allocatable_memory) == (4.0, 16 * GiB)


@pytest.mark.requirement("FR-007")
def test_pod_level_requests_count_on_the_node_and_as_the_experts_current_sizing() -> None:
    state = fresh_state()
    body = pod("p1", "expert-a-rs", "n1")
    body["spec"]["containers"] = [{"name": "app"}, {"name": "proxy"}]
    body["spec"]["resources"] = {"requests": {"cpu": "1", "memory": "2Gi"}}
    state.upsert_pod(body)
    assert state.node_requests["n1"] == [1.0, 2 * GiB]

    expert = deployment("expert-a")
    template = expert["spec"]["template"]["spec"]
    template["containers"] = [{"name": "app"}, {"name": "proxy"}]
    template["resources"] = {"requests": {"cpu": "1", "memory": "2Gi"}}
    state.upsert_deployment(expert)
    info = state.experts[("team", "expert-a")]
    assert (info.cpu_request, info.memory_request) == (1.0, 2 * GiB)
