"""CT: where more replicas fit — the tighter of scheduler and agent views; stale nodes left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from headroom.api.resourcereport import CpuFigures
from headroom.recommend.fit import (
    NodeCapacity,
    compute_fit,
    exclusion_reason,
    free_capacity,
    report_free_cpu_cores,
)

GI = 2**30
MI = 2**20
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def node(name: str, cpu: float = 4, memory: int = 16 * GI, **changes: object) -> NodeCapacity:
    fields: dict[str, object] = {
        "allocatable_cpu_cores": cpu,
        "allocatable_memory_bytes": memory,
        "requested_cpu_cores": 0.0,
        "requested_memory_bytes": 0,
    }
    return NodeCapacity(name, **{**fields, **changes})  # type: ignore[arg-type]


WORKED = [
    # a: scheduler 4 − 1.5 = 2.5 cores, agent 3 → 2.5; memory 16 − 4 = 12Gi, agent 10Gi → 10Gi
    #    500m, 1Gi: 2500 / 500 = 5, 10Gi / 1Gi = 10 → 5, limited by CPU
    node(
        "a",
        requested_cpu_cores=1.5,
        requested_memory_bytes=4 * GI,
        report_free_cpu_cores=3.0,
        report_available_memory_bytes=10 * GI,
    ),
    # b: no report: scheduler view only; 8 − 2 = 6 cores → 12; 32 − 30 = 2Gi → 2: memory
    node("b", cpu=8, memory=32 * GI, requested_cpu_cores=2, requested_memory_bytes=30 * GI),
    # c: left out
    node("c", exclusion="stale report"),
    # d: over-committed by requests: nothing free
    node("d", requested_cpu_cores=5, requested_memory_bytes=1 * GI),
    # e: the agent sees it busy: 4 × (1 − 0.95) = 0.2 cores free < 500m
    node("e", report_free_cpu_cores=0.2),
]


@pytest.mark.requirement("CT-001")
def test_the_worked_example() -> None:
    fit = compute_fit(WORKED, 0.5, GI)
    assert fit.additionalReplicas == 7  # 5 on a + 2 on b
    assert [(n.node, n.replicas, n.limitedBy) for n in fit.nodes] == [
        ("a", 5, "cpu"),
        ("b", 2, "memory"),
    ]
    assert fit.fittingNodeCount == 2
    assert [(n.node, n.reason) for n in fit.excludedNodes] == [("c", "stale report")]
    assert fit.excludedNodeCount == 1


def test_nodes_sort_by_replicas_then_name_and_the_list_is_capped() -> None:
    nodes = [node(f"n{i:02d}", cpu=1) for i in range(30)] + [node("big", cpu=3)]
    fit = compute_fit(nodes, 1, GI)
    # 30 nodes × 1 + 3 on "big" = 33, all counted; 20 listed, the fullest first, then by name
    assert fit.additionalReplicas == 33 and fit.fittingNodeCount == 31
    assert [n.node for n in fit.nodes] == ["big"] + [f"n{i:02d}" for i in range(19)]
    assert fit.nodes[0].replicas == 3


def test_excluded_nodes_are_capped_too() -> None:
    nodes = [node(f"x{i:02d}", exclusion="no ResourceReport") for i in range(25)]
    fit = compute_fit(nodes, 0.1, MI, max_listed=5)
    assert fit.additionalReplicas == 0 and fit.nodes == []
    assert [n.node for n in fit.excludedNodes] == ["x00", "x01", "x02", "x03", "x04"]
    assert fit.excludedNodeCount == 25


@pytest.mark.requirement("CT-001")
def test_exact_boundaries() -> None:
    # 1000m free, 333m each: 3 × 333 = 999 ≤ 1000 → 3; 334m: 3 × 334 = 1002 > 1000 → 2
    assert compute_fit([node("a", cpu=1)], 0.333, MI).additionalReplicas == 3
    assert compute_fit([node("a", cpu=1)], 0.334, MI).additionalReplicas == 2
    # 16Gi free, requests of exactly 8Gi fit twice, one byte more only once
    assert compute_fit([node("a")], 0.1, 8 * GI).additionalReplicas == 2
    assert compute_fit([node("a")], 0.1, 8 * GI + 1).additionalReplicas == 1
    # float noise: 4 − 3.71 = 0.29000000000000004 cores, 290m requests → 1
    assert compute_fit([node("a", requested_cpu_cores=3.71)], 0.29, MI).additionalReplicas == 1


def test_a_tie_between_resources_is_put_on_cpu() -> None:
    fit = compute_fit([node("a", cpu=2, memory=2 * GI)], 1, GI)
    assert [(n.replicas, n.limitedBy) for n in fit.nodes] == [(2, "cpu")]


def test_many_experts_share_one_precomputation() -> None:
    free = free_capacity(WORKED)
    assert free.names == ("a", "b", "d", "e")
    assert free.cpu_millicores == (2500, 6000, 0, 200)
    assert free.memory_kib == (10 * 2**20, 2 * 2**20, 15 * 2**20, 16 * 2**20)
    first = free.fit(0.5, GI)
    again = free.fit(0.5, GI)
    assert first == again and first is not again  # cached, yet a fresh model each time
    # a: min(2500 // 1000, 10Gi // 2Gi) = min(2, 5) = 2; b: min(6, 1) = 1; d, e: 0
    assert free.fit(1, 2 * GI).additionalReplicas == 3
    assert free.fit(0.5, GI) == compute_fit(WORKED, 0.5, GI)


@pytest.mark.parametrize(("cpu", "memory"), [(0, GI), (0.1, 0), (-1, GI)])
def test_requests_must_be_positive(cpu: float, memory: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        compute_fit(WORKED, cpu, memory)


def test_node_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        free_capacity([node("a"), node("a")])


def test_report_free_cpu() -> None:
    # 8 logical cores at 25 % → 8 × 0.75 = 6 cores idle
    assert report_free_cpu_cores(CpuFigures(utilizationPercent=25, logicalCores=8)) == 6


@pytest.mark.requirement("CT-002")
@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({}, None),
        ({"report_collected_at": None}, "no ResourceReport"),
        # heartbeat 60 s: stale after 3 × 60 = 180 s without a report
        ({"report_collected_at": NOW - timedelta(seconds=180)}, None),
        (
            {"report_collected_at": NOW - timedelta(seconds=181)},
            "stale report: 181s old, more than 3 × 60s heartbeat",
        ),
        ({"unschedulable": True}, "cordoned"),
        ({"ready": False}, "not Ready"),
        ({"pressures": ["MemoryPressure", "DiskPressure"]}, "under DiskPressure, MemoryPressure"),
        (
            {"report_collected_at": None, "unschedulable": True, "pressures": ["PIDPressure"]},
            "no ResourceReport; cordoned; under PIDPressure",
        ),
    ],
)
def test_exclusion_reason(arguments: dict[str, object], reason: str | None) -> None:
    given: dict[str, object] = {"report_collected_at": NOW, "heartbeat_seconds": 60, **arguments}
    assert exclusion_reason(now=NOW, **given) == reason  # type: ignore[arg-type]
