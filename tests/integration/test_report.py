"""``headroom report`` / ``kubectl headroom`` against the real API server (FR-007).

Four simulated nodes (their own label, so other tests' nodes stay out), pods
bound to them, agents writing reports with chosen figures, and two
CapacityRecommendations written as the controller writes them. Every figure
checked below is worked out by hand from those inputs:

============  =========  ====================  ================  ===========================
node          alloc      requested (pods)      used (report)     free = min(alloc−req, idle)
============  =========  ====================  ================  ===========================
A             4, 16Gi    2×(500m, 1Gi) = 1,2Gi  25 % → 1, 4Gi     min(3, 3) = 3, min(14, 12) = 12Gi
B             8, 32Gi    250m, 512Mi           50 % → 4, 24Gi    min(7.75, 4) = 4, min(31.5, 8) = 8Gi
C (stale)     4, 16Gi    –                     75 % → 3, 4Gi     min(4, 1) = 1, 12Gi
D (cordoned)  2, 8Gi     –                     no report         2, 8Gi
============  =========  ====================  ================  ===========================

A also holds a Succeeded pod (not counted) and the cluster an unbound pod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from headroom.agent.reports import report_path
from headroom.controller.writer import recommendation_path
from headroom.kube.client import KubeClient
from headroom.kube.config import load_config
from headroom.report.fetch import list_pages
from headroom.report.pods_protobuf import decode_pod_page
from tests.controlplane.cluster import ControlPlane
from tests.integration.browser import dump_dom, parse_dom, screenshot
from tests.integration.cluster_sim import GiB, MiB, SimulatedAgent, create_expert, ensure_namespace
from tests.integration.kube_helpers import create_node, unique

REPO = Path(__file__).resolve().parents[2]
MERGE = "application/merge-patch+json"
POOL_LABEL = "headroom.dev/test-pool"


def label_node(cp: ControlPlane, name: str, pool: str) -> None:
    cp.api(
        "PATCH",
        f"/api/v1/nodes/{name}",
        {"metadata": {"labels": {POOL_LABEL: pool}}},
        content_type=MERGE,
    )


def write_recommendation(
    cp: ControlPlane, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """A CapacityRecommendation as the controller writes one (create, then /status)."""
    path = recommendation_path(namespace, name)
    created = cp.api(
        "POST",
        path.rsplit("/", 1)[0],
        {
            "apiVersion": "headroom.dev/v1alpha1",
            "kind": "CapacityRecommendation",
            "metadata": {"name": name},
            "spec": {"targetRef": {"name": name}},
        },
    )
    created["status"] = status
    cp.api("PUT", f"{path}/status", created)


def sizing(replicas: int, cpu: str, cores: float, memory: str, mem_bytes: int) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "cpuRequestCores": cores,
        "cpuRequest": cpu,
        "memoryRequestBytes": mem_bytes,
        "memoryRequest": memory,
    }


def recommended(
    replicas: int, cpu: str, cores: float, memory: str, mem_bytes: int
) -> dict[str, Any]:
    return {
        **sizing(replicas, cpu, cores, memory, mem_bytes),
        "replicasReason": f"{replicas} replicas <of> target",  # '<' must come out escaped
        "cpuReason": "p95 + 15%",
        "memoryReason": "peak + 15%",
    }


@pytest.fixture(scope="module")
def sim(control_plane: ControlPlane) -> dict[str, Any]:
    cp = control_plane
    pool = unique("pool")
    a, b, c, d = (unique(f"rep-{x}") for x in "abcd")
    create_node(cp, a, cpu="4", memory="16Gi")
    create_node(cp, b, cpu="8", memory="32Gi")
    create_node(cp, c, cpu="4", memory="16Gi")
    create_node(cp, d, cpu="2", memory="8Gi", unschedulable=True)
    for name in (a, b, c, d):
        label_node(cp, name, pool)
    ns = unique("report")
    create_expert(cp, ns, "expert-a", replicas=2, nodes=[a], cpu="500m", memory="1Gi")
    create_expert(cp, ns, "expert-b", replicas=1, nodes=[b], cpu="250m", memory="512Mi")
    # A finished pod on A (not counted) and an unbound one (not counted anywhere).
    ensure_namespace(cp, ns)
    container = {"name": "c", "image": "x.invalid/x:1", "resources": {"requests": {"cpu": "3"}}}
    done = cp.api(
        "POST",
        f"/api/v1/namespaces/{ns}/pods",
        {"metadata": {"name": "finished"}, "spec": {"nodeName": a, "containers": [container]}},
    )
    done["status"] = {"phase": "Succeeded"}
    cp.api("PUT", f"/api/v1/namespaces/{ns}/pods/finished/status", done)
    cp.api(
        "POST",
        f"/api/v1/namespaces/{ns}/pods",
        {"metadata": {"name": "unbound"}, "spec": {"containers": [container]}},
    )
    SimulatedAgent(cp, a, cores=4, cpu_percent=25.0).report()
    SimulatedAgent(
        cp, b, cores=8, cpu_percent=50.0, memory_total=32 * GiB, memory_available=8 * GiB
    ).report()
    SimulatedAgent(cp, c, cores=4, cpu_percent=75.0).report()
    # C's agent stopped 10 minutes ago: 600 s > 3 × 60 s heartbeat.
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    cp.api(
        "PATCH", f"{report_path(c)}/status", {"status": {"collectedAt": old}}, content_type=MERGE
    )
    write_recommendation(
        cp,
        ns,
        "expert-a",
        {
            "current": sizing(2, "500m", 0.5, "1Gi", GiB),
            "recommended": recommended(3, "250m", 0.25, "768Mi", 768 * MiB),
            "fit": {
                "additionalReplicas": 28,
                "nodes": [
                    {"node": b, "replicas": 10, "limitedBy": "memory"},
                    {"node": a, "replicas": 12, "limitedBy": "cpu"},
                ],
                "fittingNodeCount": 2,
                "excludedNodes": [{"node": c, "reason": "stale report"}],
                "excludedNodeCount": 2,
            },
        },
    )
    write_recommendation(
        cp,
        ns,
        "expert-b",
        {
            "current": sizing(1, "250m", 0.25, "512Mi", 512 * MiB),
            "recommended": recommended(1, "100m", 0.1, "256Mi", 256 * MiB),
            "fit": {"additionalReplicas": 0, "nodes": [], "fittingNodeCount": 0},
        },
    )
    return {
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "pool": pool,
        "ns": ns,
        "selector": f"{POOL_LABEL}={pool}",
    }


def headroom(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "headroom.cli", "report", *args, "--kubeconfig", str(cp.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


EXPECTED_NODES = {
    # name: (alloc cpu, alloc mem, req cpu, req mem, pods, used cpu, used mem, free cpu, free mem)
    "a": (4.0, 16 * GiB, 1.0, 2 * GiB, 2, 1.0, 4 * GiB, 3.0, 12 * GiB),
    "b": (8.0, 32 * GiB, 0.25, 512 * MiB, 1, 4.0, 24 * GiB, 4.0, 8 * GiB),
    "c": (4.0, 16 * GiB, 0.0, 0, 0, 3.0, 4 * GiB, 1.0, 12 * GiB),
    "d": (2.0, 8 * GiB, 0.0, 0, 0, None, None, 2.0, 8 * GiB),
}


def check_json(data: dict[str, Any], sim: dict[str, Any]) -> None:
    assert data["kind"] == "HeadroomReport" and data["version"] == 1
    assert data["nodeSelector"] == sim["selector"] and data["namespace"] == sim["ns"]
    nodes = {n["name"]: n for n in data["nodes"]}
    assert sorted(nodes) == sorted(sim[k] for k in "abcd")
    for key, figures in EXPECTED_NODES.items():
        n = nodes[sim[key]]
        got = (
            n["allocatableCpuCores"],
            n["allocatableMemoryBytes"],
            n["requestedCpuCores"],
            n["requestedMemoryBytes"],
            n["pods"],
            n["usedCpuCores"],
            n["usedMemoryBytes"],
            n["freeCpuCores"],
            n["freeMemoryBytes"],
        )
        assert got == figures, key
    assert [nodes[sim[k]]["stale"] for k in "abcd"] == [False, False, True, False]
    assert nodes[sim["c"]]["notes"][0].startswith("stale report: 6")
    assert nodes[sim["d"]]["notes"] == ["no ResourceReport", "cordoned"]
    assert nodes[sim["a"]]["fullestDisk"] == {"path": "/", "usedPercent": 40.0}
    assert 0 <= nodes[sim["a"]]["reportAgeSeconds"] < 120
    s = data["summary"]
    assert (s["nodes"], s["staleNodes"], s["experts"], s["additionalReplicas"]) == (4, 1, 2, 28)
    assert (s["allocatableCpuCores"], s["requestedCpuCores"], s["usedCpuCores"]) == (
        18.0,
        1.25,
        8.0,
    )
    experts = {e["name"]: e for e in data["experts"]}
    assert sorted(experts) == ["expert-a", "expert-b"]
    a = experts["expert-a"]
    assert (a["current"]["replicas"], a["recommended"]["replicas"]) == (2, 3)
    assert (a["current"]["cpuRequest"], a["recommended"]["cpuRequest"]) == ("500m", "250m")
    assert (a["current"]["memoryRequest"], a["recommended"]["memoryRequest"]) == ("1Gi", "768Mi")
    assert a["fit"]["additionalReplicas"] == 28
    assert [(n["node"], n["replicas"]) for n in a["fit"]["nodes"]] == [
        (sim["b"], 10),
        (sim["a"], 12),
    ]


@pytest.mark.requirement("FR-007", "CT-002")
def test_report_json_yaml_and_table(control_plane: ControlPlane, sim: dict[str, Any]) -> None:
    cp, sel, ns = control_plane, sim["selector"], sim["ns"]
    data = json.loads(headroom(cp, "-l", sel, "-n", ns, "-o", "json").stdout)
    check_json(data, sim)
    as_yaml = yaml.safe_load(headroom(cp, "-l", sel, "-n", ns, "-o", "yaml").stdout)
    for doc in (data, as_yaml):  # read at different moments: ages differ
        doc.pop("readAt")
        for n in doc["nodes"]:
            n.pop("reportAgeSeconds")
            # A stale node's note names its age, which moves between the two reads.
            n["notes"] = [re.sub(r"\d+s old", "…s old", note) for note in n["notes"]]
    assert as_yaml == data

    table = headroom(cp, "-l", sel, "-n", ns).stdout
    assert "\x1b[" not in table  # a pipe, not a terminal: plain text
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    # NODE CPU-ALLOC CPU-REQ (share) CPU-USED (share) CPU-FREE MEM-ALLOC MEM-REQ (share) ...
    assert rows[sim["a"]][:11] == [
        sim["a"],
        "4.00",
        "1.00",
        "(25%)",
        "1.00",
        "(25%)",
        "3.00",
        "16.0Gi",
        "2.0Gi",
        "(12%)",
        "4.0Gi",
    ]
    assert rows[sim["b"]][:11] == [
        sim["b"],
        "8.00",
        "0.25",
        "(3%)",
        "4.00",
        "(50%)",
        "4.00",
        "32.0Gi",
        "512.0Mi",
        "(2%)",
        "24.0Gi",
    ]
    assert rows[sim["c"]][1:7] == ["4.00", "0.00", "(0%)", "3.00", "(75%)", "1.00"]
    assert "STALE" in " ".join(rows[sim["c"]]) and "STALE" not in " ".join(rows[sim["a"]])
    assert rows[sim["d"]][-4:] == ["-", "no", "ResourceReport;", "cordoned"]
    assert (
        " ".join(rows[f"{ns}/expert-a"][1:13])
        == f"2 → 3 500m → 250m 1Gi → 768Mi 28 {sim['b']}=10, {sim['a']}=12"
    )
    assert " ".join(rows[f"{ns}/expert-b"][1:12]) == "1 → 1 250m → 100m 512Mi → 256Mi 0 nowhere"
    assert "4 nodes (1 stale)" in table and "28 more replicas fit" in table

    experts_only = json.loads(headroom(cp, "experts", "-n", ns, "-o", "json").stdout)
    assert experts_only["nodes"] == [] and len(experts_only["experts"]) == 2


@pytest.mark.requirement("FR-007")
def test_pods_as_protobuf_and_as_json_give_the_same_report(
    control_plane: ControlPlane, sim: dict[str, Any]
) -> None:
    """The default reads Pods as protobuf; ``--pods-encoding json`` must agree figure for figure."""
    cp, sel, ns = control_plane, sim["selector"], sim["ns"]
    read = {
        encoding: json.loads(
            headroom(cp, "-l", sel, "-n", ns, "-o", "json", "--pods-encoding", encoding).stdout
        )
        for encoding in ("json", "protobuf")
    }
    for data in read.values():
        check_json(data, sim)
        for node in data["nodes"]:
            del node["reportAgeSeconds"], node["notes"]  # the clock moved between the runs
        del data["readAt"]
    assert read["protobuf"] == read["json"]

    # The real server answers protobuf to the Pods list (not a silent JSON fallback).
    config = load_config(cp.kubeconfig)
    decoded: list[int] = []

    def decode(body: bytes) -> tuple[list[dict[str, Any]], str]:
        items, token = decode_pod_page(body)
        decoded.append(len(items))
        return items, token

    params = {"fieldSelector": f"metadata.namespace={ns}"}
    pods = [
        pod
        for page in list_pages(KubeClient(config), "/api/v1/pods", params, decode_protobuf=decode)
        for pod in page
    ]
    assert decoded and sum(decoded) == len(pods) >= 5  # 3 expert replicas, finished, unbound
    assert {"finished", "unbound"} <= {pod["metadata"]["name"] for pod in pods}


@pytest.mark.requirement("FR-007")
def test_kubectl_headroom_plugin(control_plane: ControlPlane, sim: dict[str, Any]) -> None:
    """``kubectl headroom`` with the real kubectl: the plugin is found on PATH, args pass through."""
    plugin = shutil.which("kubectl-headroom", path=str(Path(sys.executable).parent))
    assert plugin, "kubectl-headroom not installed in the venv (uv sync)"
    kubectl = control_plane.clients.kubectl
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(Path(plugin).parent), str(kubectl.parent), os.environ.get("PATH", "")]
        ),
        "KUBECONFIG": str(control_plane.kubeconfig),
    }
    listed = subprocess.run(
        [str(kubectl), "plugin", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert "kubectl-headroom" in listed.stdout, listed.stderr
    result = subprocess.run(
        [str(kubectl), "headroom", "-l", sim["selector"], "-n", sim["ns"], "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check_json(json.loads(result.stdout), sim)


def _float(el_attrs: dict[str, str], key: str) -> float:
    return float(el_attrs[key])


@pytest.mark.requirement("FR-007")
def test_html_page_in_headless_chromium(
    control_plane: ControlPlane, sim: dict[str, Any], tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = headroom(control_plane, "-l", sim["selector"], "-n", sim["ns"], "--html", str(page))
    assert result.stdout == "" and "4 nodes, 2 experts" in result.stderr
    text = page.read_text(encoding="utf-8")
    assert "&lt;of&gt;" in text and "<of>" not in text  # cluster strings escaped

    dom = parse_dom(dump_dom(f"{page.as_uri()}?sort=nodes:cpu-free:desc", tmp_path / "profile"))
    (time,) = dom.find_all("time", id="read-at")
    read_at = datetime.fromisoformat(time.attrs["datetime"])
    assert abs((datetime.now(UTC) - read_at).total_seconds()) < 300

    # Node headroom chart: one CPU and one memory bar per node, widths in proportion.
    (chart,) = dom.find_all("svg", id="node-chart")
    bars = {
        (g.attrs["data-node"], g.attrs["data-resource"]): g
        for g in chart.find_all("g", class_="node-bar")
    }
    assert len(bars) == 8
    track = _float(bars[(sim["a"], "cpu")].find_all("rect", class_="track")[0].attrs, "width")
    for key, (acpu, amem, rcpu, rmem, _, ucpu, umem, fcpu, fmem) in EXPECTED_NODES.items():
        for resource, alloc, req, used, free in (
            ("cpu", acpu, rcpu, ucpu, fcpu),
            ("memory", amem, rmem, umem, fmem),
        ):
            g = bars[(sim[key], resource)]
            assert _float(g.attrs, "data-allocatable") == alloc
            assert _float(g.attrs, "data-requested") == req
            assert _float(g.attrs, "data-free") == free
            assert g.attrs.get("data-used") == (None if used is None else str(used))
            (req_rect,) = g.find_all("rect", class_="requested")
            assert _float(req_rect.attrs, "width") == pytest.approx(req / alloc * track, abs=0.1)
            (used_rect,) = g.find_all("rect", class_="used")
            assert _float(used_rect.attrs, "width") == pytest.approx(
                (used or 0) / alloc * track, abs=0.1
            )
    assert "cpu: 1.00 req, 1.00 used, 3.00 free of 4.00 cores" in bars[(sim["a"], "cpu")].text
    assert (
        "memory: 512.0Mi req, 24.0Gi used, 8.0Gi free of 32.0Gi" in bars[(sim["b"], "memory")].text
    )

    # Expert charts: current vs recommended per expert, bars scaled to the largest figure.
    expected = {
        "replicas": {"expert-a": (2, 3), "expert-b": (1, 1)},
        "cpu": {"expert-a": (0.5, 0.25), "expert-b": (0.25, 0.1)},
        "memory": {"expert-a": (GiB, 768 * MiB), "expert-b": (512 * MiB, 256 * MiB)},
    }
    for metric, figures in expected.items():
        (svg,) = dom.find_all("svg", id=f"expert-chart-{metric}")
        pairs = {g.attrs["data-expert"].split("/")[1]: g for g in svg.find_all("g", class_="pair")}
        assert sorted(pairs) == sorted(figures)
        scale = max(v for pair in figures.values() for v in pair)
        for name, (cur, rec) in figures.items():
            (c_rect,) = pairs[name].find_all("rect", class_="current")
            (r_rect,) = pairs[name].find_all("rect", class_="recommended")
            assert (_float(c_rect.attrs, "data-value"), _float(r_rect.attrs, "data-value")) == (
                cur,
                rec,
            )
            assert _float(r_rect.attrs, "width") == pytest.approx(rec / scale * track, abs=0.1)
    assert "recommended 768Mi" in dom.find_all("svg", id="expert-chart-memory")[0].text

    # Tables: the URL asked for CPU free, descending; the script sorted on load.
    (nodes_table,) = dom.find_all("table", id="nodes")
    (th,) = nodes_table.find_all("th", data_key="cpu-free")
    assert th.attrs.get("aria-sort") == "descending"
    order = [tr.attrs["data-node"] for tr in nodes_table.find_all("tr") if "data-node" in tr.attrs]
    assert order == [sim["b"], sim["a"], sim["d"], sim["c"]]  # free 4, 3, 2, 1
    (stale_row,) = [
        tr for tr in nodes_table.find_all("tr") if tr.attrs.get("data-node") == sim["c"]
    ]
    assert "stale" in stale_row.classes() and "STALE" in stale_row.text
    cells = [td.text for td in nodes_table.find_all("tr", data_node=sim["a"])[0].find_all("td")]
    assert cells[1:11] == [
        "4.00",
        "1.00 25%",
        "1.00 25%",
        "3.00",
        "16.0Gi",
        "2.0Gi 12%",
        "4.0Gi 25%",
        "12.0Gi",
        "2",
        "40% /",
    ]
    (experts_table,) = dom.find_all("table", id="experts")
    row = experts_table.find_all("tr", data_expert=f"{sim['ns']}/expert-a")[0]
    assert [td.text for td in row.find_all("td")][:6] == [
        f"{sim['ns']}/expert-a",
        "2 → 3",
        "500m → 250m",
        "1Gi → 768Mi",
        "28",
        f"{sim['b']}=10, {sim['a']}=12",
    ]

    # The screenshot: the page rendered, with the charts' colours on it.
    from PIL import Image

    png = screenshot(page.as_uri(), tmp_path / "report.png", tmp_path / "profile", (1280, 1500))
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1280, 1500)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    counts = {colour: n for n, colour in colours}
    assert len(counts) > 50  # text, bars, table rules: not a blank page
    assert counts.get((0x5B, 0x8D, 0xEF), 0) > 100  # requested bars
    assert counts.get((0x2D, 0xA4, 0x4E), 0) > 100  # recommended bars
    if os.environ.get("HEADROOM_UPDATE_SCREENSHOT"):
        shutil.copyfile(png, REPO / "docs" / "report.png")
