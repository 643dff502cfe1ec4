"""A batch that reuses the last one's work gives what a batch from scratch gives (CT, speed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from headroom.controller.compute import batch_free_capacity, compute_batch, node_capacities
from headroom.controller.selector import LabelSelector
from headroom.controller.state import ClusterState
from headroom.recommend.fit import free_capacity
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import GiB, MiB, deployment, node, pod, replicaset, report

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NODES = [f"n{i}" for i in range(12)]


def cluster() -> tuple[ClusterState, dict[str, list[str]]]:
    """12 nodes (one cordoned, one under pressure), 5 experts × 3 pods, each a different size."""
    state = ClusterState(selector=LabelSelector.parse("headroom.dev/expert=true"))
    for name in NODES:
        state.upsert_node(
            node(
                name,
                cpu="8",
                memory="32Gi",
                unschedulable=name == "n3",
                conditions=[
                    {"type": "Ready", "status": "True"},
                    {"type": "MemoryPressure", "status": "True" if name == "n5" else "False"},
                ],
            )
        )
    on_node: dict[str, list[str]] = {name: [] for name in NODES}
    for index in range(5):
        name = f"expert-{index}"
        state.upsert_deployment(deployment(name, cpu=f"{250 * (index + 1)}m", memory="1Gi"))
        state.upsert_replicaset(replicaset(f"{name}-rs", name))
        for replica in range(3):
            uid = f"{name}-{replica}"
            where = NODES[(index * 3 + replica) % len(NODES)]
            state.upsert_pod(pod(uid, f"{name}-rs", where, cpu=f"{250 * (index + 1)}m"))
            on_node[where].append(uid)
    return state, on_node


def reports_at(
    state: ClusterState, on_node: dict[str, list[str]], at: datetime, rng: random.Random
) -> None:
    for name in rng.sample(NODES, rng.choice([0, 1, 2, 2, 3])):
        if name == "n7" and at > T0 + timedelta(minutes=2):
            continue  # goes silent: stale after 3 heartbeats
        state.upsert_report(
            report(
                name,
                at,
                {
                    uid: (rng.uniform(0.05, 1.5), rng.randint(200, 900) * MiB)
                    for uid in on_node[name]
                },
                cores=8,
                cpu_percent=rng.uniform(5, 90),
                available=rng.randint(4, 28) * GiB,
            )
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_with_reuse_equal_batches_from_scratch(seed: int) -> None:
    warm, on_node = cluster()
    cold, _ = cluster()
    rng_warm, rng_cold = random.Random(seed), random.Random(seed)
    defaults = SizingDefaults()
    for step in range(40):
        at = T0 + timedelta(seconds=20 * step)
        reports_at(warm, on_node, at, rng_warm)
        reports_at(cold, on_node, at, rng_cold)
        warm.ingest_pending()
        cold.ingest_pending()
        cold.memos.clear()  # nothing reused: every figure computed afresh
        cold.free = None
        now = at + timedelta(seconds=1)
        hot, fresh = compute_batch(warm, defaults, now), compute_batch(cold, defaults, now)
        assert hot.stale_reports == fresh.stale_reports
        assert hot.fresh_reports == fresh.fresh_reports
        for key, (_, status) in fresh.statuses.items():
            assert hot.statuses[key][1] == status, (step, key)


def test_the_batch_free_capacity_is_the_public_one() -> None:
    state, on_node = cluster()
    rng = random.Random(7)
    for step in range(10):
        at = T0 + timedelta(seconds=60 * step)
        reports_at(state, on_node, at, rng)
        now = at + timedelta(seconds=5)
        capacities, stale = node_capacities(state, now, 3)
        expected = free_capacity(capacities)
        free, fast_stale = batch_free_capacity(state, now, 3)
        assert fast_stale == stale
        assert (free.names, free.cpu_millicores, free.memory_kib, free.excluded) == (
            expected.names,
            expected.cpu_millicores,
            expected.memory_kib,
            expected.excluded,
        )
