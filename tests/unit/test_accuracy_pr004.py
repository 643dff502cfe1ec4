"""PR-004: the reader's figures agree with the operating system's own on this machine.

Independent parsers of ``/proc/stat`` and ``/proc/meminfo`` (not psutil) and
``os.statvfs`` are read right beside PsutilNodeReader; ``/proc/stat`` is read
immediately before and after each reader call so the reader's reading is
bracketed in time.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from headroom.collection.derive import cpu_utilization_percent
from headroom.collection.host import HostPaths
from headroom.collection.psutil_reader import PsutilNodeReader
from headroom.collection.sample import CpuTimes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux procfs")

TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat_busy_total() -> tuple[int, int]:
    """(busy, total) ticks from the ``cpu`` line; guest/guest_nice are inside user/nice."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


def percent_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


def proc_meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in bytes."""
    values = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            key, _, rest = line.partition(":")
            number, *unit = rest.split()
            values[key] = int(number) * (1024 if unit == ["kB"] else 1)
    return values


def burn_cpu(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(1000))


@pytest.fixture(scope="module")
def reader() -> PsutilNodeReader:
    return PsutilNodeReader(HostPaths(), ["/"])


@pytest.mark.requirement("PR-004", "FR-001")
def test_pr004_fr001_cpu_percent_within_one_point_of_proc_stat(reader: PsutilNodeReader) -> None:
    before_first = proc_stat_busy_total()
    first = reader.read()
    after_first = proc_stat_busy_total()
    burn_cpu(0.6)
    time.sleep(0.6)
    before_second = proc_stat_busy_total()
    second = reader.read()
    after_second = proc_stat_busy_total()

    got = cpu_utilization_percent(first.cpu_times, second.cpu_times)
    outer = percent_between(before_first, after_second)
    inner = percent_between(after_first, before_second)

    assert min(outer, inner) - 1.0 <= got <= max(outer, inner) + 1.0
    # the raw counters themselves are /proc/stat's, in seconds
    slack = 1e-6  # psutil divides each field by the tick rate before summing
    assert before_first[1] / TICKS - slack <= first.cpu_times.total
    assert first.cpu_times.total <= after_first[1] / TICKS + slack
    assert before_second[0] / TICKS - slack <= second.cpu_times.busy
    assert second.cpu_times.busy <= after_second[0] / TICKS + slack


@pytest.mark.requirement("PR-004")
def test_pr004_cpu_percent_is_exact_for_fixed_counters() -> None:
    """The same arithmetic on the same counters gives the same percentage."""
    busy_a, total_a = proc_stat_busy_total()
    burn_cpu(0.2)
    busy_b, total_b = proc_stat_busy_total()

    derived = cpu_utilization_percent(
        CpuTimes(busy_a / TICKS, total_a / TICKS), CpuTimes(busy_b / TICKS, total_b / TICKS)
    )

    assert derived == pytest.approx(percent_between((busy_a, total_a), (busy_b, total_b)), abs=0.06)


@pytest.mark.requirement("PR-004", "FR-004")
def test_pr004_fr004_memory_agrees_with_proc_meminfo(reader: PsutilNodeReader) -> None:
    before = proc_meminfo()
    memory = reader.read().memory
    after = proc_meminfo()

    assert memory.totalBytes == before["MemTotal"] == after["MemTotal"]
    low = min(before["MemAvailable"], after["MemAvailable"])
    high = max(before["MemAvailable"], after["MemAvailable"])
    assert low * 0.99 <= memory.availableBytes <= high * 1.01
    assert memory.usedPercent == pytest.approx(
        100 * (memory.totalBytes - memory.availableBytes) / memory.totalBytes, abs=0.05
    )


@pytest.mark.requirement("PR-004", "FR-005")
def test_pr004_fr005_disk_agrees_with_statvfs(reader: PsutilNodeReader) -> None:
    vfs = os.statvfs("/")
    (disk,) = reader.read().disks

    total = vfs.f_blocks * vfs.f_frsize
    used = (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize
    free = vfs.f_bavail * vfs.f_frsize
    assert disk.error is None
    assert disk.totalBytes == pytest.approx(total, rel=0.01)
    assert disk.usedBytes == pytest.approx(used, rel=0.01)
    assert disk.freeBytes == pytest.approx(free, rel=0.01)
    assert disk.usedPercent == pytest.approx(100 * used / (used + free), abs=1.0)


@pytest.mark.requirement("PR-004", "FR-003")
def test_pr004_fr003_logical_cores_agree_with_the_os(reader: PsutilNodeReader) -> None:
    assert reader.read().logical_cores == os.sysconf("SC_NPROCESSORS_ONLN")
