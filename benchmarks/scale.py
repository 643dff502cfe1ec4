"""The controller at scale against a real kube-apiserver + etcd: figures and ratios in one run.

For each ``--nodes`` count (1,000 and 5,000 by default) the run builds, on one
control plane (``tests/controlplane``, no kube-controller-manager):

* N Nodes (32 cores, 128 GiB allocatable, Ready);
* ``--experts`` expert Deployments (1,000), each with a ReplicaSet and
  ``--replicas`` Pods bound to Nodes with ``nodeName`` (no scheduler, no kubelet);
* every other pod a node runs, up to ``--pods-per-node`` (30), as a plain Pod
  bound to its node (``--pod-objects all``), or only as a UID in the reports
  (``--pod-objects experts``: the controller never sees those pods);
* each expert's CapacityRecommendation with ``--history-days`` (7) of usage
  history, as a controller that has run for a week leaves it (0: a fresh
  install, whose first hours move the advice with nearly every sample);
* one ResourceReport per node with realistic per-pod figures (CPU 20–100 % of
  the request, working set 30–90 % of it), written through ``/status`` by
  simulated agents (threads in this process, keep-alive connections) once per
  ``--heartbeat`` (60 s, the agent's default; lower it to scale time down),
  phases spread evenly, figures jittered a few percent each write.

Then ``headroom controller`` runs as a real process (default settings: batch
every 2 s; log level DEBUG, which logs each batch's duration), and once it has
written every expert's recommendation and counts every report fresh, the run
waits ``--settle`` seconds and measures for ``--measure`` seconds:

* full recompute time: each batch's duration from the controller's log (mean,
  p99, max), else from ``headroom_recompute_duration_seconds`` (bucket
  estimates) — every batch recomputes every expert;
* report → recommendation latency: every ``--probe-every`` seconds one expert's
  pod on one node suddenly holds 8 GiB more memory — a new peak; the node's
  report is written and the expert's CapacityRecommendation polled (50 ms)
  until its recommended memory request changes. (A CPU burst no longer serves:
  replicas and the CPU request follow the window's load, so one report's spike
  rightly moves neither. The node's own figures are left as they were:
  otherwise each probe would change that node's free room, hence every
  expert's fit, and rewrite all recommendations every few seconds.) Also the controller's own
  ``headroom_report_to_recommendation_seconds`` (arrival → written);
* controller RSS (VmRSS each second: median and max) and CPU (cores);
* API requests per second from the agents and from the controller (the API
  server's ``apiserver_request_total`` by resource and verb; this harness's own
  probe requests subtracted), and agent writes per node per 60 s;
* the API server's CPU (``/proc/<pid>/stat`` of kube-apiserver) and etcd's;
* a warm restart (``--restart-window``, 30 s; 0 skips it): the controller is
  stopped and a new one started against the recommendations it stored; the
  time until it leads with a complete model, how many stored recommendations
  it kept, and its status writes in the window after that, beside the steady
  rate over the same time.

Targets: recompute ≤ 250 ms, latency p99 ≤ 5 s, controller RSS ≤ 300 MB,
≤ 1 agent write per node per 60 s.

Setting up 5,000 nodes (150,000 Pods at ~700/s) takes about 6 minutes, the
whole default run about 20. ``--hold SECONDS`` builds the cluster and keeps
its agents writing without a controller, to profile one by hand.

Run from the repository root::

    uv run python -m benchmarks.scale                             # 1,000 and 5,000 nodes
    uv run python -m benchmarks.scale --nodes 1000 --experts 200 --heartbeat 30
    uv run python -m benchmarks.scale --quick                     # smoke run, ~2 minutes
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.controlplane.cluster import ControlPlane, ControlPlaneError, free_ports, wait_until

from benchmarks._proc import ProcessSampler, format_table, percentile, read_cpu_seconds
from benchmarks._sim import (
    EXPERT_CPU_M,
    EXPERT_MEMORY_MI,
    OTHER_CPU_M,
    OTHER_MEMORY_MI,
    PodFigure,
    SimulatedNodes,
    deployment_body,
    node_body,
    pod_body,
    replicaset_body,
    report_status,
    seeded_history,
    usage,
)
from headroom.agent.reports import report_path
from headroom.api import API_VERSION, ResourceReportStatus
from headroom.kube.client import ApiError, ApiUnavailable, KubeClient
from headroom.kube.config import from_kubeconfig

REPO = Path(__file__).resolve().parent.parent
EXPERT_NAMESPACES = 20
PODS_PER_NAMESPACE = 5000
TARGETS = {"recompute_ms": 250.0, "latency_p99_s": 5.0, "rss_mb": 300.0, "writes_per_node": 1.0}
T = TypeVar("T")


# --- talking to the API server fast ---------------------------------------------------


class Pool:
    """Threads with one keep-alive client each; counts requests by (verb, resource)."""

    def __init__(self, plane: ControlPlane, threads: int, user_agent: str) -> None:
        self.config = from_kubeconfig(plane.kubeconfig)
        self.user_agent = user_agent
        self.local = threading.local()
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=user_agent)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def client(self) -> KubeClient:
        """This thread's client."""
        found: KubeClient | None = getattr(self.local, "client", None)
        if found is None:
            found = self.local.client = KubeClient(
                self.config, timeout=60, user_agent=self.user_agent
            )
        return found

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request on this thread's connection, counted."""
        with self.lock:
            self.counts[(method, _resource(path))] += 1
        try:
            return self.client().request(method, path, body)
        except ApiUnavailable:  # the server closed an idle keep-alive connection
            return self.client().request(method, path, body)

    def run_all(self, function: Callable[[T], object], items: Iterable[T], what: str) -> None:
        """``function`` over ``items`` on the pool; fail on the first error; show progress."""
        items = list(items)
        started = time.monotonic()
        for done, _ in enumerate(self.executor.map(function, items), start=1):
            if done % 5000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  {what}: {done:,}/{len(items):,} ({rate:.0f}/s)", file=sys.stderr)
        elapsed = time.monotonic() - started
        if items:
            print(
                f"  {what}: {len(items):,} in {elapsed:.1f}s ({len(items) / elapsed:.0f}/s)",
                file=sys.stderr,
            )

    def close(self) -> None:
        """Stop the threads."""
        self.executor.shutdown(wait=True)


def _resource(path: str) -> str:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:] or ["namespaces"]
    return parts[0] if parts else ""


def ignore_conflict(call: Callable[[], object]) -> None:
    """Run ``call``; an AlreadyExists (409) is fine."""
    try:
        call()
    except ApiError as error:
        if error.status != 409:
            raise


# --- the simulated cluster ------------------------------------------------------------


@dataclass
class World:
    """What the harness created, and each node's simulated agent state."""

    nodes: list[str] = field(default_factory=list)
    node_uids: dict[str, str] = field(default_factory=dict)
    figures: SimulatedNodes = field(default_factory=SimulatedNodes)
    experts: list[tuple[str, str]] = field(default_factory=list)
    expert_uids: list[str] = field(default_factory=list)
    expert_pods: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    pod_objects: int = 0


def node_name(index: int) -> str:
    """The name of node ``index``."""
    return f"node-{index:05d}"


def create_nodes(pool: Pool, world: World, first: int, count: int) -> None:
    """Nodes ``first .. first+count-1``: allocatable 32 cores, 128 GiB, Ready."""

    def create(index: int) -> None:
        name = node_name(index)
        body = node_body(name)
        status = body.pop("status")
        node = pool.request("POST", "/api/v1/nodes", body)
        node["status"] = status
        pool.request("PUT", f"/api/v1/nodes/{name}/status", node)
        world.node_uids[name] = node["metadata"]["uid"]

    pool.run_all(create, range(first, first + count), "nodes")
    for index in range(first, first + count):
        name = node_name(index)
        world.nodes.append(name)
        world.figures.pods.setdefault(name, [])
        world.locks[name] = threading.Lock()


def ensure_namespaces(pool: Pool, names: Iterable[str]) -> None:
    """Namespaces with their ``default`` ServiceAccount (no controller manager makes it)."""

    def create(name: str) -> None:
        ignore_conflict(
            lambda: pool.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        )
        ignore_conflict(
            lambda: pool.request(
                "POST",
                f"/api/v1/namespaces/{name}/serviceaccounts",
                {"metadata": {"name": "default"}},
            )
        )

    pool.run_all(create, names, "namespaces")


def create_experts(pool: Pool, world: World, count: int, replicas: int, rng: random.Random) -> None:
    """Expert Deployments with a ReplicaSet and ``replicas`` bound Pods each."""
    ensure_namespaces(pool, (f"experts-{i}" for i in range(EXPERT_NAMESPACES)))
    placements = itertools.cycle(world.nodes)
    plans = []
    for index in range(count):
        cpu_m, memory_mi = rng.choice(EXPERT_CPU_M), rng.choice(EXPERT_MEMORY_MI)
        plans.append((index, cpu_m, memory_mi, [next(placements) for _ in range(replicas)]))
    uids: dict[int, str] = {}

    def create(plan: tuple[int, int, int, list[str]]) -> None:
        index, cpu_m, memory_mi, nodes = plan
        namespace, name = f"experts-{index % EXPERT_NAMESPACES}", f"expert-{index:04d}"
        body = deployment_body(name, replicas, cpu_m, memory_mi)
        deployment = pool.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
        uids[index] = deployment["metadata"]["uid"]
        rs_name = f"{name}-5d8f9c7b6"
        rs = pool.request(
            "POST",
            f"/apis/apps/v1/namespaces/{namespace}/replicasets",
            replicaset_body(rs_name, body, deployment["metadata"]["uid"]),
        )
        pods = []
        for replica, node in enumerate(nodes):
            pod = pool.request(
                "POST",
                f"/api/v1/namespaces/{namespace}/pods",
                pod_body(
                    f"{rs_name}-{replica:03d}",
                    node,
                    cpu_m,
                    memory_mi,
                    (rs_name, rs["metadata"]["uid"]),
                    body["spec"]["selector"]["matchLabels"],
                ),
            )
            pods.append((pod["metadata"]["uid"], node))
        world.expert_pods[index] = pods

    pool.run_all(create, plans, "experts")
    for index, cpu_m, memory_mi, _ in plans:
        world.experts.append((f"experts-{index % EXPERT_NAMESPACES}", f"expert-{index:04d}"))
        world.expert_uids.append(uids[index])
        for uid, node in world.expert_pods[index]:
            figure = usage(rng, cpu_m, memory_mi, index)
            figure.uid = uid
            world.figures.add(node, figure)
    world.pod_objects += count * replicas


def fill_nodes(
    pool: Pool, world: World, nodes: list[str], per_node: int, objects: bool, rng: random.Random
) -> None:
    """Other pods on each node up to ``per_node``: plain bound Pods, or report-only UIDs."""
    plans: list[tuple[str, int, int, int]] = []
    for node in nodes:
        for slot in range(len(world.figures.pods[node]), per_node):
            plans.append((node, slot, rng.choice(OTHER_CPU_M), rng.choice(OTHER_MEMORY_MI)))
    namespaces = [f"work-{i}" for i in range(math.ceil(len(plans) / PODS_PER_NAMESPACE))]
    uids: dict[tuple[str, int], str] = {}
    if objects and plans:
        ensure_namespaces(pool, namespaces)
        counter = itertools.count()

        def create(plan: tuple[str, int, int, int]) -> None:
            node, slot, cpu_m, memory_mi = plan
            namespace = namespaces[next(counter) % len(namespaces)]
            body = pod_body(f"{node}-{slot:02d}", node, cpu_m, memory_mi)
            pod = pool.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
            uids[(node, slot)] = pod["metadata"]["uid"]

        pool.run_all(create, plans, "pods")
        world.pod_objects += len(plans)
    for node, slot, cpu_m, memory_mi in plans:
        figure = usage(rng, cpu_m, memory_mi, None)
        figure.uid = uids.get((node, slot)) or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        figure.qos = "BestEffort" if slot % 7 == 0 else "Burstable"
        world.figures.add(node, figure)


def seed_histories(
    pool: Pool, world: World, days: float, heartbeat: float, rng: random.Random
) -> None:
    """Each expert's CapacityRecommendation with ``days`` of hourly usage history.

    A controller that has run for a week restores this at start, so the run
    measures the steady state, not the first hours in which every new sample
    still moves the advice.
    """
    now = datetime.now(UTC)
    figures_of: dict[int, list[PodFigure]] = {}
    for pods in world.figures.pods.values():
        for figure in pods:
            if figure.expert is not None:
                figures_of.setdefault(figure.expert, []).append(figure)

    def seed(index: int) -> None:
        namespace, name = world.experts[index]
        history = seeded_history(figures_of.get(index, []), days, heartbeat, now, rng)
        base = f"/apis/{API_VERSION}/namespaces/{namespace}/capacityrecommendations"
        created = pool.request(
            "POST",
            base,
            {
                "apiVersion": API_VERSION,
                "kind": "CapacityRecommendation",
                "metadata": {
                    "name": name,
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": world.expert_uids[index],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
                },
            },
        )
        created["status"] = {"history": history.to_model().to_wire()}
        pool.request("PUT", f"{base}/{name}/status", created)

    pool.run_all(seed, range(len(world.experts)), "histories")


# --- the simulated agents -------------------------------------------------------------


class Agents:
    """Every node's agent: one report write per heartbeat, phases spread evenly."""

    def __init__(self, pool: Pool, world: World, heartbeat: int, seed: int) -> None:
        self.pool = pool
        self.world = world
        self.heartbeat = heartbeat
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.writes = 0
        self.probe_writes = 0
        self.started_writes = 0
        self.started_at = time.monotonic()
        self.conflicts = 0
        self.lag: list[float] = []

    def write(self, node: str) -> float:
        """One report write for ``node`` (create it first if new); returns when it was acked."""
        with self.world.locks[node]:
            status = report_status(self.world.figures.pods[node], self.heartbeat, self.rng)
            version = self.world.versions.get(node)
            if version is None:
                version = self._create(node)
            for attempt in range(3):
                body = {
                    "apiVersion": API_VERSION,
                    "kind": "ResourceReport",
                    "metadata": {"name": node, "resourceVersion": version},
                    "spec": {"nodeName": node},
                    "status": status,
                }
                try:
                    answer = self.pool.request("PUT", report_path(node) + "/status", body)
                except ApiError as error:
                    if error.status != 409 or attempt == 2:
                        raise
                    self.conflicts += 1
                    version = self.pool.request("GET", report_path(node))["metadata"][
                        "resourceVersion"
                    ]
                    continue
                self.world.versions[node] = answer["metadata"]["resourceVersion"]
                self.writes += 1
                return time.monotonic()
        raise AssertionError("unreachable")

    def _create(self, node: str) -> str:
        body = {
            "apiVersion": API_VERSION,
            "kind": "ResourceReport",
            "metadata": {
                "name": node,
                "labels": {"app.kubernetes.io/managed-by": "headroom-agent"},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": node,
                        "uid": self.world.node_uids[node],
                    }
                ],
            },
            "spec": {"nodeName": node},
        }
        try:
            created = self.pool.request("POST", report_path(), body)
        except ApiError as error:
            if error.status != 409:
                raise
            created = self.pool.request("GET", report_path(node))
        return str(created["metadata"]["resourceVersion"])

    def write_all(self) -> None:
        """Every node once, as fast as the pool goes (the first reports)."""
        self.pool.run_all(self.write, list(self.world.nodes), "reports")

    def start(self) -> None:
        """Keep writing in the background: node i at phase i/N of each heartbeat."""
        self.started_writes = self.writes - self.probe_writes
        self.started_at = time.monotonic()
        self.thread = threading.Thread(target=self._schedule, name="agents", daemon=True)
        self.thread.start()

    def _schedule(self) -> None:
        nodes = list(self.world.nodes)
        step = self.heartbeat / len(nodes)
        started = time.monotonic()
        for turn in itertools.count():
            node = nodes[turn % len(nodes)]
            due = started + turn * step
            pause = due - time.monotonic()
            if pause > 0 and self.stop.wait(pause):
                return
            if self.stop.is_set():
                return
            self.lag.append(max(0.0, -pause))
            self.pool.executor.submit(self._safe_write, node)

    def _safe_write(self, node: str) -> None:
        try:
            self.write(node)
        except ApiError as error:
            print(f"  agent write for {node} failed: {error}", file=sys.stderr)

    def halt(self) -> None:
        """Stop the schedule."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


# --- the controller -------------------------------------------------------------------


class Controller:
    """``headroom controller`` as a process, with its metrics endpoint."""

    def __init__(
        self, plane: ControlPlane, log: Path, level: str, pythonpath: str | None = None
    ) -> None:
        self.port = free_ports(1)[0]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HEADROOM_")},
            "HEADROOM_IDENTITY": "bench",
            "HEADROOM_LEASE_NAMESPACE": "headroom-system",
            "HEADROOM_METRICS_PORT": str(self.port),
            "HEADROOM_HEALTH_PORT": "0",
            "KUBECONFIG": str(plane.kubeconfig),
        }
        if pythonpath:  # another checkout's controller, for a before/after comparison
            env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
        self.log = log
        out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "headroom.cli", "controller", "--log-level", level],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        out.close()

    def metrics(self) -> dict[str, float]:
        """Every sample of the metrics endpoint, by its full name with labels."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return parse_metrics(response.read().decode())

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to ``{name{labels}: value}``."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                samples[name] = float(value)
            except ValueError:
                continue
    return samples


def histogram(
    before: dict[str, float], after: dict[str, float], name: str
) -> tuple[float, float, list[tuple[float, float]]]:
    """(count, sum, [(le, cumulative count)]) of a histogram between two scrapes."""

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    buckets = []
    for key in after:
        if key.startswith(f"{name}_bucket{{") and 'le="' in key:
            le = key.split('le="')[1].split('"')[0]
            buckets.append((math.inf if le == "+Inf" else float(le), delta(key)))
    buckets.sort()
    return delta(f"{name}_count"), delta(f"{name}_sum"), buckets


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The quantile as Prometheus' ``histogram_quantile`` would estimate it."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            span = count - lower_count
            share = (rank - lower_count) / span if span else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


# --- measuring ------------------------------------------------------------------------

AGENT_VERBS = {
    ("PUT", "resourcereports"),
    ("POST", "resourcereports"),
    ("GET", "resourcereports"),
    ("GET", "nodes"),
}
"""(verb, resource) pairs only agents use; the API server counts verbs by HTTP method."""
MUTATING = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}


def apiserver_requests(plane: ControlPlane) -> Counter[tuple[str, str]]:
    """``apiserver_request_total`` summed by (verb, resource)."""
    text = plane.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
        )
        verb = labels.get("verb", "").strip('"')
        resource = labels.get("resource", "").strip('"')
        counts[(verb, resource)] += int(float(line.rpartition(" ")[2]))
    return counts


@dataclass
class Probe:
    """The expert whose recommendation one probe changes."""

    expert: int
    node: str
    uid: str


def run_probe(pool: Pool, world: World, agents: Agents, probe: Probe, timeout: float) -> float:
    """Give one expert pod a new memory peak, write its node's report, wait for the advice."""
    namespace, name = world.experts[probe.expert]
    path = f"/apis/{API_VERSION}/namespaces/{namespace}/capacityrecommendations/{name}"

    def memory() -> int | None:
        try:
            body = pool.request("GET", path)
        except ApiError:
            return None
        recommended = (body.get("status") or {}).get("recommended") or {}
        value = recommended.get("memoryRequestBytes")
        return None if value is None else int(value)

    before = memory()
    for figure in world.figures.pods[probe.node]:
        if figure.uid == probe.uid:
            figure.memory_burst += 8 * 2**30
    written = agents.write(probe.node)
    agents.probe_writes += 1
    deadline = written + timeout
    while time.monotonic() < deadline:
        now = memory()
        if now is not None and now != before:
            return time.monotonic() - written
        time.sleep(0.05)
    return math.inf


@dataclass
class Result:
    """The figures of one scale."""

    nodes: int
    experts: int
    pods: int
    pod_objects: int
    startup_s: float = math.nan
    recompute_mean_ms: float = math.nan
    recompute_p99_ms: float = math.nan
    recompute_max_ms: float = math.nan
    recompute_exact: bool = False
    recompute_cpu_mean_ms: float = math.nan
    recompute_cpu_p99_ms: float = math.nan
    restart_leading_s: float = math.nan
    restart_kept: float = math.nan
    restart_writes: float = math.nan
    restart_window_s: float = math.nan
    recompute_batches: float = 0.0
    latency: list[float] = field(default_factory=list)
    controller_latency_p50_s: float = math.nan
    controller_latency_p99_s: float = math.nan
    rss_mb: float = math.nan
    rss_max_mb: float = math.nan
    controller_cores: float = math.nan
    agent_rps: float = math.nan
    controller_rps: float = math.nan
    controller_writes_ps: float = math.nan
    controller_status_ps: float = math.nan
    writes_per_node_heartbeat: float = math.nan
    apiserver_cores: float = math.nan
    etcd_cores: float = math.nan
    window_s: float = math.nan
    controller_breakdown: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def measure(
    args: argparse.Namespace,
    plane: ControlPlane,
    pool: Pool,
    probe_pool: Pool,
    world: World,
    agents: Agents,
    log: Path,
) -> Result:
    """Start the controller, wait until it caught up, measure the steady state."""
    result = Result(
        len(world.nodes),
        len(world.experts),
        len(world.nodes) * args.pods_per_node,
        world.pod_objects,
    )
    started = time.monotonic()
    controller = Controller(plane, log, args.log_level, args.controller_pythonpath)
    sampler = ProcessSampler(controller.proc.pid)
    try:

        def caught_up() -> bool:
            if controller.proc.poll() is not None:
                raise SystemExit(f"the controller exited; see {log}")
            try:
                metrics = controller.metrics()
            except OSError:
                return False
            fresh = metrics.get('headroom_reports{freshness="fresh"}', 0)
            written = metrics.get(_STATUS_WRITES, 0)
            return fresh >= len(world.nodes) and written >= len(world.experts)

        wait_until(caught_up, timeout=args.startup_timeout, interval=1.0, what="recommendations")
        result.startup_s = time.monotonic() - started
        print(f"  controller caught up in {result.startup_s:.1f}s", file=sys.stderr)
        time.sleep(args.settle)

        api_before = apiserver_requests(plane)
        metrics_before = controller.metrics()
        apiserver_pid, etcd_pid = component_pids(plane)
        cpu_before = {pid: read_cpu_seconds(pid)[0] for pid in (apiserver_pid, etcd_pid)}
        probe_counts_before = Counter(probe_pool.counts)
        window_start = time.monotonic()
        sampler.start(window_start)
        log_offset = log.stat().st_size
        rng = random.Random(args.seed + len(world.nodes))
        probes = rng.sample(range(len(world.experts)), len(world.experts))
        next_probe = window_start + args.probe_every / 2
        sampling = threading.Event()

        def sample_every_second() -> None:
            while not sampling.wait(1.0):
                sampler.sample()

        sample_thread = threading.Thread(target=sample_every_second, daemon=True)
        sample_thread.start()
        while time.monotonic() - window_start < args.measure:
            now = time.monotonic()
            if now >= next_probe and probes:
                expert = probes.pop()
                uid, node = world.expert_pods[expert][0]
                latency = run_probe(probe_pool, world, agents, Probe(expert, node, uid), 30.0)
                result.latency.append(latency)
                next_probe = time.monotonic() + args.probe_every
            time.sleep(0.05)
        sampling.set()
        sample_thread.join()
        window_end = time.monotonic()
        cost = sampler.stop(window_end)
        window = window_end - window_start
        metrics_after = controller.metrics()
        api_after = apiserver_requests(plane)
        probe_counts = Counter(probe_pool.counts)
        probe_counts.subtract(probe_counts_before)
        result.window_s = window
        result.rss_mb, result.rss_max_mb = cost.steady_rss_mb, cost.max_rss_mb
        result.controller_cores = cost.cpu_stat_seconds / window
        for pid, name in ((apiserver_pid, "apiserver"), (etcd_pid, "etcd")):
            cores = (read_cpu_seconds(pid)[0] - cpu_before[pid]) / window
            setattr(result, f"{name}_cores", cores)
        count, total, buckets = histogram(
            metrics_before, metrics_after, "headroom_recompute_duration_seconds"
        )
        if count:
            result.recompute_batches = count
            result.recompute_mean_ms = total / count * 1000
            result.recompute_p99_ms = bucket_quantile(buckets, 0.99) * 1000
        batches = batch_durations(log, log_offset)  # exact, when the log level is DEBUG
        if batches:
            walls, cpus = [b[0] for b in batches], [b[1] for b in batches]
            result.recompute_exact = True
            result.recompute_mean_ms = sum(walls) / len(walls)
            result.recompute_p99_ms = percentile(walls, 99)
            result.recompute_max_ms = max(walls)
            result.recompute_cpu_mean_ms = sum(cpus) / len(cpus)
            result.recompute_cpu_p99_ms = percentile(cpus, 99)
        _, _, latency_buckets = histogram(
            metrics_before, metrics_after, "headroom_report_to_recommendation_seconds"
        )
        result.controller_latency_p50_s = bucket_quantile(latency_buckets, 0.5)
        result.controller_latency_p99_s = bucket_quantile(latency_buckets, 0.99)
        delta = Counter(api_after)
        delta.subtract(api_before)
        harness = probe_counts
        agent_requests = sum(v for k, v in delta.items() if k in AGENT_VERBS)
        controller_requests = sum(
            v - harness.get(k, 0) for k, v in delta.items() if k not in AGENT_VERBS
        )
        # The probes' own report writes are agent traffic; their GETs of caprecs are not.
        controller_writes = sum(
            v - harness.get(k, 0)
            for k, v in delta.items()
            if k not in AGENT_VERBS and k[0] in MUTATING
        )
        by_kind = Counter(
            {
                f"{verb} {resource}": v - harness.get((verb, resource), 0)
                for (verb, resource), v in delta.items()
                if (verb, resource) not in AGENT_VERBS and v - harness.get((verb, resource), 0) > 0
            }
        )
        result.controller_breakdown = [(k, v / window) for k, v in by_kind.most_common(6)]
        result.agent_rps = agent_requests / window
        result.controller_rps = controller_requests / window
        result.controller_writes_ps = controller_writes / window
        result.controller_status_ps = (
            metrics_after.get(_STATUS_WRITES, 0) - metrics_before.get(_STATUS_WRITES, 0)
        ) / window
        # Over all the time the agents have run: a short window cuts heartbeats in two.
        steady = agents.writes - agents.probe_writes - agents.started_writes
        elapsed = time.monotonic() - agents.started_at
        result.writes_per_node_heartbeat = steady / len(world.nodes) / (elapsed / args.heartbeat)
        if agents.conflicts:
            result.notes.append(f"{agents.conflicts} agent write conflicts (409) in total")
        lag = percentile(agents.lag[-1000:], 99)
        if lag > 1.0:
            result.notes.append(f"agent schedule lagged: p99 {lag:.1f}s (the harness is saturated)")
        return result
    finally:
        controller.stop()


_STATUS_WRITES = 'headroom_recommendations_written_total{operation="status"}'
_LEADING_LINE = re.compile(r"leading: (\d+) stored recommendations kept")


def measure_restart(
    args: argparse.Namespace, plane: ControlPlane, world: World, result: Result, log: Path
) -> None:
    """A second controller after the first stopped (SIGTERM): what a warm restart writes.

    It starts against the recommendations the first one stored; from the
    moment it leads with a complete model (its log: ``leading: N stored
    recommendations kept``) its status writes are counted for
    ``--restart-window`` seconds, beside the steady rate of the window before.
    """
    started = time.monotonic()
    controller = Controller(plane, log, args.log_level, args.controller_pythonpath)
    try:

        def leading() -> int | None:
            if controller.proc.poll() is not None:
                raise SystemExit(f"the restarted controller exited; see {log}")
            found = _LEADING_LINE.search(log.read_text(errors="replace"))
            return int(found.group(1)) if found else None

        kept = wait_until(leading, timeout=args.startup_timeout, interval=0.5, what="leading")
        result.restart_leading_s = time.monotonic() - started
        result.restart_kept = float(kept or 0)
        time.sleep(args.restart_window)
        # Every status write of this process: none comes before it leads.
        result.restart_writes = controller.metrics().get(_STATUS_WRITES, 0)
        result.restart_window_s = args.restart_window
    finally:
        controller.stop()


_BATCH_LINE = re.compile(r"batch \d+: .* in ([0-9.]+) ms(?: \(([0-9.]+) ms CPU\))?")


def batch_durations(log: Path, offset: int) -> list[tuple[float, float]]:
    """Each batch's (wall, CPU) duration in ms the controller logged (at DEBUG) after ``offset``.

    CPU is the batch thread's own CPU time (NaN from a controller that does not log it): the
    wall time also holds the waits for a core and for the GIL.
    """
    with log.open("rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    return [
        (float(match.group(1)), float(match.group(2)) if match.group(2) else math.nan)
        for match in _BATCH_LINE.finditer(text)
    ]


def component_pids(plane: ControlPlane) -> tuple[int, int]:
    """The kube-apiserver and etcd process ids (the plane keeps them private)."""
    pids = []
    for name in ("_apiserver", "_etcd"):
        component = getattr(plane, name)
        assert component is not None and component.proc is not None
        pids.append(int(component.proc.pid))
    return pids[0], pids[1]


# --- output ---------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def print_results(results: list[Result], args: argparse.Namespace) -> None:
    """One column per scale, then each figure against its target."""
    print()
    if args.heartbeat != 60:
        print(
            f"time scaled ×{60 / args.heartbeat:g}: agents write every {args.heartbeat} s, not 60 s "
            "(request rates are the 60 s figures × that factor)"
        )
    print(
        f"heartbeat {args.heartbeat}s, {args.pods_per_node} pods per node "
        f"({args.pod_objects}), {args.replicas} replicas per expert, window {args.measure:.0f}s, "
        f"{os.cpu_count()} CPUs"
    )
    header = ["figure", *(f"{r.nodes:,} nodes / {r.experts:,} experts" for r in results), "target"]
    rows: list[list[str]] = []

    def row(label: str, values: list[str], target: str = "") -> None:
        rows.append([label, *values, target])

    row("pods in reports / Pod objects", [f"{r.pods:,} / {r.pod_objects:,}" for r in results])
    row("controller start → all recommendations (s)", [_fmt(r.startup_s) for r in results])
    row(
        "full recompute mean / p99 / max (ms)",
        [
            f"{_fmt(r.recompute_mean_ms)} / {_fmt(r.recompute_p99_ms)} / {_fmt(r.recompute_max_ms)}"
            + ("" if r.recompute_exact else " (buckets)")
            for r in results
        ],
        f"≤ {TARGETS['recompute_ms']:g} ms",
    )
    row(
        "  of which the batch's own CPU mean / p99 (ms)",
        [f"{_fmt(r.recompute_cpu_mean_ms)} / {_fmt(r.recompute_cpu_p99_ms)}" for r in results],
    )
    row("batches in the window", [_fmt(r.recompute_batches, 0) for r in results])
    row(
        "restart: start → leading (s), stored kept / status writes in the first window",
        [
            f"{_fmt(r.restart_leading_s)}, {_fmt(r.restart_kept, 0)} / {_fmt(r.restart_writes, 0)}"
            f" in {_fmt(r.restart_window_s, 0)} s (steady {_fmt(r.controller_status_ps * r.restart_window_s, 0)})"
            for r in results
        ],
    )
    row(
        "report → recommendation p50 / p99 (s), probes",
        [
            f"{_fmt(percentile(r.latency, 50), 2)} / {_fmt(percentile(r.latency, 99), 2)}"
            f" (n={len(r.latency)})"
            for r in results
        ],
        f"p99 ≤ {TARGETS['latency_p99_s']:g} s",
    )
    row(
        "  controller's own histogram p50 / p99 (s)",
        [
            f"{_fmt(r.controller_latency_p50_s, 2)} / {_fmt(r.controller_latency_p99_s, 2)}"
            for r in results
        ],
    )
    row(
        "controller RSS steady / max (MB)",
        [f"{_fmt(r.rss_mb)} / {_fmt(r.rss_max_mb)}" for r in results],
        f"≤ {TARGETS['rss_mb']:g} MB",
    )
    row("controller CPU (cores)", [_fmt(r.controller_cores, 2) for r in results])
    row("API requests/s from agents", [_fmt(r.agent_rps) for r in results])
    row(
        "API requests/s from the controller (writes/s)",
        [f"{_fmt(r.controller_rps)} ({_fmt(r.controller_writes_ps)})" for r in results],
    )
    row(
        f"agent writes per node per heartbeat ({args.heartbeat} s)",
        [_fmt(r.writes_per_node_heartbeat, 2) for r in results],
        f"≤ {TARGETS['writes_per_node']:g}",
    )
    row("kube-apiserver CPU (cores)", [_fmt(r.apiserver_cores, 2) for r in results])
    row("etcd CPU (cores)", [_fmt(r.etcd_cores, 2) for r in results])
    print(format_table(header, rows))
    for r in results:
        breakdown = ", ".join(f"{kind} {rate:.2f}" for kind, rate in r.controller_breakdown)
        print(f"controller requests/s at {r.nodes:,} nodes: {breakdown}")
    print()
    verdicts = []
    for r in results:
        p99 = percentile(r.latency, 99)
        checks = [
            ("recompute", r.recompute_mean_ms, r.recompute_p99_ms, TARGETS["recompute_ms"]),
            ("latency p99", p99, p99, TARGETS["latency_p99_s"]),
            ("RSS", r.rss_mb, r.rss_max_mb, TARGETS["rss_mb"]),
            (
                "writes/node/heartbeat",
                r.writes_per_node_heartbeat,
                r.writes_per_node_heartbeat,
                TARGETS["writes_per_node"],
            ),
        ]
        parts = []
        for label, value, worst, target in checks:
            ratio = worst / target if target else math.nan
            verdict = "met" if round(worst, 2) <= target else "MISSED"
            parts.append(f"{label} {_fmt(value, 2)} ({ratio:.2f}× target, {verdict})")
        verdicts.append(f"{r.nodes:,} nodes: " + "; ".join(parts))
        for note in r.notes:
            verdicts.append(f"  note: {note}")
    print("\n".join(verdicts))


# --- the run --------------------------------------------------------------------------


@contextmanager
def control_plane() -> Iterator[ControlPlane]:
    """A control plane without the controller manager, with the CRDs."""
    with ControlPlane(with_controller_manager=False, start_timeout=180) as plane:
        plane.install_crds(REPO / "crds")

        def served() -> bool:  # a new CRD's storage answers 429 for a moment
            try:
                for plural in ("resourcereports", "capacityrecommendations"):
                    plane.api("GET", f"/apis/{API_VERSION}/{plural}?limit=1")
            except ControlPlaneError:
                return False
            return True

        wait_until(served, timeout=60, what="the CRDs' storage")
        yield plane


def run(args: argparse.Namespace) -> int:
    """Grow the cluster scale by scale, measuring each."""
    rng = random.Random(args.seed)
    sample = report_status_check()
    results = []
    log_dir = Path(tempfile.mkdtemp(prefix="headroom-scale-"))
    print(f"logs in {log_dir}", file=sys.stderr)
    with ExitStack() as stack:
        plane = stack.enter_context(control_plane())
        pool = Pool(plane, args.threads, "bench-setup")
        stack.callback(pool.close)
        probe_pool = Pool(plane, 1, "bench-probe")
        stack.callback(probe_pool.close)
        ignore_conflict(
            lambda: pool.request(
                "POST", "/api/v1/namespaces", {"metadata": {"name": "headroom-system"}}
            )
        )
        world = World()
        agents = Agents(pool, world, args.heartbeat, args.seed)
        for scale in sorted(args.nodes):
            print(f"scale {scale:,} nodes:", file=sys.stderr)
            first = len(world.nodes)
            create_nodes(pool, world, first, scale - first)
            if not world.experts:
                create_experts(pool, world, args.experts, args.replicas, rng)
                if args.history_days:
                    seed_histories(pool, world, args.history_days, args.heartbeat, rng)
            fill_nodes(
                pool, world, world.nodes[first:], args.pods_per_node, args.pod_objects == "all", rng
            )
            agents.halt()
            agents.stop.clear()
            agents.write_all()
            agents.start()
            if args.hold:
                print(
                    f"holding {args.hold:.0f}s with agents writing; KUBECONFIG={plane.kubeconfig}",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(args.hold)
                continue
            result = measure(
                args, plane, pool, probe_pool, world, agents, log_dir / f"controller-{scale}.log"
            )
            if args.restart_window:
                measure_restart(args, plane, world, result, log_dir / f"restart-{scale}.log")
            results.append(result)
            print_results(results, args)
        agents.halt()
    del sample
    return 0


def report_status_check() -> ResourceReportStatus:
    """The simulated status validates against the API model (no drift from the agent's)."""
    pod = PodFigure("00000000-0000-4000-8000-000000000001", "Burstable", 0.5, 2**30, 0.2, 2**29)
    return ResourceReportStatus.model_validate(report_status([pod], 60, random.Random(1)))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nodes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1000, 5000],
        help="comma-separated node counts, measured in turn on one growing cluster",
    )
    parser.add_argument("--experts", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=3, help="pods per expert")
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument(
        "--pod-objects",
        choices=["all", "experts"],
        default="all",
        help="create every pod as a Pod object, or only the experts' (others: UIDs in reports)",
    )
    parser.add_argument("--heartbeat", type=int, default=60, help="agent heartbeat, seconds")
    parser.add_argument(
        "--history-days",
        type=float,
        default=7.0,
        help="usage history each expert's recommendation starts with (0: none, a fresh install)",
    )
    parser.add_argument("--measure", type=float, default=120.0, help="steady window, seconds")
    parser.add_argument("--settle", type=float, default=10.0, help="pause before measuring")
    parser.add_argument("--probe-every", type=float, default=5.0, help="seconds between probes")
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=8, help="harness API connections")
    parser.add_argument(
        "--log-level",
        default="DEBUG",
        help="the controller's log level (DEBUG logs each batch's exact duration)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--restart-window",
        type=float,
        default=30.0,
        help="after the steady window, restart the controller and count its status writes"
        " this long after it leads (0: no restart)",
    )
    parser.add_argument(
        "--controller-pythonpath",
        help="run the controller from another checkout's operator/ directory (before/after)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="build each scale and keep its agents writing this long, without a controller "
        "(to profile one by hand against the printed kubeconfig)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 nodes, 50 experts, 30 s window (smoke run)"
    )
    args = parser.parse_args(argv)
    # SIGTERM (a background run is immune to Ctrl-C) cleans up like Ctrl-C would.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.nodes, args.experts, args.measure, args.heartbeat = [100], 50, 30.0, 20
        args.settle = 3.0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
