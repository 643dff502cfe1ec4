"""Shared by the benchmarks: what a process costs (from ``/proc``), percentiles, tables.

CPU time is read two ways: ``/proc/<pid>/stat`` (utime + stime, clock ticks
of 10 ms, counts exited threads) and the sum of ``/proc/<pid>/task/*/schedstat``
(nanoseconds on CPU, live threads only). The second resolves a fraction of a
millisecond per cycle, which the first cannot over a few hundred cycles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "ProcessCost",
    "ProcessSampler",
    "format_table",
    "percentile",
    "read_cpu_seconds",
    "read_rss_bytes",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def read_rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _stat_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _schedstat_cpu_seconds(pid: int) -> float:
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as schedstat:
                total += int(schedstat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def read_cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime + stime from ``stat``, on-CPU time from ``schedstat``) of ``pid``, seconds."""
    return _stat_cpu_seconds(pid), _schedstat_cpu_seconds(pid)


@dataclass
class ProcessCost:
    """What one process cost over a measured window."""

    rss_bytes: list[int] = field(default_factory=list)
    cpu_stat_seconds: float = 0.0
    cpu_sched_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def steady_rss_mb(self) -> float:
        """Median RSS over the window, in MiB (the steady figure)."""
        return percentile(self.rss_bytes, 50) / 2**20 if self.rss_bytes else math.nan

    @property
    def max_rss_mb(self) -> float:
        """Highest RSS seen, in MiB."""
        return max(self.rss_bytes) / 2**20 if self.rss_bytes else math.nan


class ProcessSampler:
    """Samples one process's RSS at each call; CPU between :meth:`start` and :meth:`stop`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cost = ProcessCost()
        self._cpu0: tuple[float, float] = (0.0, 0.0)
        self._wall0 = 0.0

    def start(self, wall: float) -> None:
        """Begin the measured window."""
        self._cpu0 = read_cpu_seconds(self.pid)
        self._wall0 = wall
        self.cost.rss_bytes.clear()

    def sample(self) -> None:
        """Record the RSS now."""
        rss = read_rss_bytes(self.pid)
        if rss:
            self.cost.rss_bytes.append(rss)

    def stop(self, wall: float) -> ProcessCost:
        """End the window; the CPU used in it."""
        stat, sched = read_cpu_seconds(self.pid)
        self.cost.cpu_stat_seconds = stat - self._cpu0[0]
        self.cost.cpu_sched_seconds = sched - self._cpu0[1]
        self.cost.wall_seconds = wall - self._wall0
        return self.cost


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by linear interpolation (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned table (first column left, the others right)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
