"""GPU experts against the real API server (GP-004, GP-005): Nodes advertising
``nvidia.com/gpu`` (whole and time-sliced) and MIG devices, pods requesting GPUs, agents
reporting NVML figures, and the controller's GPU advice and fit, figures worked by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from headroom.collection.gpu.figures import GpuFigures, GpuSnapshot, PodGpuDevice, PodGpuUsage
from tests.controlplane.cluster import ControlPlane, wait_until
from tests.integration.cluster_sim import (
    ControllerProcess,
    GiB,
    MiB,
    SimulatedAgent,
    create_expert,
    ensure_namespace,
)
from tests.integration.kube_helpers import unique
from tests.integration.test_controller import get_caprec

GPU = "nvidia.com/gpu"
A100 = "NVIDIA A100-SXM4-80GB"


def create_gpu_node(
    cp: ControlPlane, name: str, allocatable: dict[str, str], labels: dict[str, str]
) -> None:
    """A Node (no kubelet) with 32 CPUs, 128Gi and the given GPU resources and labels."""
    node = cp.api(
        "POST",
        "/api/v1/nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        },
    )
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110", **allocatable}
    node["status"] = {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    cp.api("PUT", f"/api/v1/nodes/{name}/status", node)


def gpu(index: int, uuid: str, used: int, util: float, total: int = 80 * GiB) -> GpuFigures:
    return GpuFigures(
        index=index,
        uuid=uuid,
        name=A100,
        memoryTotalBytes=total,
        memoryUsedBytes=used,
        memoryUsedPercent=round(100 * used / total, 1),
        utilizationPercent=util,
        migMode="Disabled",
        processCount=1 if used else 0,
    )


def on(uuid: str, memory: int, share: float | None = None) -> PodGpuUsage:
    device = PodGpuDevice(uuid=uuid, gpuIndex=0, memoryBytes=memory, utilizationPercent=share)
    return PodGpuUsage(memoryBytes=memory, devices=[device])


def agent(cp: ControlPlane, node: str) -> SimulatedAgent:
    return SimulatedAgent(cp, node, cores=32, memory_total=128 * GiB, memory_available=100 * GiB)


@pytest.mark.integration
@pytest.mark.requirement("GP-004", "GP-005")
def test_gpu_advice_and_fit_from_gpu_nodes_and_gpu_pods(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    whole, sliced, mig = unique("gpu"), unique("tsgpu"), unique("mig")
    create_gpu_node(cp, whole, {GPU: "4"}, {"nvidia.com/gpu.memory": "81920"})
    create_gpu_node(
        cp,
        sliced,
        {GPU: "4"},
        {
            "nvidia.com/gpu.memory": "81920",
            "nvidia.com/gpu.replicas": "4",
            "nvidia.com/gpu.sharing-strategy": "time-slicing",
        },
    )
    create_gpu_node(
        cp,
        mig,
        {"nvidia.com/mig-1g.10gb": "7", "nvidia.com/mig-3g.40gb": "2"},
        {"nvidia.com/mig-1g.10gb.memory": "9728", "nvidia.com/mig-3g.40gb.memory": "40192"},
    )
    namespace = unique("gputeam")
    ensure_namespace(cp, namespace)
    _, (p1, p2) = create_expert(
        cp, namespace, "llm", replicas=2, nodes=[whole], cpu="4", memory="16Gi", limits={GPU: "1"}
    )
    # a pod of no expert holding one slice of the time-sliced GPU
    other = cp.api(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods",
        {
            "metadata": {"name": "notebook"},
            "spec": {
                "nodeName": sliced,
                "containers": [
                    {
                        "name": "c",
                        "image": "example.invalid/nb:1",
                        "resources": {"requests": {"cpu": "1"}, "limits": {GPU: "1"}},
                    }
                ],
            },
        },
    )["metadata"]["uid"]

    agents = {name: agent(cp, name) for name in (whole, sliced, mig)}
    agents[whole].pods = {p1: (1.0, 4 * GiB), p2: (1.0, 4 * GiB)}
    agents[whole].gpus = GpuSnapshot(
        (
            gpu(0, "GPU-w0", 20 * GiB, 60.0),
            gpu(1, "GPU-w1", 12 * GiB, 30.0),
            gpu(2, "GPU-w2", 0, 0.0),
            gpu(3, "GPU-w3", 0, 0.0),
        ),
        # each replica alone on its GPU: the GPU's utilisation is the replica's use
        {p1: on("GPU-w0", 20 * GiB), p2: on("GPU-w1", 12 * GiB)},
    )
    agents[sliced].pods = {other: (0.5, GiB)}
    agents[sliced].gpus = GpuSnapshot(
        (gpu(0, "GPU-s0", 30 * GiB, 50.0),), {other: on("GPU-s0", 30 * GiB, 50.0)}
    )
    for _ in range(3):
        for each in agents.values():
            each.report()

    controller = ControllerProcess(cp, "gpu", tmp_path).start()
    try:

        def advised() -> dict[str, Any] | None:
            status = (get_caprec(cp, namespace, "llm") or {}).get("status") or {}
            advice = status.get("gpu") or {}
            return status if advice.get("samples", 0) >= 2 and advice.get("nodes") else None

        try:
            status = wait_until(advised, timeout=60, what="GPU advice")
        except TimeoutError:
            pytest.fail(controller.log_text()[-5000:])
    finally:
        controller.stop()
    assert status is not None
    advice = status["gpu"]
    assert (advice["resource"], advice["requestPerReplica"]) == (GPU, 1)
    # 20Gi lies in bucket 142 of 20Mi·(1.05ⁱ − 1): the peak is its upper bound; +15 %
    peak = 20 * MiB * (1.05**143 - 1)
    assert advice["memoryPeakBytes"] == math.ceil(peak)
    needed = advice["memoryNeededBytes"]
    assert needed == math.ceil(peak * 1.15)  # ≈ 24.1Gi
    # (0.6 + 0.3) GPU / (1 GPU × 70 %) = 1.29 → 2 replicas
    assert advice["replicas"] == 2
    # one A100 of 80Gi / 24.1Gi → 3 replicas if shared; smallest MIG profile holding it: 3g.40gb
    assert advice["replicasPerSharedGpu"] == 3
    assert advice["smallestMigProfile"] == "3g.40gb"
    # whole: 4 GPUs − 2 requested = 2 → 2 (CPU 24/4.x and memory are plenty)
    # sliced: 4 slices − 1 = 3, but its GPU has 80 − 30 = 50Gi free: ⌊50 / 24.1⌋ = 2
    mine = {n["node"]: n for n in advice["nodes"] if n["node"] in (whole, sliced, mig)}
    assert {name: (n["replicas"], n["freeGpus"], n["limitedBy"]) for name, n in mine.items()} == {
        whole: (2, 2, "gpu"),
        sliced: (2, 3, "gpu-memory"),
    }
    assert status["history"]["gpu"]["samples"] >= 2


@pytest.mark.integration
@pytest.mark.requirement("GP-001", "GP-003")
def test_kubectl_get_rr_shows_the_gpu_columns(control_plane: ControlPlane) -> None:
    cp = control_plane
    with_gpus, without = unique("gpunode"), unique("node")
    create_gpu_node(cp, with_gpus, {GPU: "2"}, {})
    create_gpu_node(cp, without, {}, {})
    reporting = agent(cp, with_gpus)
    reporting.gpus = GpuSnapshot((gpu(0, "GPU-a", 20 * GiB, 60.0), gpu(1, "GPU-b", 60 * GiB, 10.0)))
    reporting.report()
    agent(cp, without).report()
    out = cp.kubectl("get", "rr", with_gpus, without).stdout.splitlines()
    header = out[0]
    assert header.split()[-3:] == ["GPUS", "GPU-MEM%", "AGE"]

    def cell(line: str, column: str) -> str:
        """The cell under ``column`` (kubectl aligns cells with their headers; empty: no value)."""
        start = header.index(column)
        return line[start:].split(" ", 1)[0] if len(line) > start else ""

    rows = {line.split()[0]: line for line in out[1:]}
    assert (cell(rows[with_gpus], "GPUS"), cell(rows[with_gpus], "GPU-MEM%")) == ("2", "75")
    assert (cell(rows[without], "GPUS"), cell(rows[without], "GPU-MEM%")) == ("", "")
    report = cp.api("GET", f"/apis/headroom.dev/v1alpha1/resourcereports/{without}")
    assert "gpus" not in report["status"] and "gpuSummary" not in report["status"]
