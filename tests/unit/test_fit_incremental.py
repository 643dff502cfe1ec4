"""A fit updated from the previous cycle equals the fit solved afresh (CT, speed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.recommend.fit import FreeCapacity

NAMES = tuple(f"node-{i:03d}" for i in range(40))
room = st.lists(st.integers(min_value=0, max_value=5000), min_size=40, max_size=40)
requests = st.lists(
    st.tuples(st.integers(min_value=1, max_value=3000), st.integers(min_value=1, max_value=3000)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    room,
    room,
    st.lists(st.integers(min_value=0, max_value=39), max_size=10),
    st.lists(st.integers(min_value=-300, max_value=300), min_size=10, max_size=10),
    requests,
    st.integers(min_value=0, max_value=12),
)
def test_updated_fits_equal_fresh_ones(
    cpu: list[int],
    memory: list[int],
    moved: list[int],
    deltas: list[int],
    wanted: list[tuple[int, int]],
    max_listed: int,
) -> None:
    previous = FreeCapacity(NAMES, tuple(cpu), tuple(memory), ())
    for cpu_m, memory_k in wanted:  # the previous cycle answered these
        previous.fit(cpu_m / 1000, memory_k * 1024, max_listed=max_listed)
    now_cpu, now_memory = list(cpu), list(memory)
    for index, delta in zip(moved, deltas, strict=False):
        now_cpu[index] = max(0, now_cpu[index] + delta)
        now_memory[index] = max(0, now_memory[index] - delta)
    updated = FreeCapacity(NAMES, tuple(now_cpu), tuple(now_memory), (), previous=previous)
    fresh = FreeCapacity(NAMES, tuple(now_cpu), tuple(now_memory), ())
    for cpu_m, memory_k in wanted:
        assert updated.fit(cpu_m / 1000, memory_k * 1024, max_listed=max_listed) == fresh.fit(
            cpu_m / 1000, memory_k * 1024, max_listed=max_listed
        )


def test_other_nodes_mean_solving_afresh() -> None:
    previous = FreeCapacity(("a", "b"), (1000, 1000), (10, 10), ())
    previous.fit(0.5, 1024)
    moved = FreeCapacity(("a", "c"), (1000, 3000), (10, 30), (), previous=previous)
    assert moved.fit(0.5, 1024).additionalReplicas == 2 + 6
