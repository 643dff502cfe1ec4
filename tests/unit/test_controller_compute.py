"""A whole batch from the in-memory model: recommendation, fit, stale nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headroom.controller.compute import compute_batch
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import GiB, MiB, node, report
from tests.unit.test_controller_state import T0, populated


@pytest.mark.requirement("CT-001")
def test_batch_recommends_and_fits_with_hand_computed_figures() -> None:
    state = populated()
    state.upsert_node(node("n2"))
    state.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB), "p2": (0.2, 600 * MiB)}))
    state.upsert_report(report("n2", T0, {}))
    state.ingest_pending()
    result = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5))
    _, status = result.statuses[("team", "expert-a")]
    rec = status.recommended
    assert rec is not None and status.fit is not None and status.current is not None
    # p95 of 0.2-core samples lands in the bucket just above 0.2 (≤ 5 % high): 216m;
    # +15 % = 248.4m → rounded up to 10m steps = 250m.
    assert rec.cpuRequest == "250m"
    # peak 600Mi → bucket upper bound ≈ 619Mi; +15 % ≈ 712Mi → 16Mi steps → 720Mi.
    assert rec.memoryRequest == "720Mi"
    # 0.4 cores used / (0.25 × 70 %) = 2.29 → 3 replicas.
    assert rec.replicas == 3
    # n1: CPU free = min(4 − 1.0 requested, 4 × 75 % idle) = 3.0 → 12 × 250m;
    #     memory free = min(16Gi − 2Gi, 12Gi available) = 12Gi → 17 × 720Mi. → 12
    # n2: CPU min(4, 3.0) = 3.0 → 12; memory 12Gi → 17. → 12
    assert status.fit.additionalReplicas == 24
    assert status.current.cpuRequest == "500m" and status.current.replicas == 2
    assert result.stale_reports == {}
    assert {c.type: c.status for c in status.conditions} == {
        "PolicyValid": "True",
        "Ready": "True",
        "Confident": "False",  # a single report is no history to be sure of
    }


@pytest.mark.requirement("CT-002")
def test_stale_cordoned_and_pressured_nodes_are_left_out() -> None:
    state = populated()
    state.upsert_node(node("stale"))
    state.upsert_node(node("cordoned", unschedulable=True))
    state.upsert_node(
        node(
            "pressed",
            conditions=[
                {"type": "Ready", "status": "True"},
                {"type": "DiskPressure", "status": "True"},
            ],
        )
    )
    state.upsert_node(node("silent"))  # no report at all
    now = T0 + timedelta(minutes=10)
    state.upsert_report(report("n1", now, {"p1": (0.2, 600 * MiB)}))
    state.upsert_report(report("stale", T0, {}, heartbeat=60))  # 10 min > 3 × 60 s
    state.upsert_report(report("cordoned", now, {}))
    state.upsert_report(report("pressed", now, {}))
    state.ingest_pending()
    result = compute_batch(state, SizingDefaults(), now)
    _, status = result.statuses[("team", "expert-a")]
    assert status.fit is not None
    excluded = {e.node: e.reason for e in status.fit.excludedNodes}
    assert set(excluded) == {"stale", "cordoned", "pressed", "silent"}
    assert "stale report" in excluded["stale"]
    assert "cordoned" in excluded["cordoned"]
    assert "DiskPressure" in excluded["pressed"]
    assert "no ResourceReport" in excluded["silent"]
    assert [n.node for n in status.fit.nodes] == ["n1"]
    assert set(result.stale_reports) == {"stale"}


@pytest.mark.requirement("CT-006")
def test_bad_annotations_are_a_condition_not_a_crash() -> None:
    state = populated()
    state.upsert_deployment({**_annotated("headroom.dev/target-utilization", "150%")})
    result = compute_batch(state, SizingDefaults(), T0)
    _, status = result.statuses[("team", "expert-a")]
    conditions = {c.type: c for c in status.conditions}
    assert conditions["PolicyValid"].status == "False"
    assert "target-utilization" in conditions["PolicyValid"].message
    assert status.policy is not None and status.policy.targetUtilizationPercent == 70


def test_without_samples_requests_stay_and_ready_is_false() -> None:
    state = populated()
    result = compute_batch(state, SizingDefaults(), datetime(2026, 11, 1, tzinfo=UTC))
    _, status = result.statuses[("team", "expert-a")]
    assert status.recommended is not None
    assert (status.recommended.cpuRequest, status.recommended.memoryRequest) == ("500m", "1Gi")
    assert {c.type: c.status for c in status.conditions}["Ready"] == "False"
    assert GiB == status.recommended.memoryRequestBytes


def _annotated(key: str, value: str) -> dict[str, object]:
    from tests.unit.controller_bodies import deployment

    return deployment("expert-a", annotations={key: value})
