"""Bad input (CT-006): malformed ResourceReports against the real API server and the
controller, bad controller settings against the real process, 409 storms."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom.agent.reports import report_path
from headroom.controller.intake import report_problem
from headroom.controller.writer import recommendation_path
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.cluster_sim import ControllerProcess, MiB, SimulatedAgent, create_expert
from tests.integration.kube_helpers import create_node, get_report, unique

GOOD_UID = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"

#: Where a malformed report can go wrong, as paths into its status.
FIELDS = [
    ("collectedAt",),
    ("agentVersion",),
    ("heartbeatSeconds",),
    ("cpu", "utilizationPercent"),
    ("cpu", "logicalCores"),
    ("cpu", "physicalCores"),
    ("memory", "totalBytes"),
    ("memory", "availableBytes"),
    ("memory", "usedPercent"),
    ("disks", 0, "path"),
    ("disks", 0, "usedPercent"),
    ("pods", 0, "uid"),
    ("pods", 0, "qosClass"),
    ("pods", 0, "cpuCores"),
    ("pods", 0, "memoryBytes"),
    ("podCount",),
]
BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just("x" * 5000),
    st.just((datetime.now(UTC) + timedelta(days=400)).isoformat()),
    st.just("not-a-uid"),
)


def valid_status() -> dict[str, Any]:
    return {
        "collectedAt": datetime.now(UTC).isoformat(),
        "agentVersion": "0.1.0",
        "heartbeatSeconds": 60,
        "cpu": {"utilizationPercent": 20.0, "logicalCores": 4, "physicalCores": 2},
        "memory": {"totalBytes": 100, "availableBytes": 60, "usedBytes": 40, "usedPercent": 40.0},
        "disks": [
            {"path": "/", "totalBytes": 10, "usedBytes": 5, "freeBytes": 5, "usedPercent": 50.0}
        ],
        "pods": [{"uid": GOOD_UID, "qosClass": "Burstable", "cpuCores": 0.1, "memoryBytes": 1}],
        "podCount": 1,
    }


@st.composite
def malformed_statuses(draw: st.DrawFn) -> dict[str, Any]:
    """A valid status with one to three fields broken: replaced, removed, or unknown ones added."""
    status = valid_status()
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["replace", "remove", "unknown"]))
        path = draw(st.sampled_from(FIELDS))
        target: Any = status
        for key in path[:-1]:
            target = target[key] if isinstance(target, dict | list) else None
        if not isinstance(target, dict):
            continue
        if how == "replace":
            target[path[-1]] = draw(BAD_VALUES)
        elif how == "remove":
            target.pop(path[-1], None)
        else:
            target[draw(st.text(min_size=1, max_size=8))] = draw(BAD_VALUES)
    return status


@pytest.mark.requirement("CT-006", "FR-001", "FR-004")
def test_malformed_reports_are_refused_by_the_schema_or_by_the_controllers_intake(
    control_plane: ControlPlane,
) -> None:
    """Each one: the API server refuses it (4xx), or what it stores is a valid report
    (unknown fields pruned), or the controller's intake refuses what the server kept."""
    cp, node = control_plane, unique("node")
    create_node(cp, node)
    SimulatedAgent(cp, node).report()  # the report exists, with a good status
    outcomes: dict[str, int] = {"refused by the API server": 0, "pruned to valid": 0}
    outcomes["refused by the controller"] = 0

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(status=malformed_statuses())
    def check(status: dict[str, Any]) -> None:
        body = cp.api("GET", report_path(node))
        body["status"] = status
        stored: dict[str, Any] = {}
        refused = 0
        try:
            stored = cp.api("PUT", report_path(node) + "/status", body)
        except ApiError as error:
            refused = error.status
        if refused:
            assert 400 <= refused < 500, refused  # refused as bad input, never a server error
            outcomes["refused by the API server"] += 1
            return
        problem = report_problem(stored, datetime.now(UTC))
        if problem is None:
            # Kept as stored: then it must be an honest report (pruned of unknowns).
            assert set(stored["status"]) <= set(valid_status()) | {"conditions"}, stored
            outcomes["pruned to valid"] += 1
        else:
            outcomes["refused by the controller"] += 1

    check()
    print(f"\nFAULT FIGURES: malformed reports: {outcomes}", file=sys.stderr)
    assert outcomes["refused by the API server"] > 0


@pytest.mark.requirement("CT-006", "CT-003")
def test_the_controller_ignores_a_report_from_the_future_with_an_event_and_serves_the_rest(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    good, bad = unique("node"), unique("node")
    for name in (good, bad):
        create_node(cp, name)
    ns = unique("team")
    _, uids = create_expert(cp, ns, "expert-a", replicas=1, nodes=[good])
    agents = {good: SimulatedAgent(cp, good), bad: SimulatedAgent(cp, bad)}
    agents[good].pods[uids[0]] = (0.2, 500 * MiB)
    for agent in agents.values():
        agent.report()
        agent.report()
    controller = ControllerProcess(cp, "intake", tmp_path).start()
    try:
        wait_until(lambda: _exists(cp, ns), timeout=60, what="recommendation")

        # The bad node's agent claims a collection 300 days ahead; the schema lets it through.
        report = get_report(cp, bad)
        assert report is not None
        forged = copy.deepcopy(report)
        forged["status"]["collectedAt"] = (datetime.now(UTC) + timedelta(days=300)).isoformat()
        forged["status"]["pods"] = [
            {"uid": "../../../etc", "qosClass": "BestEffort", "memoryBytes": 1}
        ]
        cp.api("PUT", report_path(bad) + "/status", forged)

        def warned() -> list[dict[str, Any]]:
            events = cp.api("GET", "/api/v1/namespaces/default/events")["items"]
            return [
                e
                for e in events
                if e["reason"] == "MalformedReport" and e["involvedObject"]["name"] == bad
            ]

        event = wait_until(warned, timeout=30, what="a MalformedReport Warning Event")[0]
        assert event["type"] == "Warning" and "in the future" in event["message"]
        wait_until(
            lambda: f"ignoring ResourceReport {bad}" in controller.log_text(),
            timeout=10,
            what="the log line",
        )
        # Everyone else is still served: a scale of the expert reaches its recommendation.
        cp.api(
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/expert-a",
            {"spec": {"replicas": 2}},
            content_type="application/merge-patch+json",
        )
        wait_until(
            lambda: (
                cp.api("GET", recommendation_path(ns, "expert-a"))["status"]["current"]["replicas"]
                == 2
            ),
            timeout=30,
            what="the expert still served",
        )
        wait_until(
            lambda: controller.metric("headroom_reports_ignored_total") >= 1,
            timeout=10,
            what="the ignored report counted",
        )
        assert controller.proc is not None and controller.proc.poll() is None
    finally:
        assert controller.stop() == 0


def _exists(cp: ControlPlane, ns: str) -> bool:
    try:
        cp.api("GET", recommendation_path(ns, "expert-a"))
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    return True


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HEADROOM_EXPERT_SELECTOR": "app in (a"}, "HEADROOM_EXPERT_SELECTOR='app in (a'"),
        ({"HEADROOM_EXPERT_SELECTOR": "tier=~gpu"}, "HEADROOM_EXPERT_SELECTOR"),
        ({"HEADROOM_CPU_MARGIN_PERCENT": "-5"}, "HEADROOM_CPU_MARGIN_PERCENT='-5'"),
        ({"HEADROOM_MEMORY_MARGIN_PERCENT": "-0.1"}, "HEADROOM_MEMORY_MARGIN_PERCENT"),
        ({"HEADROOM_MIN_REPLICAS": "5", "HEADROOM_MAX_REPLICAS": "2"}, "min_replicas (5)"),
    ],
    ids=[
        "unclosed-set",
        "regex-operator",
        "negative-cpu-margin",
        "negative-memory-margin",
        "min-above-max",
    ],
)
def test_bad_controller_settings_fail_at_start_with_one_clear_message(
    control_plane: ControlPlane, env: dict[str, str], named: str
) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "headroom.cli", "controller"],
        env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "headroom controller: invalid settings, not starting:"
    assert len(lines) == 2 and named in lines[1], result.stderr  # one line, naming the setting
    assert "Traceback" not in result.stderr


@pytest.mark.requirement("AG-002", "CT-004")
def test_a_409_storm_on_a_report_the_agent_keeps_its_figures(control_plane: ControlPlane) -> None:
    """Three rogue writers rewrite the report as fast as they can while the agent writes."""
    cp, node = control_plane, unique("node")
    create_node(cp, node)
    agent = SimulatedAgent(cp, node)
    agent.report()
    stop = threading.Event()
    rogue_writes = [0, 0, 0]

    def rogue(index: int) -> None:
        while not stop.is_set():
            try:
                body = cp.api("GET", report_path(node))
                body["status"]["podCount"] = 4000 + index
                cp.api("PUT", report_path(node) + "/status", body)
                rogue_writes[index] += 1
            except ApiError:
                pass

    threads = [threading.Thread(target=rogue, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    conflicts = failures = attempts = 0
    try:
        time.sleep(0.5)
        # At least 20 agent writes, and on until the rogues have written more than 20 times
        # (a storm, however fast this machine serves them), at most 200 writes.
        while attempts < 200 and (attempts < 20 or sum(rogue_writes) <= 20):
            attempts += 1
            try:
                agent.report()
            except Exception as error:
                failures += 1
                conflicts += getattr(error, "status", 0) == 409
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    agent.report()  # the storm is over: the agent's figures win
    final = get_report(cp, node)
    assert final is not None
    print(
        f"\nFAULT FIGURES: 409 storm: {sum(rogue_writes)} rogue writes, agent writes "
        f"failing twice in a row {failures}/{attempts} ({conflicts} of them 409)",
        file=sys.stderr,
    )
    assert sum(rogue_writes) > 20  # it was a storm
    assert final["status"]["podCount"] == 0
    assert final["status"]["collectedAt"]
