"""The batch loop's rules: when to recompute, and that only the leader writes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from headroom.controller.compute import compute_batch
from headroom.controller.runtime import Runtime
from headroom.controller.settings import ControllerSettings
from headroom.controller.writer import RecommendationWriter
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import MiB, node, report
from tests.unit.test_controller_state import T0, populated
from tests.unit.test_controller_writer import FakeApi


class FakeElector:
    def __init__(self, leader: bool) -> None:
        self.is_leader = leader


def runtime(leader: bool = True) -> tuple[Runtime, FakeApi]:
    api = FakeApi()
    state = populated()
    settings = ControllerSettings(identity="me", lease_namespace="ns")
    writer = RecommendationWriter(
        api,
        identity="me",
        persist_history_seconds=300,  # type: ignore[arg-type]
        material_change_percent=10,
    )
    rt = Runtime(
        settings=settings,
        state=state,
        elector=FakeElector(leader),  # type: ignore[arg-type]
        writer=writer,
        defaults=SizingDefaults(),
    )
    return rt, api


@pytest.mark.requirement("CT-002")
async def test_a_silent_agent_is_flagged_even_when_nothing_else_changes() -> None:
    rt, api = runtime()
    rt.state.upsert_node(node("quiet"))
    rt.state.upsert_report(report("quiet", T0, {}, heartbeat=5))
    clock = [T0]
    rt.state.now = lambda: clock[0]  # type: ignore[method-assign]
    await rt.run_batch()
    assert api.count("PATCH", "/resourcereports/quiet/status") == 0
    clock[0] = T0 + timedelta(seconds=16)  # > 3 × 5 s, and no event arrived since
    assert not rt.state.dirty
    await rt.run_batch()
    assert api.count("PATCH", "/resourcereports/quiet/status") == 1
    batches = rt.batches
    await rt.run_batch()  # flagged already: no recompute for nothing
    assert rt.batches == batches


@pytest.mark.requirement("CT-004")
async def test_a_follower_computes_but_never_writes() -> None:
    rt, api = runtime(leader=False)
    await rt.run_batch()
    assert rt.batches == 1
    assert api.calls == []


@pytest.mark.requirement("CT-004")
async def test_a_new_leader_starts_from_the_stored_recommendations_not_its_own_start() -> None:
    rt, api = runtime(leader=False)
    rt.state.now = lambda: T0  # type: ignore[method-assign]
    rt.state.upsert_report(report("n1", T0, {"p1": (0.2, 300 * MiB)}))
    await rt.run_batch()  # a standby: computes, reads nothing stored, writes nothing
    assert api.calls == []
    result = compute_batch(rt.state, rt.defaults, T0)
    expert, status = result.statuses[("team", "expert-a")]
    # Meanwhile the leader of the time wrote this very recommendation.
    other = RecommendationWriter(
        api,  # type: ignore[arg-type]
        identity="other",
        persist_history_seconds=300,
        material_change_percent=10,
    )
    assert other.write(expert, status, T0)
    puts = api.count("PUT")
    rt.elector.is_leader = True
    rt.state.dirty = True
    await rt.run_batch()
    assert api.count("GET", "/apis/headroom.dev/v1alpha1/capacityrecommendations") == 1
    assert api.count("PUT") == puts  # what is stored is what it would write: nothing sent
    # Leading again after a spell as a standby reads the stored objects again.
    rt.elector.is_leader = False
    await rt.run_batch()
    rt.elector.is_leader, rt.state.dirty = True, True
    await rt.run_batch()
    assert api.count("GET", "/apis/headroom.dev/v1alpha1/capacityrecommendations") == 2
