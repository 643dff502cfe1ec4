"""Hand-built RawSamples for agent tests (figures chosen to make the maths obvious)."""

from __future__ import annotations

from headroom.collection.figures import DiskFigures, MemoryFigures
from headroom.collection.sample import CpuTimes, PodCounters, RawSample


def sample(
    t: float,
    *,
    busy: float,
    total: float,
    mem_percent: float = 40.0,
    disk_percent: float = 50.0,
    pods: tuple[str, ...] = ("pod-a",),
) -> RawSample:
    """A node with 4 cores and 16 GiB; ``busy``/``total`` are cumulative CPU seconds."""
    total_bytes = 16 * 2**30
    used = int(total_bytes * mem_percent / 100)
    return RawSample(
        monotonic=t,
        cpu_times=CpuTimes(busy=busy, total=total),
        logical_cores=4,
        physical_cores=2,
        memory=MemoryFigures(
            totalBytes=total_bytes,
            availableBytes=total_bytes - used,
            usedBytes=used,
            usedPercent=mem_percent,
        ),
        disks=(
            DiskFigures(
                path="/",
                totalBytes=1000,
                usedBytes=int(10 * disk_percent),
                freeBytes=1000 - int(10 * disk_percent),
                usedPercent=disk_percent,
            ),
        ),
        pods=tuple(
            PodCounters(
                uid=uid,
                qos_class="Burstable",
                cpu_usage_seconds=t / 2,
                memory_working_set_bytes=2**20,
            )
            for uid in pods
        ),
    )
