"""The report's view model from API objects (no server): figures computed by hand (FR-007)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from headroom.report.build import ReportBuilder
from headroom.report.command import serialise
from headroom.report.html import render_html
from headroom.report.terminal import render_tables
from headroom.report.view import ClusterReport
from tests.unit.controller_bodies import GiB, node, pod, report

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def measured(
    name: str, *, age: float = 10, used: int = 4 * GiB, disks: tuple[float, ...] = (40.0, 85.0)
) -> dict[str, Any]:
    """A report 4 cores at 25 % (1 core used), 12Gi of 16Gi available, two disks."""
    body = report(name, NOW - timedelta(seconds=age), {})
    body["status"]["agentVersion"] = "test"
    body["status"]["memory"].update(usedBytes=used, usedPercent=used / (16 * GiB) * 100)
    body["status"]["disks"] = [
        {
            "path": path,
            "totalBytes": 100,
            "usedBytes": int(p),
            "freeBytes": 100 - int(p),
            "usedPercent": p,
        }
        for path, p in zip(("/", "/var/lib"), disks, strict=False)
    ]
    return body


def recommendation(namespace: str, name: str, message: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "CapacityRecommendation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"name": name}},
        "status": {
            "current": {
                "replicas": 2,
                "cpuRequestCores": 0.5,
                "cpuRequest": "500m",
                "memoryRequestBytes": GiB,
                "memoryRequest": "1Gi",
            },
            "recommended": {
                "replicas": 3,
                "replicasReason": "1.2 cores in use ÷ (250m × 70%) " + message,
                "cpuRequestCores": 0.25,
                "cpuRequest": "250m",
                "cpuReason": "p95 + 15%",
                "memoryRequestBytes": 768 * 2**20,
                "memoryRequest": "768Mi",
                "memoryReason": "peak + 15%",
            },
            "fit": {
                "additionalReplicas": 7,
                "nodes": [
                    {"node": "node-b", "replicas": 4, "limitedBy": "cpu"},
                    {"node": "node-a", "replicas": 3, "limitedBy": "memory"},
                ],
                "fittingNodeCount": 2,
                "excludedNodes": [{"node": "node-c", "reason": "cordoned"}],
                "excludedNodeCount": 1,
            },
            "conditions": [{"type": "Ready", "status": "True", "reason": "Computed"}],
        },
    }


def cluster() -> ReportBuilder:
    builder = ReportBuilder(now=NOW)
    builder.add_node(node("node-a"))
    builder.add_node(node("node-b", cpu="8", memory="32Gi"))
    builder.add_node(node("node-c", unschedulable=True))
    builder.add_node(node("node-d", conditions=[{"type": "Ready", "status": "False"}]))
    # node-a: two 500m/1Gi pods count; finished and unbound pods do not.
    builder.add_pod(pod("a1", "rs", "node-a"))
    builder.add_pod(pod("a2", "rs", "node-a", phase="Pending"))
    builder.add_pod(pod("a3", "rs", "node-a", phase="Succeeded"))
    builder.add_pod(pod("a4", "rs", "node-a", phase="Failed"))
    builder.add_pod(pod("a5", "rs", None))
    # node-b: an init container bigger than the regular ones (the scheduler's max rule).
    big_init = pod("b1", "rs", "node-b", cpu="250m", memory="256Mi")
    big_init["spec"]["initContainers"] = [
        {"name": "warm", "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}}
    ]
    builder.add_pod(big_init)
    builder.add_report(measured("node-a"))
    builder.add_report(measured("node-b", age=300))  # 300 s > 3 × 60 s heartbeat: stale
    builder.add_report(measured("node-c"))
    builder.add_report(measured("gone"))  # its Node was deleted
    builder.add_recommendation(recommendation("team", "expert-a"))
    waiting = recommendation("alpha", "expert-b")
    waiting["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "NoData", "message": "no samples yet"}
        ]
    }
    builder.add_recommendation(waiting)
    return builder


@pytest.mark.requirement("FR-007")
def test_node_rows_hold_allocatable_requested_used_free_disk_and_age() -> None:
    view = cluster().build()
    nodes = {n.name: n for n in view.nodes}
    assert sorted(nodes) == ["gone", "node-a", "node-b", "node-c", "node-d"]
    a = nodes["node-a"]
    assert (a.allocatableCpuCores, a.allocatableMemoryBytes) == (4.0, 16 * GiB)
    assert (a.requestedCpuCores, a.requestedMemoryBytes, a.pods) == (1.0, 2 * GiB, 2)
    assert (a.usedCpuCores, a.usedMemoryBytes) == (1.0, 4 * GiB)
    # free = the tighter of allocatable − requested (3 cores, 14Gi) and measured (3 idle, 12Gi)
    assert (a.freeCpuCores, a.freeMemoryBytes) == (3.0, 12 * GiB)
    assert a.fullestDisk is not None
    assert (a.fullestDisk.path, a.fullestDisk.usedPercent) == ("/var/lib", 85.0)
    assert (a.reportAgeSeconds, a.stale, a.notes) == (10.0, False, [])
    b = nodes["node-b"]
    # max(250m, 2 init) = 2 cores; max(256Mi, 128Mi) = 256Mi
    assert (b.requestedCpuCores, b.requestedMemoryBytes, b.pods) == (2.0, 256 * 2**20, 1)
    assert (b.freeCpuCores, b.freeMemoryBytes) == (3.0, 12 * GiB)  # measured is tighter
    assert b.stale and b.notes[0].startswith("stale report: 300s old")
    assert nodes["node-c"].notes == ["cordoned"]
    assert nodes["node-c"].schedulable is False
    assert nodes["node-d"].notes == ["no ResourceReport", "not Ready"]
    assert nodes["node-d"].usedCpuCores is None and nodes["node-d"].freeCpuCores == 4.0
    gone = nodes["gone"]
    assert gone.notes == ["no Node"] and gone.allocatableCpuCores is None
    s = view.summary
    assert (s.nodes, s.staleNodes) == (5, 1)
    assert (s.allocatableCpuCores, s.requestedCpuCores, s.usedCpuCores) == (20.0, 3.0, 4.0)
    assert s.allocatableMemoryBytes == (16 + 32 + 16 + 16) * GiB
    assert (s.experts, s.expertsWithRecommendation, s.additionalReplicas) == (2, 1, 7)


@pytest.mark.requirement("FR-007", "CT-002")
def test_the_controllers_stale_condition_marks_a_fresh_looking_report_stale() -> None:
    builder = ReportBuilder(now=NOW)
    body = measured("node-a", age=5)
    body["status"]["conditions"] = [{"type": "Stale", "status": "True", "reason": "NoHeartbeat"}]
    builder.add_report(body)
    (row,) = builder.build().nodes
    assert row.stale and any("Stale condition" in n for n in row.notes)


@pytest.mark.requirement("FR-007")
def test_a_node_selector_shows_only_the_listed_nodes() -> None:
    builder = ReportBuilder(now=NOW, listed_nodes_only=True, node_selector="pool=gpu")
    builder.add_node(node("node-a"))
    builder.add_pod(pod("x", "rs", "node-z"))
    builder.add_report(measured("node-z"))
    builder.add_report(measured("node-a"))
    view = builder.build()
    assert [n.name for n in view.nodes] == ["node-a"]
    assert view.summary.requestedCpuCores == 0.0


@pytest.mark.requirement("FR-007")
def test_malformed_objects_are_skipped_and_named() -> None:
    builder = ReportBuilder(now=NOW)
    bad = measured("node-a")
    bad["status"]["cpu"]["utilizationPercent"] = 250
    builder.add_report(bad)
    broken_pod = pod("p", "rs", "node-a", cpu="lots")
    builder.add_pod(broken_pod)
    assert builder.build().nodes == []
    assert builder.skipped[0].startswith("ResourceReport node-a")
    assert builder.skipped[1].startswith("pod team/pod-p")


@pytest.mark.requirement("FR-007")
def test_experts_show_current_recommended_fit_and_why_not_yet() -> None:
    view = cluster().build()
    assert [(e.namespace, e.name) for e in view.experts] == [
        ("alpha", "expert-b"),
        ("team", "expert-a"),
    ]
    waiting, ready = view.experts
    assert waiting.recommended is None and waiting.message == "no samples yet"
    assert ready.current is not None and ready.recommended is not None and ready.fit is not None
    assert (ready.current.replicas, ready.recommended.replicas) == (2, 3)
    assert (ready.current.cpuRequest, ready.recommended.cpuRequest) == ("500m", "250m")
    assert ready.fit.additionalReplicas == 7
    assert ready.conditions == {"Ready": "True"}


@pytest.mark.requirement("FR-007")
def test_json_and_yaml_have_every_key_and_read_back() -> None:
    view = cluster().build()
    data = json.loads(serialise(view, "json"))
    assert data["kind"] == "HeadroomReport" and data["version"] == 1
    assert set(data) == {
        "kind",
        "version",
        "readAt",
        "nodeSelector",
        "namespace",
        "summary",
        "nodes",
        "experts",
    }
    d = next(n for n in data["nodes"] if n["name"] == "node-d")
    assert d["usedCpuCores"] is None and d["fullestDisk"] is None  # null, not missing
    assert ClusterReport.model_validate(data) == view
    import yaml

    assert yaml.safe_load(serialise(view, "yaml")) == data


@pytest.mark.requirement("FR-007")
def test_plain_table_marks_stale_rows_and_holds_the_figures() -> None:
    text = render_tables(cluster().build())
    assert "\x1b[" not in text  # not a terminal: no escape codes
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    a = lines["node-a"].split()
    # NODE, CPU ALLOC, CPU REQ (share), CPU USED (share), CPU FREE, MEM ALLOC, ...
    assert a[:9] == ["node-a", "4.00", "1.00", "(25%)", "1.00", "(25%)", "3.00", "16.0Gi", "2.0Gi"]
    assert "85% /var/lib" in lines["node-a"] and "10s" in lines["node-a"]
    assert "5m STALE" in lines["node-b"]
    assert "STALE" not in lines["node-a"]
    expert = lines["team/expert-a"]
    assert re.search(r"2 → 3\s+500m → 250m\s+1Gi → 768Mi\s+7\s+node-b=4, node-a=3", expert)
    assert "no samples yet" in lines["alpha/expert-b"]
    assert "5 nodes (1 stale)" in text and "7 more replicas fit" in text


@pytest.mark.requirement("FR-007")
def test_terminal_table_colours_stale_rows() -> None:
    text = render_tables(cluster().build(), terminal=True)
    stale = next(line for line in text.splitlines() if "node-b" in line and "STALE" in line)
    assert "\x1b[1;31m" in stale  # bold red
    fresh = next(line for line in text.splitlines() if "node-a" in line and "4.00" in line)
    assert "\x1b[1;31m" not in fresh


@pytest.mark.requirement("FR-007")
def test_html_is_self_contained_and_escapes_cluster_strings() -> None:
    builder = cluster()
    builder.add_recommendation(recommendation("team", "expert-x", "<img src=x onerror=alert(1)>"))
    page = render_html(builder.build(), source="https://10.0.0.1:6443")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # no network at view time: nothing fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert "<time id='read-at' datetime='2025-03-01T12:00:00+00:00'>" in page


@pytest.mark.requirement("FR-007")
def test_html_rows_carry_their_figures_for_sorting_and_the_stale_class() -> None:
    page = render_html(cluster().build())
    (stale,) = re.findall(r'<tr class="stale" data-node="([^"]+)">', page)
    assert stale == "node-b"
    row = page.split('data-node="node-a">', 1)[1].split("</tr>", 1)[0]
    assert '<td data-sort="3.0">3.00</td>' in row  # CPU free
    assert f'<td data-sort="{12 * GiB}">12.0Gi</td>' in row  # memory free


@pytest.mark.requirement("FR-007")
def test_an_unreadable_kubeconfig_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from headroom.cli import main

    assert main(["report", "--kubeconfig", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("headroom report: cannot read kubeconfig") and err.count("\n") == 1


@pytest.mark.requirement("FR-007")
def test_the_table_shows_provisional_figures_and_hpa_bounds_as_kubectl_does() -> None:
    """The REC side reads as `kubectl get caprec` does: ~ until Confident, hpa:min-max
    where an HPA owns the replicas (the controller's status.columns)."""
    builder = cluster()
    provisional = recommendation("team", "expert-h")
    provisional["status"]["columns"] = {
        "replicas": "~hpa:2-6",
        "cpuRequest": "~250m",
        "memoryRequest": "~768Mi",
    }
    builder.add_recommendation(provisional)
    view = builder.build()
    expert = next(e for e in view.experts if e.name == "expert-h")
    assert expert.columns is not None and expert.columns.replicas == "~hpa:2-6"
    lines = {line.split()[0]: line for line in render_tables(view).splitlines() if line.strip()}
    assert re.search(r"2 → ~hpa:2-6\s+500m → ~250m\s+1Gi → ~768Mi", lines["team/expert-h"])
    # Without columns (an older controller), the plain figures as before.
    assert re.search(r"2 → 3\s+500m → 250m\s+1Gi → 768Mi", lines["team/expert-a"])
