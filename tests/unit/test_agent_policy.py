"""AG: one write per change beyond the threshold or per heartbeat, never more; backoff."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import pytest

from headroom.agent.policy import Backoff, WritePolicy, moved_beyond
from headroom.collection.derive import derive_status
from tests.unit.samples import sample


def status(mem: float = 40.0, disk: float = 50.0, pods: tuple[str, ...] = ("pod-a",)):  # type: ignore[no-untyped-def]
    return derive_status(
        None,
        sample(0, busy=0, total=0, mem_percent=mem, disk_percent=disk, pods=pods),
        collected_at=datetime(2026, 1, 1, tzinfo=UTC),
        agent_version="test",
        heartbeat_seconds=60,
    )


def policy() -> WritePolicy:
    return WritePolicy(heartbeat_seconds=60, min_interval_seconds=15, threshold_percent=5)


@pytest.mark.requirement("AG-001")
def test_first_report_is_written_at_once() -> None:
    assert policy().reason_to_write(0.0, status()) == "first report"


@pytest.mark.requirement("AG-001")
def test_small_moves_wait_for_the_heartbeat() -> None:
    rule = policy()
    rule.written(0.0, status(mem=40))
    assert rule.reason_to_write(30.0, status(mem=44.9)) is None
    assert rule.reason_to_write(59.9, status(mem=44.9)) is None
    assert rule.reason_to_write(60.0, status(mem=44.9)) == "heartbeat"


@pytest.mark.requirement("AG-001")
def test_a_move_beyond_the_threshold_writes_early_but_not_within_the_interval() -> None:
    rule = policy()
    rule.written(0.0, status(mem=40))
    assert rule.reason_to_write(10.0, status(mem=90)) is None  # within the 15 s interval
    reason = rule.reason_to_write(15.0, status(mem=90))
    assert reason is not None and "memory" in reason


@pytest.mark.requirement("AG-001")
@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ({"disk": 56.0}, "disk:/"),
        ({"pods": ("pod-a", "pod-b")}, "pods changed"),
        ({"disk": 54.0}, None),
    ],
)
def test_what_counts_as_moved(new: dict[str, object], expected: str | None) -> None:
    reason = moved_beyond(status(), status(**new), 5.0)  # type: ignore[arg-type]
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.requirement("AG-001", "PR-001", "PR-003")
def test_never_more_than_one_write_per_interval_over_a_busy_hour() -> None:
    rule = policy()
    writes: list[float] = []
    for step in range(3600):  # a figure swinging wildly every second
        now = float(step)
        current = status(mem=10 if step % 2 else 90)
        if rule.reason_to_write(now, current):
            rule.written(now, current)
            writes.append(now)
    gaps = [b - a for a, b in itertools.pairwise(writes)]
    assert min(gaps) >= 15
    assert len(writes) == 240


@pytest.mark.requirement("AG-001", "PR-003")
def test_steady_figures_write_once_per_heartbeat() -> None:
    rule = policy()
    writes = 0
    for step in range(0, 3600, 15):
        if rule.reason_to_write(float(step), status()):
            rule.written(float(step), status())
            writes += 1
    assert writes == 60


@pytest.mark.requirement("AG-002")
def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    backoff = Backoff(initial_seconds=1, max_seconds=60, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(60, 2**n) for n in range(10)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered, not in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1
