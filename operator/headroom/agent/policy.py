"""When to write (AG: one write per change beyond a threshold or per heartbeat) and
how long to wait after a failure (exponential backoff with jitter).

Pure: the caller passes the time, so tests drive both with a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from headroom.collection.figures import ReportStatus

__all__ = ["Backoff", "WritePolicy", "moved_beyond"]


def _percents(status: ReportStatus) -> dict[str, float]:
    figures = {"cpu": status.cpu.utilizationPercent, "memory": status.memory.usedPercent}
    for disk in status.disks:
        if disk.usedPercent is not None:
            figures[f"disk:{disk.path}"] = disk.usedPercent
    for gpu in status.gpus or ():
        if gpu.memoryUsedPercent is not None:
            figures[f"gpu:{gpu.index}"] = gpu.memoryUsedPercent
    return figures


def moved_beyond(old: ReportStatus, new: ReportStatus, threshold: float) -> str | None:
    """Why ``new`` is worth writing before the heartbeat, or ``None``.

    A node percentage (CPU, memory, each disk, each GPU's memory) moved by at
    least ``threshold`` points, a disk or GPU error appeared or cleared, the set
    of pods changed, or the core count changed. Per-pod figures and GPU
    utilisation alone wait for the heartbeat: they move every cycle and would
    otherwise turn every cycle into a write.
    """
    before, after = _percents(old), _percents(new)
    for key in sorted(before.keys() | after.keys()):
        if key not in before or key not in after:
            return f"{key} appeared or disappeared"
        if abs(after[key] - before[key]) >= threshold:
            return f"{key} moved {before[key]:.1f}% -> {after[key]:.1f}%"
    if {d.path: d.error for d in old.disks} != {d.path: d.error for d in new.disks}:
        return "disk error changed"
    if {g.index: g.error for g in old.gpus or ()} != {g.index: g.error for g in new.gpus or ()}:
        return "GPU error changed"
    if {p.uid for p in old.pods} != {p.uid for p in new.pods}:
        return "pods changed"
    if old.cpu.logicalCores != new.cpu.logicalCores:
        return "cores changed"
    return None


@dataclass
class WritePolicy:
    """Decide whether a freshly collected status should be written now."""

    heartbeat_seconds: float
    min_interval_seconds: float
    threshold_percent: float
    last_written: ReportStatus | None = None
    last_write_at: float | None = None

    def reason_to_write(self, now: float, status: ReportStatus) -> str | None:
        """The reason to write now, or ``None`` to hold back."""
        if self.last_written is None or self.last_write_at is None:
            return "first report"
        elapsed = now - self.last_write_at
        if elapsed < self.min_interval_seconds:
            return None
        if elapsed >= self.heartbeat_seconds:
            return "heartbeat"
        return moved_beyond(self.last_written, status, self.threshold_percent)

    def written(self, now: float, status: ReportStatus) -> None:
        """Record a successful write."""
        self.last_written = status
        self.last_write_at = now


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``min(max, initial * 2**n)`` scaled by U(0.5, 1]."""

    initial_seconds: float
    max_seconds: float
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = min(self.max_seconds, self.initial_seconds * (2.0 ** min(self.failures, 30)))
        self.failures += 1
        jitter: float = self.rng.random()
        return ceiling * (0.5 + 0.5 * jitter)

    def reset(self) -> None:
        """A success: start again from the initial delay."""
        self.failures = 0
