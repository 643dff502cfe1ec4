"""derive_status: rates from two raw samples, with hand-computed expectations (FR-001..FR-005)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headroom.api import ResourceReportStatus
from headroom.collection.derive import (
    cpu_utilization_percent,
    derive_status,
    disk_max_used_percent,
    pod_cpu_cores,
    rounded_percent,
)
from headroom.collection.figures import (
    ContainerLimits,
    ContainerUsage,
    DiskFigures,
    MemoryFigures,
    ReportStatus,
)
from headroom.collection.sample import ContainerCounters, CpuTimes, PodCounters, RawSample

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MEMORY = MemoryFigures(totalBytes=1000, availableBytes=600, usedBytes=400, usedPercent=40.0)


def raw(
    monotonic: float,
    busy: float,
    total: float,
    pods: tuple[PodCounters, ...] = (),
    disks: tuple[DiskFigures, ...] = (),
    memory: MemoryFigures = MEMORY,
) -> RawSample:
    return RawSample(
        monotonic=monotonic,
        cpu_times=CpuTimes(busy=busy, total=total),
        logical_cores=8,
        physical_cores=4,
        memory=memory,
        disks=disks,
        pods=pods,
        agent_container=ContainerLimits(cgroupVersion="v2", cpuLimitCores=0.2),
    )


def pod(uid: str, cpu_seconds: float, memory: int = 1 << 20) -> PodCounters:
    return PodCounters(uid, "Burstable", cpu_seconds, memory)


def derive(previous: RawSample | None, current: RawSample) -> ReportStatus:
    return derive_status(
        previous, current, collected_at=NOW, agent_version="1.2.3", heartbeat_seconds=60
    )


@pytest.mark.requirement("FR-001", "PR-001")
def test_fr001_cpu_percent_between_two_samples() -> None:
    # 30 busy of 80 elapsed CPU seconds = 37.5 %
    status = derive(raw(100, busy=50, total=200), raw(110, busy=80, total=280))

    assert status.cpu.utilizationPercent == 37.5
    assert (status.cpu.logicalCores, status.cpu.physicalCores) == (8, 4)


def test_cpu_percent_is_rounded_to_one_decimal() -> None:
    assert cpu_utilization_percent(CpuTimes(0, 0), CpuTimes(1, 3)) == 33.3
    assert cpu_utilization_percent(CpuTimes(0, 0), CpuTimes(2, 3)) == 66.7


@pytest.mark.requirement("FR-001")
@pytest.mark.parametrize(
    ("previous", "current", "percent"),
    [
        (None, CpuTimes(80, 280), 0.0),  # first sample
        (CpuTimes(80, 280), CpuTimes(80, 280), 0.0),  # no time elapsed
        (CpuTimes(80, 280), CpuTimes(10, 20), 0.0),  # counters reset (reboot)
        (CpuTimes(80, 280), CpuTimes(70, 380), 0.0),  # busy went backwards: clamped
        (CpuTimes(0, 100), CpuTimes(150, 200), 100.0),  # busy beyond total: clamped
    ],
)
def test_cpu_percent_edge_cases(
    previous: CpuTimes | None, current: CpuTimes, percent: float
) -> None:
    assert cpu_utilization_percent(previous, current) == percent


def test_per_pod_cores_from_counter_delta_over_monotonic_delta() -> None:
    before = raw(100, 0, 0, pods=(pod("a", 10.0), pod("c", 20.0), pod("d", 5.0)))
    after = raw(
        110,
        0,
        0,
        pods=(pod("d", 5.0 + 10 / 3), pod("c", 5.0), pod("b", 1.0), pod("a", 12.5)),
    )

    cores = {p.uid: p.cpuCores for p in derive(before, after).pods}

    assert cores == {
        "a": 0.25,  # 2.5 s over 10 s
        "b": None,  # new pod: no previous counter
        "c": None,  # counter went backwards: restarted pod
        "d": 0.3333,  # 3.333 s over 10 s, 4 decimals
    }


def test_pods_are_sorted_by_uid_and_counted() -> None:
    status = derive(None, raw(1, 0, 0, pods=(pod("b", 1), pod("a", 1), pod("c", 1, memory=7))))

    assert [p.uid for p in status.pods] == ["a", "b", "c"]
    assert status.podCount == 3
    assert status.pods[2].memoryBytes == 7
    assert status.pods[2].qosClass == "Burstable"
    assert all(p.cpuCores is None for p in status.pods)  # first sample


def test_pod_cores_need_the_clock_to_advance() -> None:
    assert pod_cpu_cores(pod("a", 1), pod("a", 2), 0.0) is None
    assert pod_cpu_cores(pod("a", 1), pod("a", 2), -5.0) is None
    assert pod_cpu_cores(pod("a", 1), pod("a", 1), 10.0) == 0.0


@pytest.mark.requirement("FR-004", "FR-005")
def test_fr004_fr005_memory_and_disks_pass_through() -> None:
    disks = (
        DiskFigures(path="/", totalBytes=100, usedBytes=40, freeBytes=60, usedPercent=40.0),
        DiskFigures(path="/data", error="No such file or directory"),
        DiskFigures(path="/var", totalBytes=100, usedBytes=72, freeBytes=28, usedPercent=72.46),
    )
    status = derive(None, raw(1, 0, 0, disks=disks))

    assert status.memory == MEMORY
    assert [d.path for d in status.disks] == ["/", "/data", "/var"]
    assert status.disks[1].error == "No such file or directory"
    assert status.disks[2].usedPercent == 72.5
    assert status.diskMaxUsedPercent == 72.5


def test_memory_percent_is_rounded() -> None:
    memory = MemoryFigures(totalBytes=3, availableBytes=2, usedBytes=1, usedPercent=100 / 3)

    assert derive(None, raw(1, 0, 0, memory=memory)).memory.usedPercent == 33.3


def test_disk_max_is_none_when_no_disk_was_measured() -> None:
    assert disk_max_used_percent([DiskFigures(path="/x", error="gone")]) is None
    assert disk_max_used_percent([]) is None


@pytest.mark.requirement("FR-006")
def test_metadata_and_agent_container() -> None:
    status = derive(None, raw(1, 0, 0))

    assert status.collectedAt == NOW
    assert status.agentVersion == "1.2.3"
    assert status.heartbeatSeconds == 60
    assert status.agentContainer == ContainerLimits(cgroupVersion="v2", cpuLimitCores=0.2)
    assert status.conditions == []


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(-3.0, 0.0), (0.04, 0.0), (99.96, 100.0), (250.0, 100.0), (float("nan"), 0.0)],
)
def test_rounded_percent(value: float, rounded: float) -> None:
    assert rounded_percent(value) == rounded


counters = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
clocks = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
samples = st.lists(
    st.tuples(clocks, counters, counters, st.dictionaries(st.sampled_from("abcd"), counters)),
    min_size=1,
    max_size=8,
)


@pytest.mark.requirement("FR-001")
@given(samples)
def test_property_percent_in_range_and_cores_never_negative(
    sequence: list[tuple[float, float, float, dict[str, float]]],
) -> None:
    """Arbitrary counter sequences (resets, stalls, jumps) never give bad figures."""
    previous: RawSample | None = None
    for clock, busy, total, pod_counters in sequence:
        current = raw(
            clock, busy, total, pods=tuple(pod(uid, c) for uid, c in pod_counters.items())
        )
        status = derive(previous, current)
        ResourceReportStatus.model_validate(status.to_wire())  # the API's 0..100, >= 0 too
        assert 0.0 <= status.cpu.utilizationPercent <= 100.0
        for usage in status.pods:
            assert usage.cpuCores is None or usage.cpuCores >= 0.0
        previous = current


@pytest.mark.requirement("FR-006")
def test_each_containers_cpu_is_its_counter_delta_between_cycles() -> None:
    uid = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
    before = PodCounters(
        uid,
        "Burstable",
        100.0,
        300 << 20,
        (
            ContainerCounters("aaaaaaaaaaaa", 80.0, 200 << 20),
            ContainerCounters("bbbbbbbbbbbb", 20.0, 99 << 20),
        ),
    )
    # 10 s later: app +6 s of CPU (0.6 cores), sidecar +0.5 s (0.05), a new container appears
    after = PodCounters(
        uid,
        "Burstable",
        106.6,
        310 << 20,
        (
            ContainerCounters("aaaaaaaaaaaa", 86.0, 210 << 20),
            ContainerCounters("bbbbbbbbbbbb", 20.5, 98 << 20),
            ContainerCounters("cccccccccccc", 0.1, 1 << 20),
        ),
    )

    status = derive(raw(100, 0, 0, (before,)), raw(110, 0, 0, (after,)))

    (usage,) = status.pods
    assert usage.cpuCores == 0.66
    assert usage.containers == [
        ContainerUsage(id="aaaaaaaaaaaa", cpuCores=0.6, memoryBytes=210 << 20),
        ContainerUsage(id="bbbbbbbbbbbb", cpuCores=0.05, memoryBytes=98 << 20),
        ContainerUsage(id="cccccccccccc", cpuCores=None, memoryBytes=1 << 20),
    ]


def test_a_pod_without_container_cgroups_lists_no_containers() -> None:
    status = derive(None, raw(110, 0, 0, (pod("0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e", 1.0),)))
    assert status.pods[0].containers is None
    assert "containers" not in status.pods[0].to_wire()
