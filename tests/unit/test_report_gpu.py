"""``headroom report`` with GPUs (GP-001, GP-004, GP-005): GPU columns and a GPU bar, none without."""

from __future__ import annotations

import re
from typing import Any

import pytest

from headroom.report.build import ReportBuilder
from headroom.report.html import render_html
from headroom.report.terminal import render_tables
from tests.unit.controller_bodies import GiB, node, pod
from tests.unit.test_report_view import NOW, cluster, measured, recommendation


def gpu_cluster() -> ReportBuilder:
    builder = cluster()
    gpu_node = node("gpu-a", cpu="32", memory="128Gi")
    gpu_node["status"]["allocatable"]["nvidia.com/gpu"] = "4"
    builder.add_node(gpu_node)
    for uid, count in (("g1", "1"), ("g2", "2")):
        body = pod(uid, "rs", "gpu-a")
        body["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": count}
        builder.add_pod(body)
    body = measured("gpu-a")
    body["status"]["gpus"] = [
        {
            "index": i,
            "uuid": f"GPU-{i}",
            "memoryTotalBytes": 80 * GiB,
            "memoryUsedBytes": used,
            "utilizationPercent": util,
        }
        for i, (used, util) in enumerate([(40 * GiB, 90.0), (20 * GiB, 30.0), (0, 0.0), (0, 0.0)])
    ]
    builder.add_report(body)
    rec: dict[str, Any] = recommendation("team", "llm")
    rec["status"]["gpu"] = {
        "resource": "nvidia.com/gpu",
        "requestPerReplica": 1,
        "memoryNeededBytes": 26 * GiB,
        "memoryReason": "peak GPU memory within 7d = 22.6Gi, +15% margin = 26Gi",
        "utilizationPercent": 36.0,
        "utilizationPercentile": 95.0,
        "replicas": 2,
        "replicasReason": "0.90 GPU / (1 GPU × 70% target) = 1.29 → 2",
        "replicasPerSharedGpu": 3,
        "smallestMigProfile": "3g.40gb",
        "additionalReplicas": 1,
        "nodes": [{"node": "gpu-a", "replicas": 1, "freeGpus": 1, "limitedBy": "gpu"}],
    }
    builder.add_recommendation(rec)
    return builder


@pytest.mark.requirement("GP-001", "GP-005", "FR-007")
def test_a_gpu_node_shows_devices_requested_and_nvml_figures() -> None:
    view = {n.name: n for n in gpu_cluster().build().nodes}
    gpu = view["gpu-a"].gpu
    assert gpu is not None
    assert (gpu.allocatableDevices, gpu.requestedDevices) == (4, 3)  # 1 + 2 requested
    assert gpu.requested == {"nvidia.com/gpu": 3}
    assert (gpu.gpus, gpu.memoryTotalBytes, gpu.memoryUsedBytes) == (4, 320 * GiB, 60 * GiB)
    assert gpu.utilizationPercent == 30.0  # (90 + 30 + 0 + 0) / 4
    assert view["node-a"].gpu is None


@pytest.mark.requirement("GP-004", "FR-007")
def test_the_tables_get_gpu_columns_only_when_there_are_gpus() -> None:
    plain = render_tables(cluster().build())
    assert "GPU" not in plain
    text = render_tables(gpu_cluster().build())
    header = next(line for line in text.splitlines() if line.startswith("NODE"))
    assert "GPU ALLOC" in header and "GPU UTIL" in header
    row = next(line for line in text.splitlines() if line.startswith("gpu-a"))
    assert re.search(r"\b4\s+3\s+60\.0Gi \(19%\)\s+30%", row), row
    assert "1 nvidia.com/gpu, 26.0Gi GPU mem, p95 36%, 2 replicas, +1 fit" in text
    assert "MIG 3g.40gb" in text


@pytest.mark.requirement("GP-005", "FR-007")
def test_the_html_page_draws_a_gpu_bar_with_its_figures() -> None:
    page = render_html(gpu_cluster().build())
    bar = re.search(r'<g class="node-bar"[^>]*data-resource="gpu"[^>]*>', page)
    assert bar is not None
    attributes = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', bar.group(0)))
    assert attributes["data-node"] == "gpu-a"
    assert (attributes["data-allocatable"], attributes["data-requested"]) == ("4", "3")
    assert attributes["data-used"] == "0.75"  # 60Gi of 320Gi GPU memory, on a 4-device track
    assert "GPUs requested" in page and "GPU advice" in page
    plain = render_html(cluster().build())
    assert 'data-resource="gpu"' not in plain and "GPU" not in plain
    assert NOW.isoformat(timespec="seconds") in plain
