"""The issue's reproduction: per-pod CPU drawn each round from a fixed list must not make the
advice swing (17 RecommendationChanged Events in 162 s, replicas between 2, 3 and 4)."""

from __future__ import annotations

import itertools
import math
import random
from datetime import timedelta
from typing import Any, cast

import pytest

from headroom.api import CapacityRecommendationStatus
from headroom.controller.compute import compute_batch
from headroom.controller.writer import RecommendationWriter
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import MiB, deployment, node, pod, replicaset, report
from tests.unit.test_controller_state import T0, fresh_state

DRAWS = (0.1, 0.2, 0.3, 0.45)
PODS = ("p1", "p2", "p3")
ROUND_SECONDS = 10


def run(seconds: int, seed: int) -> tuple[list[CapacityRecommendationStatus], list[float]]:
    """One expert with three pods; every 10 s each pod's CPU is drawn from DRAWS."""
    state = fresh_state()
    state.upsert_node(node("n1", cpu="16", memory="64Gi"))
    state.upsert_deployment(deployment("expert-a", replicas=3))
    state.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    for uid in PODS:
        state.upsert_pod(pod(uid, "expert-a-rs", "n1"))
    rng = random.Random(seed)
    statuses, totals = [], []
    defaults = SizingDefaults()
    for step in range(seconds // ROUND_SECONDS + 1):
        at = T0 + timedelta(seconds=ROUND_SECONDS * step)
        figures = {uid: (rng.choice(DRAWS), 600 * MiB) for uid in PODS}
        state.upsert_report(report("n1", at, figures, cores=16))
        state.ingest_pending()
        status = compute_batch(state, defaults, at).statuses[("team", "expert-a")][1]
        statuses.append(status)
        totals.append(sum(cpu for cpu, _ in figures.values()))
    return statuses, totals


def material_changes(statuses: list[CapacityRecommendationStatus]) -> int:
    """How many RecommendationChanged Events the writer would post (its own rule)."""
    writer = RecommendationWriter(
        cast(Any, None), identity="t", persist_history_seconds=300, material_change_percent=10
    )
    return sum(writer._material(a, b) for a, b in itertools.pairwise(statuses))


def moment_rule_changes(statuses: list[CapacityRecommendationStatus], totals: list[float]) -> int:
    """Replica changes had replicas followed the total of the moment (the old rule)."""
    counts = []
    for status, total in zip(statuses, totals, strict=True):
        assert status.recommended is not None
        counts.append(math.ceil(total / (status.recommended.cpuRequestCores * 0.7) - 1e-9))
    return sum(a != b for a, b in itertools.pairwise(counts))


@pytest.mark.requirement("CT-001")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_162_seconds_of_drawn_cpu_do_not_swing_the_advice(seed: int) -> None:
    statuses, totals = run(162, seed)
    # The moment's rule moves replicas with nearly every draw (8–10 times here); the window's
    # moves only while its first samples come in (a new total sample each minute): 2–3 Events,
    # where the issue saw 17.
    assert moment_rule_changes(statuses, totals) >= 8
    assert material_changes(statuses) <= 3


@pytest.mark.requirement("CT-001")
def test_after_the_first_minutes_the_advice_holds() -> None:
    statuses, totals = run(3600, seed=4)
    last_half_hour = statuses[len(statuses) // 2 :]
    assert material_changes(last_half_hour) == 0
    assert moment_rule_changes(last_half_hour, totals[len(totals) // 2 :]) >= 50
    last = last_half_hour[-1]
    assert last.recommended is not None and last.evidence is not None
    # the moment's total is still shown beside the window's p95
    assert last.evidence.totalCpuUsageCores == pytest.approx(totals[-1])
    assert last.evidence.load is not None and last.evidence.load.samples == 61
