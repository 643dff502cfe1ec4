"""The node's latest figures in the shape of the experts' old psutil endpoint.

Every expert used to answer ``GET /system/resources`` from psutil; the agent
answers it for its node instead, so callers switch by changing the URL only.
The figures are the node's (FR-001..FR-005), exactly those of the agent's
latest collection, which is what its ResourceReport holds after a write::

    {
      "cpu_percent": 12.5,                      # FR-001, psutil.cpu_percent()
      "cpu_count_physical": 8,                  # FR-002, null where unknown
      "cpu_count_logical": 16,                  # FR-003
      "memory": {"total": 67108864000, "available": 40265318400,
                 "used": 26843545600, "percent": 40.0},          # FR-004, bytes
      "disks": {"/": {"total": 1000, "used": 500, "free": 500, "percent": 50.0},
                "/data": {"error": "no such file or directory"}},  # FR-005, HR-003
      "collected_at": "2025-01-01T12:00:00.123456Z",  # as the report's collectedAt
      "node": "worker-1"
    }

Pure: no I/O, so the shape is pinned by unit tests.
"""

from __future__ import annotations

from typing import TypedDict

from headroom.collection.figures import DiskFigures, ReportStatus, wire_time

__all__ = ["DiskShape", "MemoryShape", "SystemResources", "system_resources"]


class MemoryShape(TypedDict):
    """``psutil.virtual_memory()``'s fields the experts returned (bytes and %)."""

    total: int
    available: int
    used: int
    percent: float


class DiskShape(TypedDict, total=False):
    """``psutil.disk_usage(path)`` (bytes and %), or ``error`` when it failed."""

    total: int
    used: int
    free: int
    percent: float
    error: str


class SystemResources(TypedDict):
    """The whole ``GET /system/resources`` answer."""

    cpu_percent: float
    cpu_count_physical: int | None
    cpu_count_logical: int
    memory: MemoryShape
    disks: dict[str, DiskShape]
    collected_at: str
    node: str


def _disk_shape(disk: DiskFigures) -> DiskShape:
    if disk.error is not None:
        return {"error": disk.error}
    if (
        disk.totalBytes is None
        or disk.usedBytes is None
        or disk.freeBytes is None
        or disk.usedPercent is None
    ):
        return {"error": "not measured"}
    return {
        "total": disk.totalBytes,
        "used": disk.usedBytes,
        "free": disk.freeBytes,
        "percent": disk.usedPercent,
    }


def system_resources(status: ReportStatus, node: str) -> SystemResources:
    """Convert a collected status into the old endpoint's JSON object."""
    return {
        "cpu_percent": status.cpu.utilizationPercent,
        "cpu_count_physical": status.cpu.physicalCores,
        "cpu_count_logical": status.cpu.logicalCores,
        "memory": {
            "total": status.memory.totalBytes,
            "available": status.memory.availableBytes,
            "used": status.memory.usedBytes,
            "percent": status.memory.usedPercent,
        },
        "disks": {disk.path: _disk_shape(disk) for disk in status.disks},
        "collected_at": wire_time(status.collectedAt),
        "node": node,
    }
