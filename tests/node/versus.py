"""Headroom and VPA's recommender side by side on the same real pods (issue 16).

Workloads whose load we set, so the right answer is known; both tools watch them from
the start; at fixed times each tool's advice is put beside the truth. Used by
``benchmarks/versus_vpa.py`` (5 to 60 minutes) and, shorter, by
``tests/node/test_versus.py``.

**The truth.** A container's *need* is what its load is set to: CPU at its busiest
(the steady share; the busy half of a cycle; for the expert under an HPA, the total
load divided by the replicas running), memory the bytes it holds at most plus the
interpreter's own working set (a baseline pod with no load, measured by the kubelet's
cAdvisor). The *right request* is the need plus the 15 % margin both tools add by
default (Headroom's ``cpuMarginPercent``/``memoryMarginPercent``, VPA's
``--recommendation-margin-fraction``): a tool that estimates the need exactly lands on
it, so the errors shown are errors of estimation. "Within 15 %" is within 15 % of the
right request.

**As set.** What the workload would get if the advice were applied: Headroom's memory
limit is its recommended limit; VPA's updater keeps the limit-to-request ratio of the
Deployment (here 1: memory limit = request), so its limit is its target. ``OOM`` when
that limit is below the memory need, ``CPU short`` when the CPU request is below the
CPU need (no CPU limits here, so nothing is throttled by CFS; a short request is what
the pod is guaranteed under contention).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._proc import ProcessSampler, format_table, percentile
from tests.chart_render import CHART_DIR, set_args
from tests.controlplane.cluster import ApiError, ControlPlane, wait_until
from tests.integration.chart_release import create_namespace
from tests.node.burner import BURNER
from tests.node.node import Node
from tests.node.peers import METRICS_API, VPA_API, Peers, kubectl_top_pods, vpa_object

from headroom.agent.reports import report_path
from headroom.recommend.quantities import format_cpu, parse_cpu_cores, parse_memory_bytes

MiB = 2**20
MARGIN = 0.15
WITHIN = 0.15
NAMESPACE = "versus"
HEADROOM_NS = "headroom-system"
RELEASE = "headroom"
EXPERT_LABEL = ("headroom.dev/expert", "true")
BASELINE = "baseline"

# --- the workloads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """How fast the run goes: the cycle and growth lengths, when to compare, how often."""

    cycle_s: float
    grow_s: float
    checkpoints_s: tuple[float, ...]
    sample_s: float
    agent_interval_s: int
    vpa_interval_s: int
    metric_resolution_s: int = 15


#: A few minutes: both tools on short loops (Headroom's agent every 5 s, VPA's every 15 s).
QUICK = Pace(
    cycle_s=120,
    grow_s=90,
    checkpoints_s=(120, 240, 360),
    sample_s=5,
    agent_interval_s=5,
    vpa_interval_s=15,
)
#: An hour at both tools' defaults (agent 15 s, recommender 1 min; metrics-server 15 s as
#: its manifests set it); the cycle is ten minutes, the growth five.
FULL = Pace(
    cycle_s=600,
    grow_s=300,
    checkpoints_s=(300, 900, 1800, 3600),
    sample_s=10,
    agent_interval_s=15,
    vpa_interval_s=60,
)


@dataclass(frozen=True)
class Load:
    """One container's load, as set."""

    name: str
    cpu: float
    mib: int
    quiet_cpu: float | None = None
    start_mib: int | None = None
    grow_s: float | None = None
    limit_mib: int | None = None  # memory request = limit; default twice the load
    crashes: bool = False  # OOM-killed over and over: its CPU is not scored


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    containers: tuple[Load, ...]
    cpu_request: str = "50m"
    hpa_total_cpu: float | None = None
    hpa_target_percent: int = 100
    hpa_max: int = 6

    def truth_replicas(self) -> int:
        """The replicas the load needs: one pod of the right size carries each workload's
        load, but the HPA's, whose pods are sized by their request and its target."""
        if self.hpa_total_cpu is None:
            return 1
        per_pod = parse_cpu_cores(self.cpu_request) * self.hpa_target_percent / 100
        return math.ceil(round(self.hpa_total_cpu / per_pod, 6))


WORKLOADS: tuple[Workload, ...] = (
    Workload("steady", "0.15 cores, 256 MiB, all the time", (Load("app", 0.15, 256),)),
    Workload(
        "cycle",
        "0.30 cores busy, 0.03 quiet, half a cycle each; 128 MiB",
        (Load("app", 0.30, 128, quiet_cpu=0.03),),
    ),
    Workload(
        "grow",
        "memory 64 -> 320 MiB, then holds; 0.03 cores",
        (Load("app", 0.03, 320, start_mib=64),),
    ),
    Workload(
        "oomkill",
        "needs 192 MiB, limit 128 Mi: OOM-killed, restarts",
        (Load("app", 0.03, 192, start_mib=0, grow_s=30, limit_mib=128, crashes=True),),
    ),
    Workload(
        "duo",
        "app 0.10 cores 192 MiB + sidecar 0.04 cores 48 MiB",
        (Load("app", 0.10, 192), Load("sidecar", 0.04, 48)),
    ),
    Workload(
        "hpa",
        "0.30 cores split over the replicas; HPA at 100 % of 100m",
        (Load("app", 0.0, 64),),
        cpu_request="100m",
        hpa_total_cpu=0.30,
    ),
)


def deployment(
    workload: Workload, image: str, pace: Pace, share_dir: Path, *, expert: bool = True
) -> dict[str, Any]:
    labels = {"app": workload.name}
    meta_labels = {**labels, **({EXPERT_LABEL[0]: EXPERT_LABEL[1]} if expert else {})}
    containers = []
    volumes = []
    for load in workload.containers:
        env: dict[str, str | float] = {"CPU_SHARE": load.cpu, "MEMORY_MIB": load.mib}
        if load.quiet_cpu is not None:
            env |= {"CPU_QUIET": load.quiet_cpu, "PERIOD_S": pace.cycle_s}
        if load.start_mib is not None:
            env |= {"START_MIB": load.start_mib, "GROW_S": load.grow_s or pace.grow_s}
        mounts = []
        if workload.hpa_total_cpu is not None:
            env |= {"SHARE_DIR": "/share", "TOTAL_CPU": workload.hpa_total_cpu}
            mounts = [{"name": "share", "mountPath": "/share"}]
            volumes = [
                {
                    "name": "share",
                    "hostPath": {
                        "path": str(share_dir / workload.name),
                        "type": "DirectoryOrCreate",
                    },
                }
            ]
        limit = load.limit_mib or 2 * (load.mib + 16)
        containers.append(
            {
                "name": load.name,
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", BURNER],
                "env": [{"name": k, "value": str(v)} for k, v in env.items()],
                "resources": {
                    "requests": {"cpu": workload.cpu_request, "memory": f"{limit}Mi"},
                    "limits": {"memory": f"{limit}Mi"},
                },
                "volumeMounts": mounts,
            }
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload.name, "namespace": NAMESPACE, "labels": meta_labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "containers": containers,
                    "volumes": volumes,
                },
            },
        },
    }


def hpa_object(workload: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload.name, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": workload.name,
            },
            "minReplicas": 1,
            "maxReplicas": workload.hpa_max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": workload.hpa_target_percent,
                        },
                    },
                }
            ],
        },
    }


# --- what each tool says ------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    """One tool's requests for one container, with bounds and the memory limit it implies."""

    cpu: float | None
    mem: int | None
    cpu_lo: float | None = None
    cpu_hi: float | None = None
    mem_lo: int | None = None
    mem_hi: int | None = None
    mem_limit: int | None = None


def headroom_advice(caprec: Mapping[str, Any] | None, container: str) -> Advice | None:
    status = (caprec or {}).get("status") or {}
    entries = {c["name"]: c for c in status.get("containers") or []}
    rec = (entries.get(container) or {}).get("recommended")
    if not rec:
        return None
    bounds = (status.get("recommended") or {}).get("bounds") or {}
    factor = float(bounds.get("factor") or 1.0)
    cpu, mem = float(rec["cpuRequestCores"]), int(rec["memoryRequestBytes"])
    peak = int(entries[container].get("memoryPeakBytes") or 0)
    return Advice(
        cpu=cpu,
        mem=mem,
        cpu_lo=cpu / factor,
        cpu_hi=cpu * factor,
        mem_lo=max(int(mem / factor), min(peak, mem)),
        mem_hi=int(mem * factor),
        mem_limit=int(rec.get("memoryLimitBytes") or mem),
    )


def vpa_advice(vpa: Mapping[str, Any] | None, container: str) -> Advice | None:
    recs = ((vpa or {}).get("status") or {}).get("recommendation") or {}
    for rec in recs.get("containerRecommendations") or []:
        if rec.get("containerName") == container and rec.get("target"):

            def cpu(key: str, rec: Mapping[str, Any] = rec) -> float | None:
                value = (rec.get(key) or {}).get("cpu")
                return None if value is None else parse_cpu_cores(value)

            def mem(key: str, rec: Mapping[str, Any] = rec) -> int | None:
                value = (rec.get(key) or {}).get("memory")
                return None if value is None else parse_memory_bytes(value)

            target_mem = mem("target")
            return Advice(
                cpu=cpu("target"),
                mem=target_mem,
                cpu_lo=cpu("lowerBound"),
                cpu_hi=cpu("upperBound"),
                mem_lo=mem("lowerBound"),
                mem_hi=mem("upperBound"),
                mem_limit=target_mem,  # the Deployments' memory limit-to-request ratio is 1
            )
    return None


def headroom_replicas(caprec: Mapping[str, Any] | None) -> str:
    status = (caprec or {}).get("status") or {}
    rec = status.get("recommended") or {}
    if not rec:
        return "(none yet)"
    hpa = rec.get("hpa")
    if hpa:
        agrees = {True: "agrees", False: "disagrees", None: "no CPU target"}[
            hpa.get("targetAgrees")
        ]
        return (
            f"HPA min {hpa['minReplicas']} max {hpa['maxReplicas']} "
            f"(now {hpa['currentMinReplicas']}-{hpa['currentMaxReplicas']}); target {agrees}"
        )
    return f"{rec['replicas']} replicas ({(status.get('columns') or {}).get('replicas', '')})"


def vpa_replicas(workload: Workload) -> str:
    """What VPA says about replicas: nothing; of an HPA on CPU, its docs say not to mix."""
    if workload.hpa_total_cpu is not None:
        return "none (its docs: no VPA on CPU with an HPA on CPU)"
    return "none (VPA sizes pods only)"


# --- the truth ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    cpu_need: float | None
    mem_need: int

    @property
    def cpu_right(self) -> float | None:
        return None if self.cpu_need is None else self.cpu_need * (1 + MARGIN)

    @property
    def mem_right(self) -> int:
        return int(self.mem_need * (1 + MARGIN))


def truth(workload: Workload, load: Load, replicas: int, base_bytes: int) -> Truth:
    if load.crashes:
        cpu: float | None = None
    elif workload.hpa_total_cpu is not None:
        cpu = workload.hpa_total_cpu / max(1, replicas)
    else:
        cpu = load.cpu
    return Truth(cpu_need=cpu, mem_need=load.mib * MiB + base_bytes)


def truth_of(workload: str, container: str, replicas: Mapping[str, int], base_bytes: int) -> Truth:
    """The truth of one container of ``WORKLOADS`` with the replicas running now."""
    w = next(w for w in WORKLOADS if w.name == workload)
    load = next(c for c in w.containers if c.name == container)
    return truth(w, load, replicas.get(workload, 1), base_bytes)


def error(value: float | None, right: float | None) -> float | None:
    if value is None or right is None or right <= 0:
        return None
    return value / right - 1


def within(value: float | None, right: float | None) -> bool:
    err = error(value, right)
    return err is not None and abs(err) <= WITHIN


def as_set(advice: Advice | None, t: Truth) -> str:
    if advice is None:
        return "-"
    problems = []
    if advice.mem_limit is not None and advice.mem_limit < t.mem_need:
        problems.append("OOM")
    if t.cpu_need is not None and advice.cpu is not None and advice.cpu < t.cpu_need:
        problems.append("CPU short")
    return ", ".join(problems) or "ok"


# --- the run --------------------------------------------------------------------------------


@dataclass
class Firsts:
    """Seconds after the start at which each tool first did something, per container."""

    rec: dict[str, float] = field(default_factory=dict)  # tool -> first advice
    cpu_within: dict[str, float] = field(default_factory=dict)
    mem_within: dict[str, float] = field(default_factory=dict)


@dataclass
class Snapshot:
    at_s: float
    replicas: dict[str, int]
    headroom: dict[tuple[str, str], Advice | None]
    vpa: dict[tuple[str, str], Advice | None]
    headroom_replicas: dict[str, str]


@dataclass
class ComponentCost:
    name: str
    rss_mib: float
    max_rss_mib: float
    cpu_cores: float
    cpu_seconds: float


@dataclass
class Result:
    pace: Pace
    base_bytes: int
    seconds: float
    snapshots: list[Snapshot]
    firsts: dict[tuple[str, str], Firsts]
    costs: list[ComponentCost]
    top_rows: list[tuple[str, ...]]
    hpa_replicas_seen: list[int]


class _Group:
    """The processes of one component (a pod's, or one host process), sampled together."""

    def __init__(self, name: str, pids: Sequence[int]) -> None:
        self.name = name
        self.samplers = [ProcessSampler(pid) for pid in pids]
        self.rss: list[int] = []

    def start(self, wall: float) -> None:
        started = []
        for s in self.samplers:
            try:
                s.start(wall)
            except OSError:  # exited meanwhile (the agent's certificate child, say)
                continue
            started.append(s)
        self.samplers = started

    def sample(self) -> None:
        total = 0
        for s in self.samplers:
            before = len(s.cost.rss_bytes)
            s.sample()
            if len(s.cost.rss_bytes) > before:
                total += s.cost.rss_bytes[-1]
        if total:
            self.rss.append(total)

    def stop(self, wall: float) -> ComponentCost:
        cpu = 0.0
        seconds = 0.0
        for s in self.samplers:
            try:
                cost = s.stop(wall)
            except OSError:
                continue
            cpu += cost.cpu_sched_seconds
            seconds = max(seconds, cost.wall_seconds)
        return ComponentCost(
            name=self.name,
            rss_mib=percentile(self.rss, 50) / MiB if self.rss else math.nan,
            max_rss_mib=max(self.rss) / MiB if self.rss else math.nan,
            cpu_cores=cpu / seconds if seconds else math.nan,
            cpu_seconds=cpu,
        )


def pod_pids(uid: str) -> list[int]:
    """Processes of the pod ``uid`` on this machine, but the pause process."""
    marks = (f"pod{uid}", f"pod{uid.replace('-', '_')}")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm != "pause" and any(m in cgroups for m in marks):
            pids.append(int(entry.name))
    return pids


def _list(cp: ControlPlane, path: str) -> dict[str, dict[str, Any]]:
    try:
        items = cp.api("GET", path)["items"]
    except ApiError:
        return {}
    return {item["metadata"]["name"]: item for item in items}


def _pods(cp: ControlPlane, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    query = f"?labelSelector={selector}" if selector else ""
    items = cp.api("GET", f"/api/v1/namespaces/{namespace}/pods{query}")["items"]
    return [p for p in items if "deletionTimestamp" not in p["metadata"]]


def _running(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("status", {}).get("phase") == "Running")


def baseline_bytes(node: Node, timeout: float = 180) -> int:
    """Working set of the idle burner's container, as the kubelet's cAdvisor reports it."""
    cp = node.cp
    pod = wait_until(
        lambda: next((p for p in _pods(cp, NAMESPACE, f"app={BASELINE}") if _running(p)), None),
        timeout=timeout,
        what="the baseline pod",
    )
    uid = pod["metadata"]["uid"]
    seen: list[int] = []

    def enough() -> bool:
        for entry in node.stats_summary().get("pods", []):
            if entry["podRef"]["uid"] == uid:
                for c in entry.get("containers", []):
                    ws = (c.get("memory") or {}).get("workingSetBytes")
                    if ws:
                        seen.append(int(ws))
        return len(seen) >= 3

    wait_until(enough, timeout=timeout, interval=3, what="cAdvisor figures of the baseline")
    return int(percentile(seen, 50))


def create_workloads(node: Node, pace: Pace, share_dir: Path) -> None:
    cp = node.cp
    image = node.images.python_name
    baseline = Workload(BASELINE, "no load: the interpreter's own", (Load("app", 0.0, 0),))
    cp.api(
        "POST",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
        deployment(baseline, image, pace, share_dir, expert=False),
    )
    for w in WORKLOADS:
        cp.api(
            "POST",
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
            deployment(w, image, pace, share_dir),
        )
        cp.api(
            "POST",
            f"{VPA_API}/namespaces/{NAMESPACE}/verticalpodautoscalers",
            vpa_object(NAMESPACE, w.name),
        )
        if w.hpa_total_cpu is not None:
            cp.api(
                "POST",
                f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers",
                hpa_object(w),
            )


def components(cp: ControlPlane, peers: Peers) -> list[_Group]:
    groups = []
    agents = _pods(cp, HEADROOM_NS, "app.kubernetes.io/component=agent")
    for pod in agents:
        groups.append(_Group("headroom agent", pod_pids(pod["metadata"]["uid"])))
    leader = _leader(cp)
    for pod in _pods(cp, HEADROOM_NS, "app.kubernetes.io/component=controller"):
        role = "leader" if pod["metadata"]["name"] == leader else "standby"
        groups.append(_Group(f"headroom controller ({role})", pod_pids(pod["metadata"]["uid"])))
    groups.append(_Group("metrics-server", [peers.pid("metrics-server")]))
    groups.append(_Group("vpa-recommender", [peers.pid("vpa-recommender")]))
    return groups


def compare(
    node: Node,
    peers: Peers,
    pace: Pace,
    *,
    until_s: float | None = None,
    echo: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> Result:
    """Create the workloads, watch both tools until the last checkpoint, print as it goes."""
    cp = node.cp
    share_dir = node.workdir / "versus-share"
    share_dir.mkdir(parents=True, exist_ok=True)
    end_s = until_s if until_s is not None else max(pace.checkpoints_s)
    checkpoints = [c for c in pace.checkpoints_s if c <= end_s] or [end_s]
    groups = components(cp, peers)
    t0 = time.monotonic()
    for g in groups:
        g.start(t0)
    create_workloads(node, pace, share_dir)
    base = baseline_bytes(node)
    echo(f"baseline working set (the interpreter's own): {base / MiB:.1f} MiB")

    keys = [(w.name, c.name) for w in WORKLOADS for c in w.containers]
    firsts = {k: Firsts() for k in keys}
    snapshots: list[Snapshot] = []
    hpa_seen: list[int] = []
    next_cp = 0
    while True:
        now = time.monotonic() - t0
        peers.check_alive()
        caprecs = _list(
            cp, f"/apis/headroom.dev/v1alpha1/namespaces/{NAMESPACE}/capacityrecommendations"
        )
        vpas = _list(cp, f"{VPA_API}/namespaces/{NAMESPACE}/verticalpodautoscalers")
        deployments = _list(cp, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
        replicas = {
            name: int((d.get("status") or {}).get("readyReplicas") or 0)
            for name, d in deployments.items()
        }
        if "hpa" in replicas:
            hpa_seen.append(replicas["hpa"])
        for g in groups:
            g.sample()
        hr: dict[tuple[str, str], Advice | None] = {}
        vp: dict[tuple[str, str], Advice | None] = {}
        for w_name, c_name in keys:
            t = truth_of(w_name, c_name, replicas, base)
            hr[(w_name, c_name)] = headroom_advice(caprecs.get(w_name), c_name)
            vp[(w_name, c_name)] = vpa_advice(vpas.get(w_name), c_name)
            f = firsts[(w_name, c_name)]
            for tool, advice in (("headroom", hr[(w_name, c_name)]), ("vpa", vp[(w_name, c_name)])):
                if advice is None:
                    continue
                f.rec.setdefault(tool, now)
                if within(advice.cpu, t.cpu_right):
                    f.cpu_within.setdefault(tool, now)
                if within(advice.mem, t.mem_right):
                    f.mem_within.setdefault(tool, now)
        while next_cp < len(checkpoints) and now >= checkpoints[next_cp]:
            snap = Snapshot(
                at_s=checkpoints[next_cp],
                replicas=replicas,
                headroom=hr,
                vpa=vp,
                headroom_replicas={
                    w.name: headroom_replicas(caprecs.get(w.name)) for w in WORKLOADS
                },
            )
            snapshots.append(snap)
            echo(checkpoint_tables(snap, base))
            next_cp += 1
        if now >= end_s:
            break
        time.sleep(max(0.0, pace.sample_s - ((time.monotonic() - t0) - now)))
    top_rows = top_versus_agent(node)
    wall = time.monotonic()
    costs = [g.stop(wall) for g in groups]
    return Result(
        pace=pace,
        base_bytes=base,
        seconds=wall - t0,
        snapshots=snapshots,
        firsts=firsts,
        costs=costs,
        top_rows=top_rows,
        hpa_replicas_seen=hpa_seen,
    )


# --- kubectl top beside the agent -----------------------------------------------------------


def top_versus_agent(node: Node) -> list[tuple[str, ...]]:
    """Per container: ``kubectl top`` (metrics-server) beside the agent's report, same moment."""
    cp = node.cp
    top = kubectl_top_pods(cp, NAMESPACE)
    report = cp.api("GET", report_path(node.name)).get("status") or {}
    agent = {p["uid"]: p for p in report.get("pods") or []}
    rows: list[tuple[str, ...]] = []
    for pod in sorted(_pods(cp, NAMESPACE), key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        entry = agent.get(pod["metadata"]["uid"]) or {}
        by_id = {c["id"]: c for c in entry.get("containers") or []}
        for status in pod.get("status", {}).get("containerStatuses") or []:
            # The report names a container by the first 12 characters of its ID.
            cid = (status.get("containerID") or "").split("://")[-1][:12]
            mine = by_id.get(cid) or {}
            cpu, mem = top.get((name, status["name"]), ("-", "-"))
            agent_cpu = mine.get("cpuCores")
            agent_mem = mine.get("memoryBytes")
            rows.append(
                (
                    f"{name}/{status['name']}",
                    cpu,
                    "-" if agent_cpu is None else f"{float(agent_cpu) * 1000:.0f}m",
                    mem,
                    "-" if agent_mem is None else f"{int(agent_mem) / MiB:.0f}Mi",
                )
            )
    return rows


# --- tables ---------------------------------------------------------------------------------


def _cpu(v: float | None) -> str:
    return "-" if v is None else format_cpu(v) if v >= 0.001 else f"{v * 1000:.2f}m"


def _mib(v: int | None) -> str:
    return "-" if v is None else f"{v / MiB:.0f}"


def _err(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.0f}%"


def _span(lo: Any, mid: str, hi: Any, fmt: Callable[[Any], str]) -> str:
    if lo is None and hi is None:
        return mid
    return f"{mid} [{fmt(lo)}..{fmt(hi)}]"


def checkpoint_tables(snap: Snapshot, base: int) -> str:
    cpu_rows, mem_rows = [], []
    for (w_name, c_name), hr in snap.headroom.items():
        t = truth_of(w_name, c_name, snap.replicas, base)
        vp = snap.vpa[(w_name, c_name)]
        label = f"{w_name}/{c_name}"
        cpu_rows.append(
            (
                label,
                _cpu(t.cpu_right),
                _span(hr.cpu_lo, _cpu(hr.cpu), hr.cpu_hi, _cpu) if hr else "-",
                _err(error(hr.cpu if hr else None, t.cpu_right)),
                _span(vp.cpu_lo, _cpu(vp.cpu), vp.cpu_hi, _cpu) if vp else "-",
                _err(error(vp.cpu if vp else None, t.cpu_right)),
            )
        )
        mem_rows.append(
            (
                label,
                _mib(t.mem_right),
                _span(hr.mem_lo, _mib(hr.mem), hr.mem_hi, _mib) if hr else "-",
                _err(error(hr.mem if hr else None, t.mem_right)),
                _span(vp.mem_lo, _mib(vp.mem), vp.mem_hi, _mib) if vp else "-",
                _err(error(vp.mem if vp else None, t.mem_right)),
                as_set(hr, t),
                as_set(vp, t),
            )
        )
    minutes = snap.at_s / 60
    out = [
        f"\n=== {minutes:g} min: CPU request (right = need + 15 %) ===",
        format_table(
            [
                "container",
                "right",
                "headroom [lower..upper]",
                "err",
                "vpa target [lower..upper]",
                "err",
            ],
            cpu_rows,
        ),
        f"\n=== {minutes:g} min: memory request, MiB (right = need + 15 %) ===",
        format_table(
            [
                "container",
                "right",
                "headroom [lower..upper]",
                "err",
                "vpa target [lower..upper]",
                "err",
                "headroom as set",
                "vpa as set",
            ],
            mem_rows,
        ),
        f"\n=== {minutes:g} min: replicas ===",
        format_table(
            ["workload", "running", "right", "headroom", "vpa"],
            [
                (
                    w.name,
                    str(snap.replicas.get(w.name, 0)),
                    str(w.truth_replicas()),
                    snap.headroom_replicas[w.name],
                    vpa_replicas(w),
                )
                for w in WORKLOADS
            ],
        ),
    ]
    return "\n".join(out)


def _when(d: Mapping[str, float], tool: str) -> str:
    return f"{d[tool]:.0f}" if tool in d else "never"


def summary_tables(result: Result) -> str:
    rows = []
    for (w_name, c_name), f in result.firsts.items():
        rows.append(
            (
                f"{w_name}/{c_name}",
                _when(f.rec, "headroom"),
                _when(f.rec, "vpa"),
                _when(f.cpu_within, "headroom"),
                _when(f.cpu_within, "vpa"),
                _when(f.mem_within, "headroom"),
                _when(f.mem_within, "vpa"),
            )
        )
    costs = [
        (
            c.name,
            f"{c.rss_mib:.1f}",
            f"{c.max_rss_mib:.1f}",
            f"{c.cpu_cores * 1000:.1f}m",
            f"{c.cpu_seconds:.1f}",
        )
        for c in result.costs
    ]
    seen = sorted(set(result.hpa_replicas_seen))
    out = [
        f"\n=== seconds from the start to the first advice, and to within 15 % of right "
        f"(run of {result.seconds / 60:.1f} min) ===",
        format_table(
            ["container", "headroom", "vpa", "cpu: headroom", "vpa", "memory: headroom", "vpa"],
            rows,
        ),
        "\n=== what each component cost while it ran (RSS of its processes; CPU on-CPU time) ===",
        format_table(["component", "RSS MiB (median)", "max", "CPU (mean)", "CPU s"], costs),
        "\n=== kubectl top pod --containers (metrics-server) beside the agent's report ===",
        format_table(
            ["pod/container", "top CPU", "agent CPU", "top memory", "agent memory"], result.top_rows
        ),
        f"\nthe HPA ran {', '.join(map(str, seen)) or '-'} replicas during the run",
    ]
    return "\n".join(out)


def settings_line(pace: Pace) -> str:
    return (
        f"headroom agent every {pace.agent_interval_s} s (chart defaults otherwise); "
        f"VPA recommender every {pace.vpa_interval_s} s (defaults otherwise); "
        f"metrics-server resolution {pace.metric_resolution_s} s; "
        f"cycle {pace.cycle_s:g} s, growth {pace.grow_s:g} s; {os.cpu_count()} cores"
    )


def all_keys() -> Iterable[tuple[str, str]]:
    return ((w.name, c.name) for w in WORKLOADS for c in w.containers)


def metrics_api_ok(cp: ControlPlane) -> bool:
    try:
        return bool(cp.api("GET", f"{METRICS_API}/namespaces/{NAMESPACE}/pods").get("items"))
    except ApiError:
        return False


# --- the Headroom chart -------------------------------------------------------------------


def install_headroom(node: Node, pace: Pace) -> None:
    """``helm install`` the chart with the image built from the Dockerfile; wait for Ready."""
    cp = node.cp
    create_namespace(cp, HEADROOM_NS, {"pod-security.kubernetes.io/enforce": "privileged"})
    create_namespace(cp, NAMESPACE, {})
    repository, tag = node.images.headroom_name.rsplit(":", 1)
    values: dict[str, str | int] = {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "agent.intervalSeconds": pace.agent_interval_s,
    }
    cp.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        HEADROOM_NS,
        *set_args(values),
        timeout=180,
    )
    for component, count in (("agent", 1), ("controller", 2)):

        def ready_count(component: str = component, count: int = count) -> bool:
            selector = f"app.kubernetes.io/component={component}"
            return len([p for p in _pods(cp, HEADROOM_NS, selector) if _ready(p)]) == count

        wait_until(ready_count, timeout=180, interval=1, what=f"{count} Ready {component} pod(s)")
    wait_until(lambda: _leader(cp), timeout=90, interval=1, what="a controller leader")


def _leader(cp: ControlPlane) -> str | None:
    try:
        lease = cp.api(
            "GET",
            f"/apis/coordination.k8s.io/v1/namespaces/{HEADROOM_NS}/leases/{RELEASE}-controller",
        )
    except ApiError:
        return None
    holder = lease["spec"].get("holderIdentity")
    return str(holder) if holder else None


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return _running(pod) and conditions.get("Ready") == "True"


# --- the README's table ---------------------------------------------------------------------


def markdown_summary(result: Result) -> str:
    """The last checkpoint and the costs as Markdown tables (what the README shows)."""
    snap = result.snapshots[-1]
    lines = [
        f"At {snap.at_s / 60:g} min. Right = need + 15 %; error against it; "
        "first within 15 % in seconds from the start.",
        "",
        "| container | CPU right | Headroom | VPA | memory right | Headroom | VPA "
        "| first within 15 % (CPU; memory) | as set: Headroom / VPA |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (w_name, c_name), hr in snap.headroom.items():
        t = truth_of(w_name, c_name, snap.replicas, result.base_bytes)
        vp = snap.vpa[(w_name, c_name)]
        f = result.firsts[(w_name, c_name)]

        def cpu(a: Advice | None, t: Truth = t) -> str:
            if a is None:
                return "none"
            err = error(a.cpu, t.cpu_right)
            return _cpu(a.cpu) + ("" if err is None else f" ({_err(err)})")

        def mem(a: Advice | None, t: Truth = t) -> str:
            if a is None:
                return "none"
            return f"{_mib(a.mem)}Mi ({_err(error(a.mem, t.mem_right))})"

        firsts = (
            f"Headroom {_when(f.cpu_within, 'headroom')}; {_when(f.mem_within, 'headroom')} "
            f"· VPA {_when(f.cpu_within, 'vpa')}; {_when(f.mem_within, 'vpa')}"
        )
        lines.append(
            f"| {w_name}/{c_name} | {_cpu(t.cpu_right)} | {cpu(hr)} | {cpu(vp)} "
            f"| {_mib(t.mem_right)}Mi | {mem(hr)} | {mem(vp)} | {firsts} "
            f"| {as_set(hr, t)} / {as_set(vp, t)} |"
        )
    totals = totals_row(snap, result.base_bytes)
    lines.append(
        f"| **all of them** | {_cpu(totals['right_cpu'])} | {_cpu(totals['headroom_cpu'])} "
        f"({_err(error(totals['headroom_cpu'], totals['right_cpu']))}) "
        f"| {_cpu(totals['vpa_cpu'])} ({_err(error(totals['vpa_cpu'], totals['right_cpu']))}) "
        f"| {_mib(int(totals['right_mem']))}Mi | {_mib(int(totals['headroom_mem']))}Mi "
        f"({_err(error(totals['headroom_mem'], totals['right_mem']))}) "
        f"| {_mib(int(totals['vpa_mem']))}Mi ({_err(error(totals['vpa_mem'], totals['right_mem']))}) "
        "| | |"
    )
    lines += [
        "",
        "| workload | replicas running | right | Headroom says | VPA says |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {w.name} | {snap.replicas.get(w.name, 0)} | {w.truth_replicas()} "
        f"| {snap.headroom_replicas[w.name]} | {vpa_replicas(w)} |"
        for w in WORKLOADS
    ]
    lines += [
        "",
        "| component | RSS MiB (median) | CPU (mean over the run) |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.rss_mib:.1f} | {c.cpu_cores * 1000:.1f}m |" for c in result.costs]
    return "\n".join(lines)


def totals_row(snap: Snapshot, base: int) -> dict[str, float]:
    """What each tool would have the cluster reserve (requests × replicas running), summed
    over the containers both advise, beside the right requests; CPU over those scored."""
    sums = dict.fromkeys(
        ("right_cpu", "headroom_cpu", "vpa_cpu", "right_mem", "headroom_mem", "vpa_mem"), 0.0
    )
    for (w_name, c_name), hr in snap.headroom.items():
        vp = snap.vpa[(w_name, c_name)]
        if hr is None or vp is None or None in (hr.cpu, hr.mem, vp.cpu, vp.mem):
            continue
        replicas = max(1, snap.replicas.get(w_name, 1))
        t = truth_of(w_name, c_name, snap.replicas, base)
        if t.cpu_right is not None:
            sums["right_cpu"] += t.cpu_right * replicas
            sums["headroom_cpu"] += (hr.cpu or 0.0) * replicas
            sums["vpa_cpu"] += (vp.cpu or 0.0) * replicas
        sums["right_mem"] += t.mem_right * replicas
        sums["headroom_mem"] += (hr.mem or 0) * replicas
        sums["vpa_mem"] += (vp.mem or 0) * replicas
    return sums
