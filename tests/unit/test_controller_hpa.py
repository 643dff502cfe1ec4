"""The controller's model of HPAs and PodDisruptionBudgets, and what a batch makes of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from headroom.controller.compute import compute_batch
from headroom.controller.selector import LabelSelector, SelectorError
from headroom.controller.state import ClusterState, parse_autoscaler
from headroom.controller.writer import RecommendationWriter
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import MiB, deployment, report
from tests.unit.test_controller_state import T0, populated


def hpa(
    name: str = "expert-a",
    target: str = "expert-a",
    *,
    low: int | None = 1,
    high: int = 8,
    metrics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "maxReplicas": high,
    }
    if low is not None:
        spec["minReplicas"] = low
    if metrics is not None:
        spec["metrics"] = metrics
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


def cpu_utilization(percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": percent},
        },
    }


def pdb(name: str, selector: dict[str, Any] | None, **budget: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(budget)
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


def labelled_expert(state: ClusterState) -> None:
    body = deployment("expert-a")
    body["spec"]["template"]["metadata"] = {"labels": {"app": "expert-a", "tier": "gpu"}}
    state.upsert_deployment(body)


def status_of(state: ClusterState) -> Any:
    state.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB), "p2": (0.2, 600 * MiB)}))
    state.ingest_pending()
    result = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5))
    return result.statuses[("team", "expert-a")][1]


def test_hpa_metrics_are_read_as_the_api_defines_them() -> None:
    default = parse_autoscaler("h", hpa(low=None)["spec"])
    # no metrics: the API's default, 80 % CPU; no minReplicas: 1
    assert (default.cpu_utilization_percent, default.min_replicas, default.max_replicas) == (
        80,
        1,
        8,
    )
    average = parse_autoscaler(
        "h",
        hpa(
            metrics=[
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "AverageValue", "averageValue": "300m"},
                    },
                }
            ]
        )["spec"],
    )
    assert average.cpu_average_cores == 0.3 and average.cpu_utilization_percent is None
    custom = parse_autoscaler(
        "h",
        hpa(
            metrics=[
                {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {}}},
            ]
        )["spec"],
    )
    assert custom.cpu_utilization_percent is None and custom.cpu_average_cores is None
    assert custom.other_metrics == ("Pods/requests_per_second", "Resource/memory")


@pytest.mark.requirement("CT-001")
def test_an_hpa_on_the_expert_turns_replicas_into_hpa_bounds() -> None:
    state = populated()
    state.upsert_autoscaler(hpa(low=1, high=8, metrics=[cpu_utilization(70)]))
    state.upsert_autoscaler(hpa("other", target="someone-else"))
    status = status_of(state)
    advice = status.recommended.hpa
    assert advice is not None and advice.name == "expert-a"
    # total 0.4 → bucket upper 0.414305 for p10, p95 and peak alike; share 250m × 70 % = 175m
    # → ⌈2.37⌉ = 3 for both bounds
    assert (advice.minReplicas, advice.maxReplicas) == (3, 3)
    assert advice.targetAgrees is True  # 175m ≤ the per-pod p95 216m
    assert status.columns.replicas == "~hpa:3-3"
    assert "owns the replicas" in status.recommended.replicasReason
    state.delete_autoscaler("team", "expert-a")
    assert state.autoscaler_of(("team", "expert-a")) is None
    assert state.autoscaled == {("team", "someone-else"): {"other"}}


def test_an_hpa_retargeted_elsewhere_stops_owning_the_expert() -> None:
    state = populated()
    state.upsert_autoscaler(hpa())
    state.upsert_autoscaler(hpa(target="expert-b"))
    assert state.autoscaler_of(("team", "expert-a")) is None
    assert state.autoscaler_of(("team", "expert-b")) is not None


@pytest.mark.requirement("CT-001")
def test_a_matching_budget_sets_the_floor_and_others_do_not() -> None:
    state = populated()
    labelled_expert(state)
    state.upsert_budget(pdb("other", {"matchLabels": {"app": "someone-else"}}, minAvailable=9))
    state.upsert_budget(pdb("none", None, minAvailable=9))  # a null selector selects nothing
    state.upsert_budget(
        pdb(
            "expert-pdb",
            {
                "matchLabels": {"app": "expert-a"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}],
            },
            minAvailable=4,
        )
    )
    status = status_of(state)
    # the load needs 3 (0.414305 / 0.175 = 2.37); minAvailable 4 needs 5
    assert status.recommended.replicas == 5
    assert status.evidence.pdb == "expert-pdb"
    state.delete_budget("team", "expert-pdb")
    assert state.budget_of(state.experts[("team", "expert-a")]) is None


def test_structured_selectors() -> None:
    selector = LabelSelector.from_structured(
        {
            "matchLabels": {"app": "a"},
            "matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["cpu"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"app": "a", "tier": "gpu", "gpu": "h200"})
    assert not selector.matches({"app": "a", "tier": "cpu", "gpu": "h200"})
    assert not selector.matches({"app": "a", "gpu": "h200", "canary": "1"})
    assert LabelSelector.from_structured({}).matches({"anything": "at all"})
    with pytest.raises(SelectorError):
        LabelSelector.from_structured({"matchExpressions": [{"key": "k", "operator": "Near"}]})


def test_narrowing_bounds_alone_write_nothing_but_new_hpa_bounds_raise_an_event() -> None:
    state = populated()
    state.upsert_autoscaler(hpa(metrics=[cpu_utilization(70)]))
    first = status_of(state)
    writer = RecommendationWriter(
        cast(Any, None), identity="t", persist_history_seconds=300, material_change_percent=10
    )
    narrower = first.model_copy(deep=True)
    narrower.recommended.bounds.factor = 1.5
    narrower.recommended.bounds.cpuUpper = "400m"
    narrower.recommended.hpa.minReplicasReason = "other words"
    from headroom.controller.writer import _signature

    assert _signature(narrower) == _signature(first)
    moved = first.model_copy(deep=True)
    moved.recommended.hpa.maxReplicas = 9
    assert _signature(moved) != _signature(first)
    assert writer._material(first, moved)


def test_a_relist_forgets_hpas_and_budgets_deleted_while_no_watch_ran() -> None:
    from tests.unit.test_controller_runtime import runtime

    rt, _ = runtime()
    rt._autoscaler_event("ADDED", hpa())
    rt._autoscaler_event("ADDED", hpa("kept", target="expert-b"))
    rt._budget_event("ADDED", pdb("gone", {}, minAvailable=1))
    rt._budget_event("ADDED", pdb("kept", {}, minAvailable=1))
    rt._autoscalers_listed({("team", "kept")})
    rt._budgets_listed({("team", "kept")})
    assert set(rt.state.autoscalers) == {("team", "kept")}
    assert rt.state.autoscaler_of(("team", "expert-a")) is None
    assert set(rt.state.budgets["team"]) == {"kept"}
    rt._autoscaler_event("DELETED", hpa("kept", target="expert-b"))
    rt._budget_event("DELETED", pdb("kept", {}))
    assert not rt.state.autoscalers and not rt.state.budgets
