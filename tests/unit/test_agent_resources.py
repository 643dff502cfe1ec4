"""``GET /system/resources`` keeps the experts' old psutil shape (FR-001..FR-005, HR-003)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from headroom.agent.resources import system_resources
from headroom.api import ResourceReportStatus
from headroom.collection.figures import CpuFigures, DiskFigures, MemoryFigures, ReportStatus


def known_status() -> ReportStatus:
    return ReportStatus(
        collectedAt=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        agentVersion="0.1.0",
        heartbeatSeconds=60,
        cpu=CpuFigures(utilizationPercent=12.5, physicalCores=8, logicalCores=16),
        memory=MemoryFigures(
            totalBytes=64_000, availableBytes=40_000, usedBytes=24_000, usedPercent=37.5
        ),
        disks=[
            DiskFigures(path="/", totalBytes=1000, usedBytes=500, freeBytes=500, usedPercent=50.0),
            DiskFigures(path="/data", error="[Errno 2] No such file or directory: '/data'"),
        ],
    )


@pytest.mark.requirement("FR-001", "FR-002", "FR-003", "FR-004", "FR-005")
def test_shape_is_the_old_psutil_endpoint() -> None:
    assert system_resources(known_status(), "worker-1") == {
        "cpu_percent": 12.5,
        "cpu_count_physical": 8,
        "cpu_count_logical": 16,
        "memory": {"total": 64_000, "available": 40_000, "used": 24_000, "percent": 37.5},
        "disks": {
            "/": {"total": 1000, "used": 500, "free": 500, "percent": 50.0},
            "/data": {"error": "[Errno 2] No such file or directory: '/data'"},
        },
        "collected_at": "2025-01-02T03:04:05.678901Z",
        "node": "worker-1",
    }


def test_collected_at_is_spelled_as_in_the_resource_report() -> None:
    status = known_status()
    report = ResourceReportStatus.model_validate(dataclasses.asdict(status))
    assert system_resources(status, "n")["collected_at"] == report.to_wire()["collectedAt"]


@pytest.mark.requirement("FR-002")
def test_unknown_physical_cores_is_null_and_the_whole_answer_is_json() -> None:
    status = known_status()
    status.cpu = CpuFigures(utilizationPercent=0.0, logicalCores=1)
    answer = json.loads(json.dumps(system_resources(status, "n")))
    assert answer["cpu_count_physical"] is None


@pytest.mark.requirement("HR-003")
def test_a_disk_without_figures_or_error_is_reported_as_an_error() -> None:
    status = known_status()
    status.disks = [DiskFigures(path="/odd")]
    assert system_resources(status, "n")["disks"] == {"/odd": {"error": "not measured"}}
