"""GPU experts through the controller's model (GP-004, GP-005), figures worked out by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from headroom.api import CapacityRecommendationStatus
from headroom.controller.compute import compute_batch
from headroom.recommend.gpu import GpuHistory
from headroom.recommend.policy import SizingDefaults
from tests.unit.controller_bodies import GiB, MiB, deployment, node, pod, replicaset, report
from tests.unit.test_controller_state import T0, fresh_state

GPU = "nvidia.com/gpu"
A100 = "NVIDIA A100-SXM4-80GB"
A100_BYTES = 81920 * MiB


def gpu_node(name: str, allocatable: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    body = node(name, cpu="32", memory="128Gi")
    body["metadata"]["labels"] = labels
    body["status"]["allocatable"].update(allocatable)
    return body


def with_gpus(body: dict[str, Any], count: int, resource: str = GPU) -> dict[str, Any]:
    """A pod or Deployment body whose first container asks for ``count`` devices."""
    spec = body["spec"]["template"]["spec"] if "template" in body["spec"] else body["spec"]
    spec["containers"][0]["resources"]["limits"] = {resource: str(count)}
    return body


def gpu_report(
    name: str,
    gpus: list[dict[str, Any]],
    pods: dict[str, tuple[float, int, dict[str, Any] | None]],
    at: datetime = T0,
) -> dict[str, Any]:
    figures = {uid: (cpu, memory) for uid, (cpu, memory, _) in pods.items()}
    body = report(name, at, figures, cores=32, available=100 * GiB)
    body["status"]["gpus"] = gpus
    for entry in body["status"]["pods"]:
        usage = pods[entry["uid"]][2]
        if usage is not None:
            entry["gpu"] = usage
    return body


def one_gpu(uuid: str, memory: int, share: float | None = None) -> dict[str, Any]:
    device: dict[str, Any] = {"uuid": uuid, "gpuIndex": 0, "memoryBytes": memory}
    if share is not None:
        device["utilizationPercent"] = share
    return {"memoryBytes": memory, "devices": [device]}


def whole_gpus(utilisation: tuple[float, float]) -> list[dict[str, Any]]:
    """Node g1's four A100s, the first two busy ``utilisation`` percent."""
    return [
        {
            "index": i,
            "uuid": f"GPU-{i}",
            "name": A100,
            "memoryTotalBytes": A100_BYTES,
            "memoryUsedBytes": used,
            "utilizationPercent": util,
            "migMode": "Disabled",
        }
        for i, (used, util) in enumerate(
            [(20 * GiB, utilisation[0]), (12 * GiB, utilisation[1]), (0, 0.0), (0, 0.0)]
        )
    ]


def g1_report(utilisation: tuple[float, float], at: datetime = T0) -> dict[str, Any]:
    """g1's report: p1 and p2 each alone on a GPU, so each GPU's utilisation is its pod's use."""
    pods = {
        "p1": (1.0, 4 * GiB, one_gpu("GPU-0", 20 * GiB)),
        "p2": (1.0, 4 * GiB, one_gpu("GPU-1", 12 * GiB)),
    }
    return gpu_report("g1", whole_gpus(utilisation), pods, at)


def gpu_state() -> Any:
    state = fresh_state()
    state.upsert_node(
        gpu_node(
            "g1",
            {GPU: "4"},
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.memory": "81920"},
        )
    )
    state.upsert_node(
        gpu_node(
            "g2",
            {GPU: "4"},
            {
                "nvidia.com/gpu.memory": "81920",
                "nvidia.com/gpu.replicas": "4",
                "nvidia.com/gpu.sharing-strategy": "time-slicing",
            },
        )
    )
    state.upsert_node(
        gpu_node(
            "g3",
            {"nvidia.com/mig-1g.10gb": "7", "nvidia.com/mig-3g.40gb": "2"},
            {"nvidia.com/mig-1g.10gb.memory": "9728", "nvidia.com/mig-3g.40gb.memory": "40192"},
        )
    )
    state.upsert_node(node("cpu-only", cpu="32", memory="128Gi"))
    state.upsert_deployment(with_gpus(deployment("llm", cpu="4", memory="16Gi"), 1))
    state.upsert_deployment(deployment("plain"))
    state.upsert_replicaset(replicaset("llm-rs", "llm"))
    state.upsert_replicaset(replicaset("plain-rs", "plain"))
    state.upsert_pod(with_gpus(pod("p1", "llm-rs", "g1", cpu="4", memory="16Gi"), 1))
    state.upsert_pod(with_gpus(pod("p2", "llm-rs", "g1", cpu="4", memory="16Gi"), 1))
    state.upsert_pod(with_gpus(pod("other", None, "g2", cpu="1", memory="1Gi"), 1))
    state.upsert_pod(pod("q1", "plain-rs", "cpu-only"))
    state.upsert_report(g1_report((60.0, 30.0)))
    shared = [
        {
            "index": 0,
            "uuid": "GPU-s",
            "name": A100,
            "memoryTotalBytes": 80 * GiB,
            "memoryUsedBytes": 30 * GiB,
            "utilizationPercent": 50.0,
            "migMode": "Disabled",
        }
    ]
    state.upsert_report(
        gpu_report("g2", shared, {"other": (0.5, GiB, one_gpu("GPU-s", 30 * GiB, 50.0))})
    )
    state.upsert_report(report("g3", T0, {}, cores=32))
    state.upsert_report(report("cpu-only", T0, {"q1": (0.2, 600 * MiB)}, cores=32))
    state.ingest_pending()
    return state


def test_gpu_requests_count_per_node_and_leave_with_their_pods() -> None:
    state = gpu_state()
    assert state.node_gpu_requests["g1"] == {GPU: 2}
    assert state.node_gpu_requests["g2"] == {GPU: 1}
    state.delete_pod("p2")
    assert state.node_gpu_requests["g1"] == {GPU: 1}
    assert state.experts[("team", "llm")].gpu_requests == {GPU: 1}
    assert state.experts[("team", "plain")].gpu_requests == {}
    node_g3 = state.nodes["g3"].gpus
    assert node_g3 is not None and node_g3.mig_memory["3g.40gb"] == 40192 * MiB
    assert state.nodes["cpu-only"].gpus is None


@pytest.mark.requirement("GP-004", "GP-005")
def test_a_gpu_expert_gets_gpu_advice_with_hand_computed_figures() -> None:
    state = gpu_state()
    result = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5))
    _, status = result.statuses[("team", "llm")]
    gpu = status.gpu
    assert gpu is not None and gpu.resource == GPU and gpu.requestPerReplica == 1
    # peak 20Gi = 20480Mi lies in bucket 142 of 20Mi·(1.05ⁱ − 1); its upper bound is the peak
    peak = 20 * MiB * (1.05**143 - 1)
    assert gpu.memoryPeakBytes == pytest.approx(peak, rel=1e-9)
    needed = math.ceil(peak * 1.15)  # ≈ 24.1Gi
    assert gpu.memoryNeededBytes == needed
    # GPU use now: 0.6 + 0.3 GPU (each pod alone on its GPU), the first total-GPU sample; its
    # bucket's upper bound 0.2·(1.05³⁵ − 1) = 0.90 GPU / (1 GPU × 70 %) = 1.29 → 2
    assert gpu.replicas == 2
    assert gpu.replicasReason == (
        "p95 of 1 total-GPU samples over 5s = 0.90 GPU / (1 GPU × 70% target) = 1.29 → 2"
        "; all replicas use 0.90 GPU now"
    )
    # one A100 (80Gi, from the agent's NVML on g1) / 24.1Gi = 3.3 → 3
    assert gpu.replicasPerSharedGpu == 80 * GiB // needed == 3
    assert gpu.sharingReason.startswith(f"one {A100} has 80Gi")
    # MIG profiles on g3: 1g.10gb (9.5Gi) < 24.1Gi ≤ 3g.40gb (39.3Gi)
    assert gpu.smallestMigProfile == "3g.40gb"
    # g1: 4 − 2 requested = 2 GPUs; CPU and memory are plenty → 2, by GPUs.
    # g2: time-sliced, 4 − 1 = 3 slices, but its one GPU has 80 − 30 = 50Gi free:
    #     ⌊50Gi / 24.1Gi⌋ = 2 → 2, by GPU memory. g3 and cpu-only have no nvidia.com/gpu.
    assert [(n.node, n.replicas, n.freeGpus, n.limitedBy) for n in gpu.nodes] == [
        ("g1", 2, 2, "gpu"),
        ("g2", 2, 3, "gpu-memory"),
    ]
    assert gpu.additionalReplicas == 4
    assert status.history is not None and status.history.gpu is not None
    assert status.history.gpu.samples == 2
    # the CPU fit does not count GPUs: it still lists every node with room
    assert status.fit is not None and status.fit.additionalReplicas > gpu.additionalReplicas


@pytest.mark.requirement("GP-003")
def test_an_expert_without_gpus_has_no_gpu_advice_and_no_gpu_history() -> None:
    state = gpu_state()
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5)).statuses[
        ("team", "plain")
    ]
    assert status.gpu is None and status.history is not None and status.history.gpu is None
    assert "gpu" not in status.to_wire() and "gpu" not in status.to_wire()["history"]


def restarted_with(status: CapacityRecommendationStatus) -> GpuHistory:
    """The GPU history a restarted controller reads back from the stored recommendation."""
    restarted = fresh_state()
    restarted.upsert_recommendation(
        {
            "metadata": {"name": "llm", "namespace": "team", "resourceVersion": "1"},
            "status": status.to_wire(),
        }
    )
    return restarted.gpu_histories[("team", "llm")]


def test_the_gpu_history_survives_a_restart() -> None:
    state = gpu_state()
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5)).statuses[
        ("team", "llm")
    ]
    history = restarted_with(status)
    assert history.samples == 2
    assert history.memory.peak(T0 + timedelta(seconds=5), 86400) == pytest.approx(
        20 * MiB * (1.05**143 - 1), rel=1e-9
    )


@pytest.mark.requirement("GP-004", "CT-001")
def test_a_minute_of_burst_does_not_move_the_gpu_replicas_an_hour_of_steady_use_set() -> None:
    state = gpu_state()
    defaults = SizingDefaults()
    statuses = []
    for minute in range(62):
        at = T0 + timedelta(minutes=minute, seconds=5)
        # minute 61: both replicas flat out, 2 GPUs in all — the moment's rule says ⌈2 / 0.7⌉ = 3
        busy = (100.0, 100.0) if minute == 61 else (60.0, 30.0)
        state.upsert_report(g1_report(busy, at - timedelta(seconds=5)))
        state.ingest_pending()
        statuses.append(compute_batch(state, defaults, at).statuses[("team", "llm")][1])
    counts = [s.gpu.replicas for s in statuses if s.gpu is not None]
    assert counts == [2] * 62
    last = statuses[-1]
    assert last.gpu is not None and last.gpu.replicasReason == (
        "p95 of 62 total-GPU samples over 1h 1m = 0.90 GPU / (1 GPU × 70% target) = 1.29 → 2"
        "; all replicas use 2.00 GPU now"
    )
    assert last.history is not None and last.history.gpu is not None
    assert last.history.gpu.totalGpuSamples == 62
    # what a restarted controller reads back gives the same replicas, not the moment's 3
    history = restarted_with(last)
    assert history.total_samples == 62
    assert history.window_load(T0 + timedelta(minutes=61, seconds=5), 7 * 86400, 95) == (
        state.gpu_histories[("team", "llm")].window_load(
            T0 + timedelta(minutes=61, seconds=5), 7 * 86400, 95
        )
    )


def test_bad_gpu_annotations_are_reported_on_the_policy_condition() -> None:
    state = gpu_state()
    state.upsert_deployment(
        with_gpus(
            deployment(
                "llm",
                cpu="4",
                memory="16Gi",
                annotations={"headroom.dev/gpu-target-utilization": "200"},
            ),
            1,
        )
    )
    _, status = compute_batch(state, SizingDefaults(), T0 + timedelta(seconds=5)).statuses[
        ("team", "llm")
    ]
    policy = next(c for c in status.conditions if c.type == "PolicyValid")
    assert policy.status == "False" and "gpu-target-utilization='200'" in policy.message
