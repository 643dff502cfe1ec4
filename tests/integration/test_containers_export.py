"""Per-container advice end to end, and its patches taken by the real API server.

An expert with an app container (memory limit 1Gi, CPU limit 200m, OOM-killed
once) and a native sidecar (``proxy``), and one sized with pod-level
``spec.resources``; simulated agents report per-container figures (the
sandbox's too); the controller runs as a real process. Then
``headroom report experts -o patch`` is applied to the real API server with
``dryRun=All`` — as a strategic-merge patch, as a server-side apply, and with
``kubectl`` itself — and the Deployment it would leave must carry the
recommended figures.

Hand-computed (histogram buckets, see ``tests/unit/test_controller_containers``):
app 0.2 cores / 600Mi → 250m / 720Mi, but killed at 1Gi: max(1.2Gi, 1Gi +
100Mi) → 1280Mi; proxy 0.05 cores / 100Mi → 70m / 128Mi; the app's CPU limit
200m is below its 250m request, so raised to 250m.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from headroom.controller.writer import recommendation_path
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.cluster_sim import (
    ControllerProcess,
    MiB,
    SimulatedAgent,
    create_workload,
    ensure_namespace,
)
from tests.integration.kube_helpers import create_node, unique

APP_IDS = ("a1" * 32, "a2" * 32)
PROXY_IDS = ("b1" * 32, "b2" * 32)
SANDBOX = "c0" * 6


def two_container_template() -> dict[str, Any]:
    return {
        "containers": [
            {
                "name": "app",
                "image": "example.invalid/expert:1",
                "resources": {
                    "requests": {"cpu": "150m", "memory": "1Gi"},
                    "limits": {"cpu": "200m", "memory": "1Gi"},
                },
            }
        ],
        "initContainers": [
            {
                "name": "proxy",
                "image": "example.invalid/proxy:1",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ],
    }


def pod_level_template() -> dict[str, Any]:
    return {
        "containers": [{"name": "app", "image": "example.invalid/expert:1"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    }


def _status(name: str, image: str, container_id: str, killed_at: str | None) -> dict[str, Any]:
    started = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": "",
        "containerID": f"containerd://{container_id}",
        "ready": True,
        "started": True,
        "restartCount": 1 if killed_at else 0,
        "state": {"running": {"startedAt": started}},
    }
    if killed_at:
        status["lastState"] = {
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": started,
                "finishedAt": killed_at,
            }
        }
    return status


def set_running(
    cp: ControlPlane,
    namespace: str,
    pod_name: str,
    containers: list[dict[str, Any]],
    sidecars: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> None:
    """What the kubelet would write: Running, with each container's ID (and last state)."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod_name}/status"
    pod = cp.api("GET", path)
    pod["status"] = {
        "phase": "Running",
        "containerStatuses": containers,
        **({"initContainerStatuses": list(sidecars)} if sidecars else {}),
    }
    cp.api("PUT", path, pod)


@pytest.fixture
def workloads(control_plane: ControlPlane, tmp_path: Path) -> Iterator[dict[str, Any]]:
    cp = control_plane
    node = unique("node")
    create_node(cp, node, cpu="8", memory="32Gi")
    namespace = unique("team")
    ensure_namespace(cp, namespace)
    _, sized = create_workload(
        cp, namespace, "two-box", two_container_template(), replicas=2, nodes=[node]
    )
    _, pooled = create_workload(
        cp, namespace, "pod-level", pod_level_template(), replicas=1, nodes=[node]
    )
    killed = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = cp.api("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    by_uid = {p["metadata"]["uid"]: p["metadata"]["name"] for p in pods}
    agent = SimulatedAgent(cp, node, cores=8, memory_total=32 * 2**30, memory_available=24 * 2**30)
    for index, uid in enumerate(sized):
        set_running(
            cp,
            namespace,
            by_uid[uid],
            [
                _status(
                    "app",
                    "example.invalid/expert:1",
                    APP_IDS[index],
                    killed if index == 0 else None,
                )
            ],
            [_status("proxy", "example.invalid/proxy:1", PROXY_IDS[index], None)],
        )
        agent.pods[uid] = (0.25, 701 * MiB)
        agent.containers[uid] = [
            (APP_IDS[index][:12], 0.2, 600 * MiB),
            (PROXY_IDS[index][:12], 0.05, 100 * MiB),
            (SANDBOX, 0.0, 1 * MiB),
        ]
    (pooled_uid,) = pooled
    set_running(
        cp,
        namespace,
        by_uid[pooled_uid],
        [_status("app", "example.invalid/expert:1", "d1" * 32, None)],
    )
    agent.pods[pooled_uid] = (0.4, 1200 * MiB)
    agent.containers[pooled_uid] = [("d1" * 6, 0.4, 1200 * MiB)]
    controller = ControllerProcess(cp, "containers", tmp_path).start()
    yield {"namespace": namespace, "agent": agent, "controller": controller}
    controller.stop()


def caprec(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    try:
        return cp.api("GET", recommendation_path(namespace, name))
    except ApiError as error:
        if error.status == 404:
            return {}
        raise


def report_until(cp: ControlPlane, agent: SimulatedAgent, check: Any, what: str) -> Any:
    found: list[Any] = []

    def ready() -> bool:
        agent.report()
        result = check()
        found[:] = [result]
        return bool(result)

    wait_until(ready, timeout=90, interval=1.0, what=what)
    return found[0]


def headroom_report(cp: ControlPlane, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "headroom.cli", "report", *args, "--kubeconfig", str(cp.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.requirement("CT-001", "FR-007")
def test_two_container_expert_is_sized_per_container_and_its_patch_applies(
    control_plane: ControlPlane, workloads: dict[str, Any]
) -> None:
    cp, ns, agent = control_plane, workloads["namespace"], workloads["agent"]

    def sized() -> dict[str, Any] | None:
        status = caprec(cp, ns, "two-box").get("status") or {}
        containers = {c["name"]: c for c in status.get("containers") or ()}
        done = all(
            (containers.get(n) or {}).get("cpuSamples", 0) >= 2 for n in ("app", "proxy")
        ) and (caprec(cp, ns, "pod-level").get("status") or {}).get("podLevel")
        return containers if done else None

    containers = report_until(cp, agent, sized, "per-container recommendations")
    app, proxy = containers["app"], containers["proxy"]
    assert (app["recommended"]["cpuRequest"], app["recommended"]["memoryRequest"]) == (
        "250m",
        "1280Mi",
    )
    assert app["recommended"]["memoryLimit"] == "1280Mi"
    assert app["recommended"]["cpuLimit"] == "250m"
    assert app["oomKills"]["count"] == 1 and app["oomKills"]["limitBytes"] == 2**30
    assert "OOM kill" in app["recommended"]["memoryReason"]
    assert (proxy["sidecar"], proxy["recommended"]["cpuRequest"]) == (True, "70m")
    assert proxy["recommended"]["memoryRequest"] == "128Mi"

    events = cp.api("GET", f"/api/v1/namespaces/{ns}/events")["items"]
    oom = [e for e in events if e.get("reason") == "OOMKilled"]
    assert len(oom) == 1 and oom[0]["type"] == "Warning"
    assert oom[0]["involvedObject"]["kind"] == "Deployment"
    assert oom[0]["involvedObject"]["name"] == "two-box"

    table = headroom_report(cp, "experts", "-n", ns)
    assert "└ app" in table and "└ proxy" in table

    patches = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all(headroom_report(cp, "experts", "-n", ns, "-o", "patch"))
    }
    assert set(patches) == {"two-box", "pod-level"}
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"

    def resources(deployment: dict[str, Any]) -> dict[str, Any]:
        spec = deployment["spec"]["template"]["spec"]
        found = {c["name"]: c.get("resources") for c in spec["containers"]}
        found |= {c["name"]: c.get("resources") for c in spec.get("initContainers") or ()}
        found["(pod)"] = spec.get("resources")
        return found

    want = {
        "app": {
            "requests": {"cpu": "250m", "memory": "1280Mi"},
            "limits": {"cpu": "250m", "memory": "1280Mi"},
        },
        "proxy": {"requests": {"cpu": "70m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}},
        "(pod)": None,
    }
    merged = cp.api(
        "PATCH",
        f"{path}/two-box?dryRun=All",
        patches["two-box"],
        content_type="application/strategic-merge-patch+json",
    )
    assert resources(merged) == want
    assert merged["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    applied = cp.api(
        "PATCH",
        f"{path}/two-box?dryRun=All&fieldManager=headroom&force=true",
        patches["two-box"],
        content_type="application/apply-patch+yaml",
    )
    assert resources(applied) == want
    # Nothing was changed for real (dryRun=All).
    assert resources(cp.api("GET", f"{path}/two-box"))["app"]["requests"]["memory"] == "1Gi"

    # kubectl takes the printed documents as they are.
    text = yaml.safe_dump_all(list(patches.values()))
    out = cp.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=headroom",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=text,
    ).stdout
    listed = json.loads(out)
    items = listed.get("items") or [listed]
    by_name = {i["metadata"]["name"]: i for i in items}
    assert resources(by_name["two-box"]) == want
    patched = cp.kubectl(
        "patch",
        "deployment",
        "two-box",
        "-n",
        ns,
        "--dry-run=server",
        "-o",
        "json",
        "--patch",
        json.dumps(patches["two-box"]),
    ).stdout
    assert resources(json.loads(patched)) == want

    # The pod-level expert is sized at pod level; the patch sets spec.resources.
    level = caprec(cp, ns, "pod-level")["status"]
    pod_patch = patches["pod-level"]["spec"]["template"]["spec"]
    assert "containers" not in pod_patch
    assert pod_patch["resources"]["requests"]["memory"] == level["recommended"]["memoryRequest"]
    merged = cp.api(
        "PATCH",
        f"{path}/pod-level?dryRun=All",
        patches["pod-level"],
        content_type="application/strategic-merge-patch+json",
    )
    assert resources(merged)["(pod)"] == pod_patch["resources"]


@pytest.mark.requirement("CT-001", "CT-004")
def test_an_oom_kill_survives_a_controller_restart(
    control_plane: ControlPlane, workloads: dict[str, Any], tmp_path: Path
) -> None:
    cp, ns, agent = control_plane, workloads["namespace"], workloads["agent"]

    def killed_once() -> dict[str, Any] | None:
        status = caprec(cp, ns, "two-box").get("status") or {}
        app = {c["name"]: c for c in status.get("containers") or ()}.get("app") or {}
        return app if (app.get("oomKills") or {}).get("count") == 1 else None

    report_until(cp, agent, killed_once, "the kill counted")
    workloads["controller"].stop()
    # The pod was replaced meanwhile: no Pod shows the kill any more, only the stored status.
    pods = cp.api("GET", f"/api/v1/namespaces/{ns}/pods")["items"]
    (victim,) = [
        p
        for p in pods
        for c in (p.get("status") or {}).get("containerStatuses") or ()
        if c.get("lastState")
    ]
    set_running(
        cp,
        ns,
        victim["metadata"]["name"],
        [_status("app", "example.invalid/expert:1", APP_IDS[0], None)],
        [_status("proxy", "example.invalid/proxy:1", PROXY_IDS[0], None)],
    )
    restarted = ControllerProcess(cp, "containers-again", tmp_path).start()
    try:
        # A change to the Deployment makes the new leader write (an unchanged one is not).
        cp.api(
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/two-box",
            {"spec": {"replicas": 3}},
            content_type="application/merge-patch+json",
        )

        def rewritten() -> dict[str, Any] | None:
            status = caprec(cp, ns, "two-box").get("status") or {}
            replicas = (status.get("current") or {}).get("replicas")
            return killed_once() if replicas == 3 else None

        app = report_until(cp, agent, rewritten, "the restarted controller's write")
        assert app["recommended"]["memoryRequest"] == "1280Mi"  # the floor stays
        events = cp.api("GET", f"/api/v1/namespaces/{ns}/events")["items"]
        assert len([e for e in events if e.get("reason") == "OOMKilled"]) == 1
    finally:
        restarted.stop()
