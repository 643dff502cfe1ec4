"""The agent's cycle with a fake clock, a recorded reader and an API store that fails on cue."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from headroom.agent.loop import Agent
from headroom.agent.metrics import AgentMetrics
from headroom.agent.settings import AgentSettings
from headroom.collection.figures import ReportStatus
from headroom.collection.sample import RawSample
from headroom.kube.client import ApiError, ApiUnavailable
from tests.unit.samples import sample


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SteadyReader:
    """A node at 25 % CPU: one busy second in four, every second."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def read(self) -> RawSample:
        t = self.clock.now
        return sample(t, busy=t, total=4 * t)


class FlakyStore:
    def __init__(self) -> None:
        self.written: list[ReportStatus] = []
        self.failures: list[ApiError] = []
        self.attempts: list[float] = []

    def write(self, status: ReportStatus) -> None:
        self.attempts.append(status.collectedAt.timestamp())
        if self.failures:
            raise self.failures.pop(0)
        self.written.append(status)


def make_agent(clock: FakeClock, store: FlakyStore) -> Agent:
    settings = AgentSettings(node_name="n1", interval_seconds=15, heartbeat_seconds=60)
    return Agent(settings, SteadyReader(clock), store, clock=clock, rng=random.Random(1))


def run_for(agent: Agent, clock: FakeClock, seconds: float) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now += agent.tick()


@pytest.mark.requirement("AG-001")
def test_steady_node_writes_once_per_heartbeat() -> None:
    clock, store = FakeClock(), FlakyStore()
    agent = make_agent(clock, store)
    agent.previous = agent.reader.read()
    clock.now = 1.0
    run_for(agent, clock, 3600)
    assert 60 <= len(store.written) <= 61
    assert store.written[-1].cpu.utilizationPercent == pytest.approx(25.0)


@pytest.mark.requirement("AG-002")
def test_unreachable_api_server_backs_off_then_recovers() -> None:
    clock, store = FakeClock(), FlakyStore()
    agent = make_agent(clock, store)
    store.failures = [ApiUnavailable("connection refused") for _ in range(8)]
    clock.now = 1.0
    run_for(agent, clock, 600)
    # 8 failures then success: attempts spaced by growing delays, not every cycle
    assert len(store.attempts) - len(store.written) == 8
    assert agent.backoff.failures == 0
    assert store.written, "recovered and wrote after the outage"
    assert len(store.attempts) < 600 / 1


@pytest.mark.requirement("AG-002")
def test_throttling_and_server_errors_are_retried() -> None:
    clock, store = FakeClock(), FlakyStore()
    agent = make_agent(clock, store)
    store.failures = [ApiError(429, "TooManyRequests", "slow down"), ApiError(503, "x", "y")]
    clock.now = 1.0
    run_for(agent, clock, 120)
    assert len(store.written) >= 1
    assert agent.failures == 2


def test_no_store_means_collect_only() -> None:
    clock = FakeClock()
    settings = AgentSettings(node_name="n1")
    agent = Agent(settings, SteadyReader(clock), None, clock=clock)
    assert agent.tick() == settings.interval_seconds
    assert agent.latest is not None


def test_run_stops_promptly_when_signalled() -> None:
    clock, store = FakeClock(), FlakyStore()
    agent = make_agent(clock, store)
    stop = threading.Event()
    stop.set()
    agent.run(stop)  # returns at once instead of waiting a cycle
    assert store.written == []


def test_metrics_count_cycles_writes_and_failures_by_status() -> None:
    clock, store = FakeClock(), FlakyStore()
    metrics = AgentMetrics()
    settings = AgentSettings(node_name="n1", interval_seconds=15, heartbeat_seconds=60)
    wall = datetime(2025, 1, 1, tzinfo=UTC)
    agent = Agent(
        settings,
        SteadyReader(clock),
        store,
        clock=clock,
        wall_clock=lambda: wall,
        rng=random.Random(1),
        metrics=metrics,
    )
    store.failures = [ApiUnavailable("refused"), ApiError(503, "x", "y")]
    clock.now = 1.0
    cycles = 0
    while clock.now < 120:
        clock.now += agent.tick()
        cycles += 1

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("headroom_agent_collection_cycles_total") == cycles
    assert value("headroom_agent_report_write_failures_total", status="0") == 1
    assert value("headroom_agent_report_write_failures_total", status="503") == 1
    assert value("headroom_agent_report_writes_total") == len(store.written)
    assert value("headroom_agent_last_successful_write_timestamp_seconds") == wall.timestamp()
    assert value("headroom_agent_pods") == 1
    assert value("headroom_agent_collection_duration_seconds_count") == value(
        "headroom_agent_collection_cycles_total"
    )


def test_ready_after_a_collection_until_three_intervals_pass() -> None:
    clock, store = FakeClock(), FlakyStore()
    agent = make_agent(clock, store)
    assert not agent.ready()
    agent.tick()
    assert agent.ready()
    clock.now += 3 * agent.settings.interval_seconds
    assert agent.ready()
    clock.now += 0.1
    assert not agent.ready(), "a stuck loop turns the agent unready"
