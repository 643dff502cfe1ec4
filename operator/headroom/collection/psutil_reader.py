"""The node reader used in production: psutil over the node's procfs, plus cgroup files.

FR-001..FR-005 come from psutil pointed at the node's procfs
(``psutil.PROCFS_PATH``, HR-002) and ``statvfs`` under the node's rootfs, so
the figures are the node's and agree with the OS's own (PR-004). Per-pod usage
comes from :mod:`headroom.collection.cgroups`, the agent's limits from
:mod:`headroom.collection.cgroup_limits`. A reading only takes counters, never
sleeps, and costs well under a millisecond of CPU (PR-001, PR-003).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psutil

from headroom.collection.cgroup_limits import OwnLimitsReader
from headroom.collection.cgroups import PodCgroupReader
from headroom.collection.figures import DiskFigures, MemoryFigures
from headroom.collection.host import HostPaths
from headroom.collection.sample import CpuTimes, RawSample

if TYPE_CHECKING:
    from headroom.collection.gpu.reader import GpuReader

__all__ = ["PsutilNodeReader", "cpu_times_from_psutil", "read_disk_figures"]

_NOT_COUNTED = ("guest", "guest_nice")
"""Linux already counts guest time inside user and nice."""
_IDLE = ("idle", "iowait")


@contextmanager
def _psutil_procfs(procfs: str) -> Iterator[None]:
    """Point psutil at ``procfs`` for a block; psutil keeps it process-wide."""
    previous = psutil.PROCFS_PATH
    psutil.PROCFS_PATH = procfs
    try:
        yield
    finally:
        psutil.PROCFS_PATH = previous


def cpu_times_from_psutil() -> CpuTimes:
    """FR-001 counters: busy and total CPU seconds of all logical CPUs.

    total sums every field but guest time (already inside user/nice); busy is
    total minus idle and iowait — the split ``top`` and psutil's
    ``cpu_percent`` use.
    """
    times = psutil.cpu_times()
    total = 0.0
    idle = 0.0
    for name, value in zip(times._fields, times, strict=True):
        if name in _NOT_COUNTED:
            continue
        total += value
        if name in _IDLE:
            idle += value
    return CpuTimes(busy=total - idle, total=total)


def read_disk_figures(path: str, where: str) -> DiskFigures:
    """FR-005 for the configured ``path``, seen at ``where``; HR-003: errors, not raises.

    ``where`` is resolved inside the agent's container: an absolute symlink on
    the node points outside the rootfs mount, so configure the real path.
    """
    try:
        mode = os.stat(where).st_mode
    except OSError as error:
        return DiskFigures(path=path, error=error.strerror or type(error).__name__)
    if not stat.S_ISDIR(mode):
        return DiskFigures(path=path, error="not a directory")
    try:
        usage = psutil.disk_usage(where)
    except OSError as error:
        return DiskFigures(path=path, error=error.strerror or type(error).__name__)
    return DiskFigures(
        path=path,
        totalBytes=usage.total,
        usedBytes=usage.used,
        freeBytes=usage.free,
        usedPercent=usage.percent,
    )


class PsutilNodeReader:
    """Reads the node through psutil and cgroup files (implements ``NodeReader``)."""

    def __init__(
        self,
        paths: HostPaths | None = None,
        disk_paths: Sequence[str] = ("/",),
        *,
        clock: Callable[[], float] = time.monotonic,
        gpu: GpuReader | None = None,
    ) -> None:
        self._paths = paths or HostPaths()
        self._gpu = gpu
        self._disks = tuple((path, self._paths.on_node(path)) for path in disk_paths)
        self._clock = clock
        self._pods = PodCgroupReader(self._paths.cgroupfs)
        self._own_limits = OwnLimitsReader(self._paths.own_procfs, self._paths.own_cgroupfs)
        with _psutil_procfs(self._paths.procfs):
            self._logical_cores = psutil.cpu_count(logical=True) or os.cpu_count() or 1
            self._physical_cores = psutil.cpu_count(logical=False)

    @property
    def paths(self) -> HostPaths:
        """The host mount points this reader looks through."""
        return self._paths

    def read(self) -> RawSample:
        """One reading of the node now; a bad disk path is an error entry (HR-003)."""
        with _psutil_procfs(self._paths.procfs):
            cpu_times = cpu_times_from_psutil()
            memory = psutil.virtual_memory()
        monotonic = self._clock()
        pods, warnings = self._pods.read()
        gpus = self._gpu.read() if self._gpu is not None else None
        if gpus is not None and gpus.warnings:
            warnings = (*warnings, *gpus.warnings)
        return RawSample(
            monotonic=monotonic,
            cpu_times=cpu_times,
            logical_cores=self._logical_cores,
            physical_cores=self._physical_cores,
            memory=MemoryFigures(
                totalBytes=memory.total,
                availableBytes=memory.available,
                usedBytes=memory.used,
                usedPercent=memory.percent,
            ),
            disks=tuple(read_disk_figures(path, where) for path, where in self._disks),
            pods=pods,
            agent_container=self._own_limits.read(),
            warnings=warnings,
            gpus=gpus,
        )
