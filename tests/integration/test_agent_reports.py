"""The agent against the real API server: creation, ownership, status subresource, schema."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from headroom.agent.loop import Agent
from headroom.agent.reports import report_path
from headroom.agent.settings import AgentSettings
from headroom.collection.psutil_reader import PsutilNodeReader
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.kube_helpers import create_node, get_report, report_store, unique


def agent_for(cp: ControlPlane, node: str, **settings: Any) -> Agent:
    store, _ = report_store(cp, node)
    config = AgentSettings(node_name=node, **settings)
    return Agent(
        config,
        PsutilNodeReader(config.host_paths(), config.disk_paths),
        store,
        clock=time.monotonic,
    )


@pytest.mark.requirement("FR-001", "FR-004", "FR-005", "HR-003")
def test_agent_creates_its_report_owned_by_the_node(control_plane: ControlPlane) -> None:
    node_name = unique("node")
    node = create_node(control_plane, node_name)
    agent = agent_for(control_plane, node_name, disk_paths=["/", "/no/such/path"])
    agent.previous = agent.reader.read()
    time.sleep(0.2)
    agent.tick()

    report = get_report(control_plane, node_name)
    assert report is not None
    owner = report["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Node",
        node_name,
        node["metadata"]["uid"],
    )
    assert report["spec"] == {"nodeName": node_name}
    assert agent.latest is not None
    assert report["status"] == agent.latest.to_wire()  # nothing pruned by the schema
    disks = {d["path"]: d for d in report["status"]["disks"]}
    assert "error" in disks["/no/such/path"] and disks["/"]["totalBytes"] > 0  # HR-003


def test_report_goes_with_its_node(control_plane: ControlPlane) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    agent = agent_for(control_plane, node_name)
    agent.tick()
    assert get_report(control_plane, node_name) is not None
    control_plane.api("DELETE", f"/api/v1/nodes/{node_name}")
    wait_until(
        lambda: get_report(control_plane, node_name) is None,
        timeout=60,
        what="garbage collection of the report",
    )


def test_status_writes_leave_spec_alone_and_spec_writes_leave_status_alone(
    control_plane: ControlPlane,
) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    agent = agent_for(control_plane, node_name)
    agent.tick()
    report = get_report(control_plane, node_name)
    assert report is not None
    written_status = report["status"]

    # A status write that also tries to change spec: spec stays.
    report["spec"]["nodeName"] = "someone-else"
    report["status"]["podCount"] = 999
    after = control_plane.api("PUT", report_path(node_name) + "/status", report)
    assert after["spec"]["nodeName"] == node_name
    assert after["status"]["podCount"] == 999

    # A main-resource write that tries to change status: status stays.
    after["status"]["podCount"] = 1
    after["spec"]["nodeName"] = "renamed"
    final = control_plane.api("PUT", report_path(node_name), after)
    assert final["spec"]["nodeName"] == "renamed"
    assert final["status"]["podCount"] == 999
    assert final["status"]["cpu"] == written_status["cpu"]


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("cpu", "logicalCores"), -1),
        (("cpu", "utilizationPercent"), 100.5),
        (("memory", "usedPercent"), -0.1),
        (("cpu", "logicalCores"), "four"),
        (("memory", "totalBytes"), 1.5),
        (("podCount",), "many"),
    ],
    ids=[
        "negative-cores",
        "percent-above-100",
        "negative-percent",
        "cores-as-text",
        "fractional-bytes",
        "count-as-text",
    ],
)
def test_api_server_rejects_invalid_status(
    control_plane: ControlPlane, where: tuple[str, ...], value: object
) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    agent_for(control_plane, node_name).tick()
    report = get_report(control_plane, node_name)
    assert report is not None
    target = report["status"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(ApiError) as rejected:
        control_plane.api("PUT", report_path(node_name) + "/status", report)
    assert rejected.value.status == 422
    assert where[-1] in rejected.value.body


def test_kubectl_get_shows_the_promised_columns(control_plane: ControlPlane) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    agent = agent_for(control_plane, node_name)
    agent.previous = agent.reader.read()
    time.sleep(0.2)
    agent.tick()
    assert agent.latest is not None
    for resource in ("resourcereports", "rr"):
        out = control_plane.kubectl("get", resource, node_name).stdout.splitlines()
        header = out[0].split()
        assert header[:7] == ["NAME", "CPU%", "CORES", "MEM%", "DISK%", "PODS", "LAST"]
        row = out[1].split()
        assert row[0] == node_name
        assert float(row[1]) == agent.latest.cpu.utilizationPercent
        assert int(row[2]) == agent.latest.cpu.logicalCores
        assert float(row[3]) == agent.latest.memory.usedPercent
        assert float(row[4]) == agent.latest.diskMaxUsedPercent
        assert int(row[5]) == agent.latest.podCount
    listed = control_plane.kubectl("get", "headroom").stdout
    assert node_name in listed  # category "headroom"


@pytest.mark.requirement("AG-002")
def test_racing_writers_conflict_and_the_agent_keeps_its_figures(
    control_plane: ControlPlane,
) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    store, client = report_store(control_plane, node_name)
    agent = Agent(
        AgentSettings(node_name=node_name), PsutilNodeReader(), store, clock=time.monotonic
    )
    agent.tick()

    # Another writer changes the status behind the agent's back.
    report = get_report(control_plane, node_name)
    assert report is not None
    report["status"]["podCount"] = 4242
    control_plane.api("PUT", report_path(node_name) + "/status", report)

    status = agent.collect()
    store.write(status)
    conflicts = [call for call in client.calls if call[2] == 409]
    assert len(conflicts) == 1, client.calls
    final = get_report(control_plane, node_name)
    assert final is not None
    assert final["status"] == status.to_wire()


@pytest.mark.requirement("AG-001", "AG-002")
def test_agent_survives_an_api_server_outage_without_flooding(
    control_plane: ControlPlane,
) -> None:
    import threading

    node_name = unique("node")
    create_node(control_plane, node_name)
    store, client = report_store(control_plane, node_name)
    settings = AgentSettings(node_name=node_name, interval_seconds=1, heartbeat_seconds=5)
    agent = Agent(settings, PsutilNodeReader(), store, clock=time.monotonic)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: agent.writes >= 1, timeout=20, what="first write")
        control_plane.stop_apiserver()
        calls_before = len(client.calls)
        outage_started = time.monotonic()
        time.sleep(20)  # the outage itself is what is being tested
        outage_calls = len(client.calls) - calls_before
        assert thread.is_alive(), "the agent crashed during the outage"
        control_plane.start_apiserver()
        back = time.monotonic()
        back_wall = datetime.now(UTC)

        def current() -> bool:
            report = get_report(control_plane, node_name)
            if report is None:
                return False
            collected = datetime.fromisoformat(report["status"]["collectedAt"])
            return collected >= back_wall

        wait_until(current, timeout=settings.heartbeat_seconds + 10, what="report current again")
        recovered_after = time.monotonic() - back
    finally:
        stop.set()
        thread.join(timeout=10)
    # Exponential backoff: 1, 2, 4, then the 5 s (heartbeat) cap → about 7 attempts in 20 s.
    assert outage_calls <= 10, (
        f"{outage_calls} requests in {time.monotonic() - outage_started:.0f}s"
    )
    assert outage_calls >= 3, "the agent stopped trying"
    assert recovered_after <= settings.heartbeat_seconds + settings.interval_seconds + 2
    assert not thread.is_alive()
