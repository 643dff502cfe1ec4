"""The benchmarks' pieces that need no API server still run (they are not run in CI)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from benchmarks import recompute
from benchmarks._proc import format_table, percentile, read_cpu_seconds, read_rss_bytes
from benchmarks._sim import PodFigure, report_status
from benchmarks.agent_overhead import make_kubepods_tree, report_writes

from headroom.api import ResourceReportStatus
from headroom.collection.cgroups import PodCgroupReader


def test_the_simulated_agents_write_what_the_api_accepts() -> None:
    pods = [
        PodFigure(f"00000000-0000-4000-8000-00000000000{i}", "Burstable", 0.5, 2**30, 0.2, 2**29)
        for i in range(3)
    ]
    status = ResourceReportStatus.model_validate(report_status(pods, 60, random.Random(1)))
    assert status.podCount == 3


@pytest.mark.requirement("PR-001", "PR-003")
def test_the_benchmark_cgroup_tree_is_read_like_a_node(tmp_path: Path) -> None:
    make_kubepods_tree(tmp_path, 30)
    pods, warnings = PodCgroupReader(str(tmp_path)).read()
    assert len(pods) == 30 and warnings == ()
    assert {pod.qos_class for pod in pods} == {"Guaranteed", "Burstable", "BestEffort"}
    assert {len(pod.containers) for pod in pods} == {3}  # app, sidecar, sandbox


def test_a_small_recompute_run_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert recompute.main(["--quick", "--batches", "2", "--history-days", "1"]) == 0
    assert "full recompute p99" in capsys.readouterr().out


@pytest.mark.requirement("PR-002", "PR-003")
def test_process_figures_and_helpers() -> None:
    assert read_rss_bytes(os.getpid()) > 0
    assert all(seconds >= 0 for seconds in read_cpu_seconds(os.getpid()))
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert "a" in format_table(["a", "b"], [["x", "1"]])
    metrics = 'apiserver_request_total{resource="resourcereports",verb="PUT"} 7\n'
    assert report_writes(metrics) == 7
