"""Per-container advice: names from the Pod's status, one history per container, OOM kills.

Hand-computed figures use the histogram's buckets (first 10m / 1 MiB, ratio
1.05; a percentile or peak is its bucket's upper bound):

* app, 0.2 cores and 600Mi every sample: p95 = 216m, +15 % → 250m; peak
  ≈ 619Mi, +15 % ≈ 712Mi → 720Mi (as in ``test_controller_compute``);
* sidecar, 0.05 cores and 100Mi: 0.05 is in bucket 4, whose upper bound is
  0.01 × (1.05⁵ − 1) / 0.05 = 55.3m, +15 % = 63.5m → 70m; 100Mi is in bucket
  36, upper bound (1.05³⁷ − 1) / 0.05 = 101.6Mi, +15 % = 116.9Mi → 128Mi.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from headroom.controller.compute import compute_batch
from headroom.controller.state import ClusterState
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import GiB, MiB, deployment, node, replicaset, report
from tests.unit.test_controller_state import T0, fresh_state

APP_ID = "a" * 64
SIDECAR_ID = "b" * 64
SANDBOX = "c" * 12
KEY = ("team", "expert-a")


def two_container_template(memory_limit: str | None = "1Gi") -> dict[str, Any]:
    app: dict[str, Any] = {"requests": {"cpu": "150m", "memory": "1Gi"}}
    if memory_limit:
        app["limits"] = {"memory": memory_limit, "cpu": "200m"}
    return {
        "containers": [{"name": "app", "resources": app}],
        "initContainers": [
            {"name": "init-model", "resources": {"requests": {"cpu": "2"}}},
            {
                "name": "proxy",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            },
        ],
    }


def expert_body() -> dict[str, Any]:
    body = deployment("expert-a")
    body["spec"]["template"]["spec"] = two_container_template()
    return body


def pod_body(uid: str, *, app_id: str = APP_ID, killed_at: str | None = None) -> dict[str, Any]:
    app_status: dict[str, Any] = {"name": "app", "containerID": f"containerd://{app_id}"}
    if killed_at:
        app_status["lastState"] = {
            "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": killed_at}
        }
    return {
        "metadata": {
            "name": f"pod-{uid}",
            "namespace": "team",
            "uid": uid,
            "ownerReferences": [{"kind": "ReplicaSet", "name": "expert-a-rs"}],
        },
        "spec": {"nodeName": "n1", **two_container_template()},
        "status": {
            "phase": "Running",
            "containerStatuses": [app_status],
            "initContainerStatuses": [
                {"name": "init-model", "containerID": "containerd://" + "d" * 64},
                {"name": "proxy", "containerID": f"cri-o://{SIDECAR_ID}"},
            ],
        },
    }


def with_containers(body: dict[str, Any], figures: dict[str, list[tuple[str, float, int]]]) -> Any:
    for pod in body["status"]["pods"]:
        pod["containers"] = [
            {"id": short, "cpuCores": cpu, "memoryBytes": memory}
            for short, cpu, memory in figures[pod["uid"]]
        ]
    return body


def learnt_state(kill: str | None = None) -> ClusterState:
    state = fresh_state()
    state.upsert_node(node("n1"))
    state.upsert_deployment(expert_body())
    state.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    state.upsert_pod(pod_body("p1", killed_at=kill))
    per_container = [
        (APP_ID[:12], 0.2, 600 * MiB),
        (SIDECAR_ID[:12], 0.05, 100 * MiB),
        (SANDBOX, 0.0, 1 * MiB),  # the pause container: no status names it
    ]
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        body = report("n1", at, {"p1": (0.25, 701 * MiB)})
        state.upsert_report(with_containers(body, {"p1": per_container}))
        state.ingest_pending()
    return state


@pytest.mark.requirement("CT-001")
def test_each_container_has_its_own_history_by_name_and_the_sandbox_is_dropped() -> None:
    state = learnt_state()
    history = state.histories[KEY]
    assert history.samples == 3  # the pod total is still kept
    assert set(history.containers) == {"app", "proxy"}
    assert (history.containers["app"].samples, history.containers["proxy"].cpu_samples) == (3, 3)


@pytest.mark.requirement("CT-001")
def test_app_and_sidecar_are_each_sized_on_their_own() -> None:
    state = learnt_state()
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=3)).statuses[KEY]

    assert status.containers is not None
    app, proxy = status.containers
    assert (app.name, app.sidecar, proxy.name, proxy.sidecar) == ("app", False, "proxy", True)
    assert app.recommended is not None and proxy.recommended is not None
    assert (app.recommended.cpuRequest, app.recommended.memoryRequest) == ("250m", "720Mi")
    assert (proxy.recommended.cpuRequest, proxy.recommended.memoryRequest) == ("70m", "128Mi")
    # memory limit = memory request
    assert app.recommended.memoryLimit == "720Mi" and proxy.recommended.memoryLimit == "128Mi"
    # the app's CPU limit 200m is below its 250m request: raised to it; the proxy has none
    assert app.recommended.cpuLimit == "250m" and "raised" in app.recommended.cpuLimitReason
    assert proxy.recommended.cpuLimit is None
    assert app.current is not None and app.current.memoryLimit == "1Gi"
    assert status.recommended is not None  # and the pod total as before
    assert status.podLevel is None


def test_a_renamed_container_starts_its_own_history() -> None:
    state = learnt_state()
    body = pod_body("p1")
    body["status"]["containerStatuses"][0]["name"] = "server"  # renamed, same ID
    state.upsert_pod(body)
    at = T0 + timedelta(minutes=5)
    sample = report("n1", at, {"p1": (0.25, 701 * MiB)})
    state.upsert_report(with_containers(sample, {"p1": [(APP_ID[:12], 0.3, 650 * MiB)]}))
    state.ingest_pending()

    containers = state.histories[KEY].containers
    assert containers["server"].samples == 1 and containers["app"].samples == 3


@pytest.mark.requirement("CT-001")
def test_an_oom_killed_container_gets_memory_above_the_limit_it_died_at() -> None:
    state = learnt_state(kill="2026-11-01T11:58:00Z")
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=3)).statuses[KEY]

    assert status.containers is not None
    app = status.containers[0]
    assert app.oomKills is not None and app.oomKills.count == 1
    assert app.oomKills.limitBytes == GiB
    # max(1Gi × 1.2, 1Gi + 100Mi) = 1228.8Mi → 64Mi steps above 1Gi → 1280Mi (usage alone: 720Mi)
    assert app.recommended is not None
    assert app.recommended.memoryRequest == "1280Mi" == app.recommended.memoryLimit
    assert "1 OOM kill" in app.recommended.memoryReason
    assert "720Mi" in app.recommended.memoryReason
    proxy = status.containers[1]
    assert proxy.oomKills is None and proxy.recommended is not None
    assert proxy.recommended.memoryRequest == "128Mi"


def test_an_oom_kill_is_counted_once_and_survives_a_restart() -> None:
    kill = "2026-11-01T11:58:00Z"
    state = learnt_state(kill=kill)
    state.upsert_pod(pod_body("p1", killed_at=kill) | {"metadata": pod_body("p1")["metadata"]})
    state.ingest_pending()
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=3)).statuses[KEY]
    stored = {"metadata": {"name": "expert-a", "namespace": "team"}, "status": status.to_wire()}

    restarted = fresh_state()
    restarted.upsert_deployment(expert_body())
    restarted.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    restarted.upsert_pod(pod_body("p1", killed_at=kill))  # the same kill, seen again
    restarted.upsert_recommendation(stored)
    restarted.upsert_pod(pod_body("p2", killed_at=kill))
    restarted.ingest_pending()
    assert restarted.ooms[KEY]["app"].count == 1

    restarted.upsert_pod(pod_body("p2", app_id="e" * 64, killed_at="2026-11-01T12:10:00Z"))
    restarted.ingest_pending()
    assert restarted.ooms[KEY]["app"].count == 2


@pytest.mark.requirement("FR-007")
def test_a_pod_level_expert_is_recommended_at_pod_level_and_raised_after_a_kill() -> None:
    state = fresh_state()
    state.upsert_node(node("n1"))
    body = deployment("expert-a")
    template = {
        "containers": [{"name": "app"}, {"name": "proxy"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    }
    body["spec"]["template"]["spec"] = template
    state.upsert_deployment(body)
    state.upsert_replicaset(replicaset("expert-a-rs", "expert-a"))
    pod = pod_body("p1", killed_at="2026-11-01T11:58:00Z")
    pod["spec"] = {"nodeName": "n1", **template}
    pod["status"]["initContainerStatuses"] = []
    state.upsert_pod(pod)
    state.upsert_report(report("n1", T0, {"p1": (0.2, 600 * MiB)}))
    state.ingest_pending()

    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=1)).statuses[KEY]

    assert status.current is not None and status.current.memoryRequest == "2Gi"
    assert status.podLevel is not None and status.recommended is not None
    assert status.podLevel.current.memoryLimit == "2Gi"
    # killed at the pod-level 2Gi: max(2.4Gi, 2Gi + 100Mi) = 2457.6Mi → 64Mi steps → 2496Mi
    assert status.recommended.memoryRequest == "2496Mi" == status.podLevel.memoryLimit
    assert "OOM kill" in status.recommended.memoryReason
    assert status.containers is not None
    app = status.containers[0]
    assert app.recommended is not None and app.recommended.memoryRequest == "32Mi"
    assert app.oomKills is not None  # counted, but the pod's figure carries the floor
