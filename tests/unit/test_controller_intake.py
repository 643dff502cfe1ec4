"""What the schema cannot refuse, the controller's intake does (CT-006): pure checks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from headroom.controller.intake import report_problem

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GOOD_UID = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
STATIC_POD_UID = "6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c"


def report(**status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "node-1"},
        "status": {
            "collectedAt": (NOW - timedelta(seconds=5)).isoformat(),
            "agentVersion": "0.1.0",
            "heartbeatSeconds": 60,
            "cpu": {"utilizationPercent": 20.0, "logicalCores": 4, "physicalCores": 2},
            "memory": {
                "totalBytes": 100,
                "availableBytes": 60,
                "usedBytes": 40,
                "usedPercent": 40.0,
            },
            "pods": [
                {"uid": GOOD_UID, "qosClass": "Burstable", "memoryBytes": 10, "cpuCores": 0.1},
                {"uid": STATIC_POD_UID, "qosClass": "Guaranteed", "memoryBytes": 5},
            ],
        },
    }
    body["status"].update(status)
    return body


@pytest.mark.requirement("CT-006")
def test_an_honest_report_passes_and_so_does_one_without_status() -> None:
    assert report_problem(report(), NOW) is None
    assert report_problem({"metadata": {"name": "n"}}, NOW) is None
    # Clock skew within two minutes is tolerated.
    assert (
        report_problem(report(collectedAt=(NOW + timedelta(seconds=90)).isoformat()), NOW) is None
    )


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"collectedAt": (NOW + timedelta(hours=3)).isoformat()}, "in the future"),
        ({"collectedAt": "2030-01-01T12:00:00"}, "time zone"),
        ({"heartbeatSeconds": 0}, "heartbeatSeconds"),
        ({"cpu": {"utilizationPercent": 20.0}}, "logicalCores"),
        ({"cpu": "lots"}, "cpu"),
        ({"collectedAt": "yesterday"}, "collectedAt"),
        (
            {
                "memory": {
                    "totalBytes": 100,
                    "availableBytes": 160,
                    "usedBytes": 40,
                    "usedPercent": 40.0,
                }
            },
            "exceed the total",
        ),
        (
            {"pods": [{"uid": "../../etc/passwd", "qosClass": "Burstable", "memoryBytes": 1}]},
            "is not a pod UID",
        ),
        (
            {"pods": [{"uid": GOOD_UID.upper(), "qosClass": "Burstable", "memoryBytes": 1}]},
            "is not a pod UID",
        ),
    ],
    ids=[
        "future",
        "naive-time",
        "zero-heartbeat",
        "missing-cores",
        "wrong-type",
        "bad-time",
        "available-above-total",
        "uid-path",
        "uid-upper-case",
    ],
)
def test_a_report_the_schema_let_through_is_refused_with_the_reason(
    change: dict[str, Any], words: str
) -> None:
    body = report(**copy.deepcopy(change))
    problem = report_problem(body, NOW)
    assert problem is not None and words in problem, problem
