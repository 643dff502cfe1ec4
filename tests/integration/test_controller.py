"""The controller against the real API server: several simulated nodes, expert Deployments,
recommendations and fit, stale nodes, deletion, restart and two replicas."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headroom.controller.writer import recommendation_path
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.cluster_sim import (
    ControllerProcess,
    GiB,
    MiB,
    SimulatedAgent,
    create_expert,
)
from tests.integration.kube_helpers import create_node, get_report, unique


def get_caprec(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return cp.api("GET", recommendation_path(namespace, name))
    except ApiError as error:
        if error.status == 404:
            return None
        raise


@pytest.fixture
def sim(control_plane: ControlPlane, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Three nodes, one expert with two pods on the first, agents reporting for all three."""
    nodes = [unique("node") for _ in range(3)]
    for name in nodes:
        create_node(control_plane, name, cpu="4", memory="16Gi")
    namespace = unique("team")
    deployment, pod_uids = create_expert(
        control_plane,
        namespace,
        "expert-a",
        replicas=2,
        nodes=[nodes[0]],
        cpu="500m",
        memory="1Gi",
    )
    agents = {name: SimulatedAgent(control_plane, name) for name in nodes}
    for uid in pod_uids:
        agents[nodes[0]].pods[uid] = (0.2, 600 * MiB)
    controllers: list[ControllerProcess] = []

    def start_controller(identity: str) -> ControllerProcess:
        controller = ControllerProcess(control_plane, identity, tmp_path).start()
        controllers.append(controller)
        return controller

    yield {
        "nodes": nodes,
        "namespace": namespace,
        "deployment": deployment,
        "agents": agents,
        "start_controller": start_controller,
        "pod_uids": pod_uids,
    }
    for controller in controllers:
        controller.stop()


def report_all(agents: dict[str, SimulatedAgent], rounds: int = 1) -> None:
    for _ in range(rounds):
        for agent in agents.values():
            agent.report()


def expected_fit(node: dict[str, float], cpu: float, memory: int) -> int:
    return min(math.floor(node["cpu"] / cpu + 1e-9), math.floor(node["mem"] / memory))


def fit_on(status: dict[str, Any], nodes: list[str]) -> dict[str, int]:
    """Replicas that fit on this test's own nodes (other tests' nodes share the cluster)."""
    listed = {n["node"]: n["replicas"] for n in status["fit"]["nodes"]}
    return {node: listed.get(node, 0) for node in nodes}


@pytest.mark.requirement("CT-001", "CT-002", "CT-003")
def test_recommendation_fit_staleness_and_deletion(
    control_plane: ControlPlane, sim: dict[str, Any]
) -> None:
    cp, ns, nodes, agents = control_plane, sim["namespace"], sim["nodes"], sim["agents"]
    report_all(agents, rounds=3)
    controller = sim["start_controller"]("solo")

    def recommended() -> dict[str, Any] | None:
        rec = get_caprec(cp, ns, "expert-a")
        status = (rec or {}).get("status") or {}
        ok = status.get("recommended") and status.get("evidence", {}).get("samples", 0) >= 2
        return rec if ok else None

    try:
        rec = wait_until(recommended, timeout=60, what="a CapacityRecommendation")
    except TimeoutError:
        pytest.fail(controller.log_text()[-5000:])
    assert rec is not None
    owner = rec["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Deployment",
        "expert-a",
        sim["deployment"]["metadata"]["uid"],
    )
    status = rec["status"]
    # Current sizing comes from the Deployment.
    assert status["current"] == {
        "replicas": 2,
        "cpuRequestCores": 0.5,
        "cpuRequest": "500m",
        "memoryRequestBytes": GiB,
        "memoryRequest": "1Gi",
    }
    # CPU: each pod uses 0.2 cores → p95 ≈ 0.2 (histogram bucket ≤ 5 % above), +15 % margin.
    cpu = status["recommended"]["cpuRequestCores"]
    assert 0.2 * 1.15 <= cpu <= 0.2 * 1.05 * 1.15 + 0.01
    # Memory: peak 600 MiB (bucket ≤ 5 % above), +15 %, rounded up to 16 MiB.
    memory = status["recommended"]["memoryRequestBytes"]
    assert 600 * MiB * 1.15 <= memory <= 600 * MiB * 1.05 * 1.15 + 16 * MiB
    # Replicas: 0.4 cores in all / (cpu request × 70 % target).
    assert status["recommended"]["replicas"] == math.ceil(0.4 / (cpu * 0.7) - 1e-9)
    # Fit: per node, free = min(allocatable − requests, the report's idle figures).
    free = [
        {"cpu": min(4 - 1.0, 3.0), "mem": min(16 * GiB - 2 * GiB, 12 * GiB)},  # two pods
        {"cpu": 3.0, "mem": 12 * GiB},
        {"cpu": 3.0, "mem": 12 * GiB},
    ]
    expected = {
        node: expected_fit(room, cpu, memory) for node, room in zip(nodes, free, strict=True)
    }
    assert fit_on(status, nodes) == expected
    assert status["fit"]["additionalReplicas"] >= sum(expected.values())
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PolicyValid"]["status"] == conditions["Ready"]["status"] == "True"
    # Seconds of history: provisional, and the REC columns say so.
    assert conditions["Confident"]["status"] == "False", conditions["Confident"]
    assert conditions["Confident"]["reason"] == "ShortHistory"

    out = cp.kubectl("get", "caprec", "-A").stdout.splitlines()
    header = out[0].split()
    assert header[:9] == [
        "NAMESPACE",
        "NAME",
        "REPLICAS",
        "REC-REPLICAS",
        "CPU",
        "REC-CPU",
        "MEMORY",
        "REC-MEMORY",
        "FITS",
    ]
    row = next(line.split() for line in out if line.startswith(ns))
    rec_columns = status["columns"]
    assert rec_columns["replicas"] == f"~{status['recommended']['replicas']}"
    assert rec_columns["cpuRequest"] == f"~{status['recommended']['cpuRequest']}"
    assert row[2:8] == [
        "2",
        rec_columns["replicas"],
        "500m",
        rec_columns["cpuRequest"],
        "1Gi",
        rec_columns["memoryRequest"],
    ]
    assert row[8] == str(status["fit"]["additionalReplicas"])

    # A node's agent stops: after 3 heartbeats its report is flagged and left out of fit.
    silent = nodes[2]
    for name in nodes:
        agents[name].heartbeat_seconds = 1
    report_all(agents)

    def stale_flagged() -> bool:
        report_all({k: v for k, v in agents.items() if k != silent})
        report = get_report(cp, silent) or {}
        conditions = {c["type"]: c for c in report.get("status", {}).get("conditions", [])}
        rec = get_caprec(cp, ns, "expert-a") or {}
        excluded = {e["node"]: e["reason"] for e in rec["status"]["fit"]["excludedNodes"]}
        return conditions.get("Stale", {}).get("status") == "True" and silent in excluded

    wait_until(stale_flagged, timeout=30, interval=1, what="stale node flagged and excluded")
    rec = get_caprec(cp, ns, "expert-a")
    assert rec is not None
    assert silent not in {n["node"] for n in rec["status"]["fit"]["nodes"]}
    assert fit_on(rec["status"], nodes) == {**expected, silent: 0}
    events = cp.api("GET", "/api/v1/namespaces/default/events")["items"]
    assert any(
        e["reason"] == "StaleReport" and e["involvedObject"]["name"] == silent for e in events
    )
    assert "True" in cp.kubectl("get", "rr", silent).stdout.splitlines()[1].split()
    deployment_events = cp.api("GET", f"/api/v1/namespaces/{ns}/events")["items"]
    assert any(e["reason"] == "RecommendationChanged" for e in deployment_events)

    # The label is removed: no longer an expert, its recommendation goes.
    cp.api(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/expert-a",
        {"metadata": {"labels": {"headroom.dev/expert": None}}},
        content_type="application/merge-patch+json",
    )
    wait_until(
        lambda: get_caprec(cp, ns, "expert-a") is None,
        timeout=40,
        what="recommendation removed when the Deployment stops matching",
    )


@pytest.mark.requirement("CT-004")
def test_deleted_deployment_takes_its_recommendation(
    control_plane: ControlPlane, sim: dict[str, Any]
) -> None:
    cp, ns = control_plane, sim["namespace"]
    report_all(sim["agents"], rounds=2)
    sim["start_controller"]("solo")
    wait_until(lambda: get_caprec(cp, ns, "expert-a"), timeout=60, what="recommendation")
    cp.api("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/expert-a")
    wait_until(
        lambda: get_caprec(cp, ns, "expert-a") is None,
        timeout=60,
        what="recommendation gone with its Deployment",
    )


def scale_and_wait(cp: ControlPlane, ns: str, replicas: int, *, what: str) -> None:
    """Scale expert-a and wait until a controller has written the new current replicas."""
    cp.api(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/expert-a",
        {"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
    )

    def written() -> bool:
        rec = get_caprec(cp, ns, "expert-a") or {}
        return bool(((rec.get("status") or {}).get("current") or {}).get("replicas") == replicas)

    wait_until(written, timeout=30, what=what)


@pytest.mark.requirement("CT-004", "CT-005")
def test_restart_keeps_history_and_two_replicas_have_one_writer(
    control_plane: ControlPlane, sim: dict[str, Any]
) -> None:
    cp, ns, agents = control_plane, sim["namespace"], sim["agents"]
    report_all(agents, rounds=4)
    first = sim["start_controller"]("first")

    def with_samples() -> dict[str, Any] | None:
        rec = get_caprec(cp, ns, "expert-a") or {}
        history = (rec.get("status") or {}).get("history") or {}
        return rec if history.get("samples", 0) >= 2 else None

    before = wait_until(with_samples, timeout=60, what="recommendation with history")
    assert before is not None
    assert first.stop() == 0  # SIGTERM: clean exit, lease released

    second = sim["start_controller"]("second")
    standby = sim["start_controller"]("standby")
    report_all(agents)  # one more round: history must grow from the persisted one, not restart

    def grown() -> dict[str, Any] | None:
        rec = get_caprec(cp, ns, "expert-a") or {}
        samples = ((rec.get("status") or {}).get("history") or {}).get("samples", 0)
        return rec if samples > before["status"]["history"]["samples"] else None

    after = wait_until(grown, timeout=60, what="history carried over and grown")
    assert after is not None
    figures = ("replicas", "cpuRequest", "memoryRequest")
    assert [after["status"]["recommended"][k] for k in figures] == [
        before["status"]["recommended"][k] for k in figures
    ]
    assert (
        after["status"]["history"]["firstSampleAt"] == before["status"]["history"]["firstSampleAt"]
    )

    # Two replicas: exactly one leads and writes.
    def one_leader() -> bool:
        try:
            return second.metric("headroom_leader") + standby.metric("headroom_leader") == 1
        except OSError:  # a metrics endpoint not listening yet (a loaded machine)
            return False

    wait_until(one_leader, timeout=30, what="exactly one leader")
    leader, follower = (second, standby) if second.metric("headroom_leader") else (standby, second)
    lease = cp.api(
        "GET", "/apis/coordination.k8s.io/v1/namespaces/headroom-system/leases/headroom-controller"
    )
    assert lease["spec"]["holderIdentity"] == leader.identity
    scale_and_wait(cp, ns, 3, what="leader writes")
    assert follower.metric("headroom_recommendations_written_total") == 0
    assert leader.metric("headroom_recommendations_written_total") >= 1

    # The leader goes away without releasing (SIGKILL): the standby takes over.
    import signal

    leader.stop(signal.SIGKILL)
    wait_until(
        lambda: follower.metric("headroom_leader") == 1, timeout=30, what="standby takes the lease"
    )
    scale_and_wait(cp, ns, 4, what="new leader writes")


@pytest.mark.requirement("FR-007")
def test_headroom_report_reads_what_the_controller_wrote(
    control_plane: ControlPlane, sim: dict[str, Any]
) -> None:
    import json
    import subprocess
    import sys

    cp, ns = control_plane, sim["namespace"]
    report_all(sim["agents"], rounds=2)
    sim["start_controller"]("solo")
    wait_until(
        lambda: ((get_caprec(cp, ns, "expert-a") or {}).get("status") or {}).get("fit"),
        timeout=60,
        what="recommendation",
    )

    def run(*args: str) -> str:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "headroom.cli",
                "report",
                *args,
                "--kubeconfig",
                str(cp.kubeconfig),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = run("-n", ns)
    for node in sim["nodes"]:
        assert node in table
    rec = get_caprec(cp, ns, "expert-a")
    assert rec is not None
    assert f"{ns}/expert-a" in table
    assert rec["status"]["recommended"]["cpuRequest"] in table
    assert f"{rec['status']['fit']['additionalReplicas']} more replicas fit" in table
    data = json.loads(run("experts", "-n", ns, "-o", "json"))
    shown = data["experts"][0]["recommended"]  # every key present: unset ones as null
    assert {k: v for k, v in shown.items() if v is not None} == rec["status"]["recommended"]
