"""CT: properties of the recommendation maths, checked on generated inputs (hypothesis).

Recommendations always lie within their bounds; more usage never lowers a
request; a fit never exceeds any node's free room and is the most that fits;
a persisted history gives the same figures; bad annotations never raise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.api.capacityrecommendation import CurrentSizing, SizingPolicy, UsageHistory
from headroom.recommend.fit import NodeCapacity, compute_fit
from headroom.recommend.history import ExpertHistory
from headroom.recommend.policy import ANNOTATION_KEYS, SizingDefaults, policy_from_annotations
from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    parse_cpu_cores,
    parse_memory_bytes,
    round_up_cpu_cores,
    round_up_memory_bytes,
)
from headroom.recommend.sizing import recommend

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GI = 2**30
DAY = 86_400
RUNS = settings(max_examples=150, deadline=None)

Sample = tuple[float | None, int, int]  # cpu cores, memory bytes, seconds after T0

cpu_values = st.floats(min_value=0, max_value=100, allow_nan=False)
memory_values = st.integers(min_value=0, max_value=512 * GI)
offsets = st.integers(min_value=0, max_value=30 * DAY)
samples = st.lists(
    st.tuples(st.none() | cpu_values, memory_values, offsets), min_size=0, max_size=40
)


@st.composite
def sizing_defaults(draw: st.DrawFn) -> SizingDefaults:
    min_cpu = draw(st.floats(min_value=0.001, max_value=8))
    min_memory = draw(st.integers(min_value=1, max_value=8 * GI))
    return SizingDefaults(
        cpu_percentile=draw(st.floats(min_value=1, max_value=100)),
        min_cpu_cores=min_cpu,
        max_cpu_cores=draw(st.floats(min_value=min_cpu, max_value=128)),
        min_memory_bytes=min_memory,
        max_memory_bytes=draw(st.integers(min_value=min_memory, max_value=1024 * GI)),
        half_life_seconds=draw(st.floats(min_value=60, max_value=30 * DAY)),
        window_seconds=draw(st.floats(min_value=60, max_value=60 * DAY)),
    )


@st.composite
def policies(draw: st.DrawFn) -> SizingPolicy:
    low = draw(st.integers(min_value=1, max_value=500))
    return SizingPolicy(
        targetUtilizationPercent=draw(st.floats(min_value=0.5, max_value=100)),
        cpuMarginPercent=draw(st.floats(min_value=0, max_value=1000)),
        memoryMarginPercent=draw(st.floats(min_value=0, max_value=1000)),
        minReplicas=low,
        maxReplicas=draw(st.integers(min_value=low, max_value=1000)),
    )


currents = st.builds(
    CurrentSizing,
    replicas=st.integers(min_value=0, max_value=2000),
    cpuRequestCores=st.none() | st.floats(min_value=0, max_value=200),
    memoryRequestBytes=st.none() | st.integers(min_value=0, max_value=2048 * GI),
)
totals = st.none() | st.floats(min_value=0, max_value=10_000)


def history_of(given_samples: list[Sample], half_life: float) -> ExpertHistory:
    history = ExpertHistory.new(half_life, T0)
    for cpu, memory, offset in given_samples:
        history.add_observation(cpu, memory, T0 + timedelta(seconds=offset))
    return history


@pytest.mark.requirement("CT-001")
@RUNS
@given(samples, sizing_defaults(), policies(), currents, totals, offsets)
def test_recommendations_stay_within_bounds(
    given_samples: list[Sample],
    defaults: SizingDefaults,
    policy: SizingPolicy,
    current: CurrentSizing,
    total: float | None,
    now_offset: int,
) -> None:
    history = history_of(given_samples, defaults.half_life_seconds)
    now = T0 + timedelta(seconds=now_offset)
    recommended, evidence = recommend(history, policy, current, total, now, defaults=defaults)
    assert defaults.min_cpu_cores <= recommended.cpuRequestCores <= defaults.max_cpu_cores
    assert defaults.min_memory_bytes <= recommended.memoryRequestBytes <= defaults.max_memory_bytes
    assert policy.minReplicas <= recommended.replicas <= policy.maxReplicas
    # the quantity strings say at least as much as the numbers (they round up, never down)
    assert parse_cpu_cores(recommended.cpuRequest) >= recommended.cpuRequestCores - 1e-9
    assert parse_memory_bytes(recommended.memoryRequest) == recommended.memoryRequestBytes
    assert evidence.samples == len(given_samples)


@RUNS
@given(
    st.lists(
        st.tuples(
            st.none() | cpu_values,
            memory_values,
            offsets,
            st.floats(min_value=0, max_value=50),
            st.integers(min_value=0, max_value=64 * GI),
        ),
        min_size=1,
        max_size=40,
    ),
    sizing_defaults(),
    policies(),
    currents,
    offsets,
)
def test_more_usage_never_lowers_a_request(
    rows: list[tuple[float | None, int, int, float, int]],
    defaults: SizingDefaults,
    policy: SizingPolicy,
    current: CurrentSizing,
    now_offset: int,
) -> None:
    less = [(cpu, memory, offset) for cpu, memory, offset, _, _ in rows]
    more = [
        (None if cpu is None else cpu + extra_cpu, memory + extra_memory, offset)
        for cpu, memory, offset, extra_cpu, extra_memory in rows
    ]
    now = T0 + timedelta(seconds=now_offset)
    low, _ = recommend(
        history_of(less, defaults.half_life_seconds), policy, current, None, now, defaults=defaults
    )
    high, _ = recommend(
        history_of(more, defaults.half_life_seconds), policy, current, None, now, defaults=defaults
    )
    assert high.cpuRequestCores >= low.cpuRequestCores
    assert high.memoryRequestBytes >= low.memoryRequestBytes


@RUNS
@given(samples, policies(), currents, totals, totals)
def test_more_total_usage_never_lowers_replicas(
    given_samples: list[Sample],
    policy: SizingPolicy,
    current: CurrentSizing,
    total: float | None,
    extra: float | None,
) -> None:
    history = history_of(given_samples, DAY)
    now = T0 + timedelta(days=31)
    low, _ = recommend(history, policy, current, total, now)
    high, _ = recommend(
        history, policy, current, None if total is None else total + (extra or 0), now
    )
    assert low.replicas <= high.replicas


cores = st.floats(min_value=0, max_value=128)
memory_sizes = st.integers(min_value=0, max_value=1024 * GI)


@st.composite
def nodes(draw: st.DrawFn) -> list[NodeCapacity]:
    count = draw(st.integers(min_value=0, max_value=30))
    return [
        NodeCapacity(
            name=f"node-{index}",
            allocatable_cpu_cores=draw(cores),
            allocatable_memory_bytes=draw(memory_sizes),
            requested_cpu_cores=draw(cores),
            requested_memory_bytes=draw(memory_sizes),
            report_free_cpu_cores=draw(st.none() | cores),
            report_available_memory_bytes=draw(st.none() | memory_sizes),
            exclusion=draw(st.none() | st.none() | st.just("stale report")),
        )
        for index in range(count)
    ]


def free_of(node: NodeCapacity) -> tuple[float, int]:
    """The free room as the module docstring defines it, in plain floats and ints."""
    cpu = node.allocatable_cpu_cores - node.requested_cpu_cores
    memory = node.allocatable_memory_bytes - node.requested_memory_bytes
    if node.report_free_cpu_cores is not None:
        cpu = min(cpu, node.report_free_cpu_cores)
    if node.report_available_memory_bytes is not None:
        memory = min(memory, node.report_available_memory_bytes)
    return max(0.0, cpu), max(0, memory)


@pytest.mark.requirement("CT-001")
@RUNS
@given(
    nodes(),
    st.floats(min_value=0.001, max_value=64),
    st.integers(min_value=1, max_value=256 * GI),
)
def test_a_fit_never_exceeds_any_nodes_free_room(
    given_nodes: list[NodeCapacity], cpu_request: float, memory_request: int
) -> None:
    fit = compute_fit(given_nodes, cpu_request, memory_request, max_listed=len(given_nodes))
    by_name = {node.name: node for node in given_nodes}
    listed = {entry.node: entry.replicas for entry in fit.nodes}
    for name, node in by_name.items():
        replicas = listed.get(name, 0)
        if node.exclusion is not None:
            assert name not in listed
            continue
        free_cpu, free_memory = free_of(node)
        assert replicas * cpu_request <= free_cpu + 1e-6 * (replicas + 1)  # float noise only
        assert replicas * memory_request <= free_memory
    assert fit.additionalReplicas == sum(listed.values())
    assert fit.fittingNodeCount == len(listed)
    assert all(entry.replicas >= 1 for entry in fit.nodes)


millicores = st.integers(min_value=0, max_value=128_000)


@RUNS
@given(
    st.lists(
        st.tuples(millicores, millicores, st.none() | millicores, memory_sizes, memory_sizes),
        max_size=30,
    ),
    st.integers(min_value=1, max_value=64_000),
    st.integers(min_value=1, max_value=64 * 2**20),
)
def test_a_fit_is_the_most_that_fits(
    rows: list[tuple[int, int, int | None, int, int]], cpu_m: int, memory_kib: int
) -> None:
    """With requests in whole millicores and KiB, no replica is lost to rounding."""
    given_nodes = [
        NodeCapacity(
            name=f"node-{index}",
            allocatable_cpu_cores=allocatable / 1000,
            allocatable_memory_bytes=memory,
            requested_cpu_cores=requested / 1000,
            requested_memory_bytes=requested_memory,
            report_free_cpu_cores=None if report is None else report / 1000,
        )
        for index, (allocatable, requested, report, memory, requested_memory) in enumerate(rows)
    ]
    memory_request = memory_kib * 1024
    fit = compute_fit(given_nodes, cpu_m / 1000, memory_request, max_listed=len(rows))
    listed = {entry.node: entry.replicas for entry in fit.nodes}
    for index, (allocatable, requested, report, memory, requested_memory) in enumerate(rows):
        free_m = allocatable - requested if report is None else min(allocatable - requested, report)
        free_bytes = memory - requested_memory
        most = max(0, min(free_m // cpu_m, free_bytes // memory_request))  # exact integers
        assert listed.get(f"node-{index}", 0) == most


@RUNS
@given(samples, st.floats(min_value=60, max_value=30 * DAY), offsets, st.booleans())
def test_a_persisted_history_gives_the_same_figures(
    given_samples: list[Sample], half_life: float, now_offset: int, pruned: bool
) -> None:
    history = history_of(given_samples, half_life)
    now = T0 + timedelta(seconds=now_offset)
    if pruned:
        history.prune(now, 7 * DAY)
    wire = json.loads(json.dumps(history.to_model().to_wire()))
    again = ExpertHistory.from_model(UsageHistory.model_validate(wire))
    percents = (0, 10, 50, 90, 95, 99, 100)
    for original, restored in ((history.cpu, again.cpu), (history.memory, again.memory)):
        assert [restored.percentile(p) for p in percents] == [
            original.percentile(p) for p in percents
        ]
        for window in (3600, 7 * DAY, 30 * DAY):
            assert restored.peak(now, window) == original.peak(now, window)


@RUNS
@given(st.integers(min_value=0, max_value=10**9))
def test_cpu_quantities_round_trip(millicores: int) -> None:
    assert parse_cpu_cores(format_cpu(millicores / 1000)) == millicores / 1000


@RUNS
@given(st.integers(min_value=0, max_value=2**62))
def test_memory_quantities_round_trip(memory: int) -> None:
    assert parse_memory_bytes(format_memory(memory)) == memory


@RUNS
@given(st.floats(min_value=0, max_value=1000))
def test_cpu_rounding_goes_up_to_a_step_and_stays(cores: float) -> None:
    rounded = round_up_cpu_cores(cores)
    assert rounded >= cores - 1e-9
    assert round_up_cpu_cores(rounded) == rounded
    step = 10 if rounded <= 1 else 50
    assert round(rounded * 1000) % step == 0


@RUNS
@given(st.integers(min_value=0, max_value=2**50))
def test_memory_rounding_goes_up_to_a_step_and_stays(memory: int) -> None:
    rounded = round_up_memory_bytes(memory)
    assert rounded >= memory
    assert round_up_memory_bytes(rounded) == rounded
    assert rounded % (16 * 2**20 if rounded <= GI else 64 * 2**20) == 0


@RUNS
@given(
    st.dictionaries(
        st.sampled_from([*ANNOTATION_KEYS, "headroom.dev/max-replica", "other"]), st.text()
    )
)
def test_annotations_never_raise_and_give_a_consistent_policy(annotations: dict[str, str]) -> None:
    policy, problems = policy_from_annotations(SizingDefaults(), annotations)
    assert 1 <= policy.minReplicas <= policy.maxReplicas
    assert 0 < policy.targetUtilizationPercent <= 100
    assert all(isinstance(problem, str) for problem in problems)
