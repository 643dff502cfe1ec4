"""The controller's batch in-process, without an API server: where a recompute's time goes.

Builds the controller's in-memory model (:class:`~headroom.controller.state.ClusterState`)
from the same bodies the watches deliver — N Nodes, E expert Deployments with
their ReplicaSets and Pods, every other pod up to ``--pods-per-node`` as a plain
Pod, one ResourceReport per node — then runs batches as the runtime does:
between two batches the reports of ``N × batch ÷ heartbeat`` nodes arrive (2 s
batches, 60 s heartbeat), and each batch is timed in its parts:

* **ingest** — ``ClusterState.ingest_pending`` (history from the new reports);
* **compute** — ``compute_batch`` (every expert's recommendation and fit);
* **write decision** — ``RecommendationWriter.write`` for every expert against
  a client that answers at once (signature, change test, request bodies): the
  work the controller does per batch besides talking to the API server.

The first two are what ``headroom_recompute_duration_seconds`` measures (the
"full recompute", target ≤ 250 ms at 5,000 nodes and 1,000 experts). Also
printed: the model's RSS growth, and the writes a batch would send.

Run from the repository root::

    uv run python -m benchmarks.recompute --nodes 5000 --experts 1000
    uv run python -m benchmarks.recompute --quick          # 200 nodes, 50 experts
    uv run python -m benchmarks.recompute --profile        # cProfile of the batches
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks._proc import format_table, percentile, read_rss_bytes
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
from headroom.controller.compute import compute_batch
from headroom.controller.runtime import freeze_long_lived_objects
from headroom.controller.selector import LabelSelector
from headroom.controller.state import ClusterState
from headroom.controller.writer import RecommendationWriter
from headroom.recommend.policy import SizingDefaults

EXPERT_NAMESPACES = 20
TARGET_RECOMPUTE_MS = 250.0


class AnsweringClient:
    """Stands in for the API: every request succeeds at once; writes are counted."""

    def __init__(self) -> None:
        self.writes = 0
        self.version = 0

    def _answer(self) -> dict[str, Any]:
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}

    def get(self, path: str) -> dict[str, Any]:
        return self._answer()

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return self._answer()

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return self._answer()

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return self._answer()

    def delete(self, path: str) -> dict[str, Any]:
        self.writes += 1
        return {}


@dataclass
class Cluster:
    """The simulated cluster: node names and what each node's agent reports."""

    nodes: list[str] = field(default_factory=list)
    figures: SimulatedNodes = field(default_factory=SimulatedNodes)


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def populate(
    state: ClusterState, nodes: int, experts: int, replicas: int, per_node: int, seed: int
) -> Cluster:
    """Feed the state every object a fresh controller's watches would list."""
    rng = random.Random(seed)
    cluster = Cluster(nodes=[f"node-{i:05d}" for i in range(nodes)])
    for name in cluster.nodes:
        state.upsert_node(node_body(name))
    placements = iter(cluster.nodes * (experts * replicas // max(1, nodes) + 1))
    for index in range(experts):
        namespace, name = f"experts-{index % EXPERT_NAMESPACES}", f"expert-{index:04d}"
        cpu_m, memory_mi = rng.choice(EXPERT_CPU_M), rng.choice(EXPERT_MEMORY_MI)
        deployment = deployment_body(name, replicas, cpu_m, memory_mi)
        deployment_uid = _uid(rng)
        deployment["metadata"].update(namespace=namespace, uid=deployment_uid, generation=1)
        state.upsert_deployment(deployment)
        rs_name = f"{name}-5d8f9c7b6"
        rs = replicaset_body(rs_name, deployment, deployment_uid)
        rs["metadata"].update(namespace=namespace, uid=_uid(rng))
        state.upsert_replicaset(rs)
        for replica in range(replicas):
            node = next(placements)
            pod = pod_body(
                f"{rs_name}-{replica:03d}", node, cpu_m, memory_mi, (rs_name, rs["metadata"]["uid"])
            )
            pod["metadata"].update(namespace=namespace, uid=_uid(rng))
            short = pod["metadata"]["uid"].replace("-", "")[:10]
            pod["status"] = {
                "phase": "Running",
                # the app container as report_status lists it (its sidecar and sandbox unnamed)
                "containerStatuses": [
                    {"name": "main", "containerID": f"containerd://{short}01{'0' * 52}"}
                ],
            }
            state.upsert_pod(pod)
            figure = usage(rng, cpu_m, memory_mi, index)
            figure.uid = pod["metadata"]["uid"]
            cluster.figures.add(node, figure)
    for name in cluster.nodes:
        have = len(cluster.figures.pods.get(name, []))
        for slot in range(have, per_node):
            cpu_m, memory_mi = rng.choice(OTHER_CPU_M), rng.choice(OTHER_MEMORY_MI)
            pod = pod_body(f"{name}-{slot:02d}", name, cpu_m, memory_mi)
            pod["metadata"].update(namespace=f"work-{slot}", uid=_uid(rng))
            pod["status"] = {"phase": "Running"}
            state.upsert_pod(pod)
            figure = usage(rng, cpu_m, memory_mi, None)
            figure.uid = pod["metadata"]["uid"]
            cluster.figures.add(name, figure)
    return cluster


def report_body(
    name: str, pods: list[PodFigure], at: datetime, rng: random.Random
) -> dict[str, Any]:
    """A ResourceReport as the watch delivers it."""
    return {
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "ResourceReport",
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {"nodeName": name},
        "status": report_status(pods, 60, rng, at),
    }


@dataclass
class Timings:
    """Milliseconds per batch, by part."""

    ingest: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    write: list[float] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)


def run_batches(args: argparse.Namespace) -> int:
    """Build the model, then time ``args.batches`` batches."""
    gc.collect()
    rss_before = read_rss_bytes_self()
    started = time.perf_counter()
    state = ClusterState(selector=LabelSelector.parse("headroom.dev/expert=true"))
    cluster = populate(
        state, args.nodes, args.experts, args.replicas, args.pods_per_node, args.seed
    )
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    if args.history_days:  # as restored from a week-old controller's recommendations
        by_expert: dict[int, list[PodFigure]] = {}
        for pods in cluster.figures.pods.values():
            for pod in pods:
                if pod.expert is not None:
                    by_expert.setdefault(pod.expert, []).append(pod)
        for index, key in enumerate(state.experts):
            state.histories[key] = seeded_history(
                by_expert.get(index, []), args.history_days, args.heartbeat, now, rng
            )
    for name in cluster.nodes:
        state.upsert_report(report_body(name, cluster.figures.pods[name], now, rng))
    built = time.perf_counter() - started
    defaults = SizingDefaults()
    client = AnsweringClient()
    writer = RecommendationWriter(
        client,  # type: ignore[arg-type]
        identity="bench",
        persist_history_seconds=300,
        material_change_percent=10,
    )
    per_batch = max(1, round(args.nodes * args.batch_seconds / args.heartbeat))
    timings = Timings()
    profiler = cProfile.Profile() if args.profile else None
    turn = 0
    for batch in range(args.batches + 1):
        if batch:
            now += timedelta(seconds=args.batch_seconds)
            for _ in range(per_batch):
                name = cluster.nodes[turn % len(cluster.nodes)]
                turn += 1
                state.upsert_report(report_body(name, cluster.figures.pods[name], now, rng))
        if profiler is not None and batch:
            profiler.enable()
        t0 = time.perf_counter()
        state.ingest_pending()
        t1 = time.perf_counter()
        result = compute_batch(state, defaults, now, 3)
        t2 = time.perf_counter()
        writes_before = client.writes
        for expert, status in result.statuses.values():
            writer.write(expert, status, now)
        t3 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        if batch:  # the first batch learns every report at once: shown apart
            timings.ingest.append((t1 - t0) * 1000)
            timings.compute.append((t2 - t1) * 1000)
            timings.write.append((t3 - t2) * 1000)
            timings.writes.append(client.writes - writes_before)
        else:
            first = ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)
            freeze_long_lived_objects()  # as the runtime does once the model is complete
    gc.collect()
    rss_after = read_rss_bytes_self()
    print_results(args, timings, first, built, rss_after - rss_before, per_batch)
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
    return 0


def read_rss_bytes_self() -> int:
    """This process's VmRSS."""
    import os

    return read_rss_bytes(os.getpid())


def print_results(
    args: argparse.Namespace,
    timings: Timings,
    first: tuple[float, float, float],
    built: float,
    rss_growth: int,
    per_batch: int,
) -> None:
    """Per-part p50/p99/max and the full recompute against its target."""
    full = [a + b for a, b in zip(timings.ingest, timings.compute, strict=True)]
    rows = []
    for label, values in (
        ("ingest (ms)", timings.ingest),
        ("compute (ms)", timings.compute),
        ("full recompute = ingest + compute (ms)", full),
        ("write decisions (ms)", timings.write),
        ("writes per batch", [float(w) for w in timings.writes]),
    ):
        rows.append(
            [
                label,
                f"{percentile(values, 50):.1f}",
                f"{percentile(values, 99):.1f}",
                f"{max(values):.1f}",
            ]
        )
    print(
        f"{args.nodes:,} nodes, {args.experts:,} experts × {args.replicas} replicas, "
        f"{args.nodes * args.pods_per_node:,} pods; {args.batches} batches of {per_batch} "
        f"new reports ({args.batch_seconds:g} s batches, {args.heartbeat} s heartbeat)"
    )
    print(
        f"model built in {built:.1f}s, RSS +{rss_growth / 2**20:.0f} MB; first batch "
        f"(all reports): ingest {first[0]:.0f} ms, compute {first[1]:.0f} ms, "
        f"write decisions {first[2]:.0f} ms"
    )
    print(format_table(["per batch", "p50", "p99", "max"], rows))
    worst = percentile(full, 99)
    verdict = "met" if worst <= TARGET_RECOMPUTE_MS else "MISSED"
    print(
        f"full recompute p99 {worst:.0f} ms vs target ≤ {TARGET_RECOMPUTE_MS:g} ms: "
        f"{worst / TARGET_RECOMPUTE_MS:.2f}× ({verdict})"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--experts", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-seconds", type=float, default=2.0)
    parser.add_argument("--heartbeat", type=int, default=60)
    parser.add_argument(
        "--history-days",
        type=float,
        default=7.0,
        help="usage history each expert starts with (0: none, a fresh install)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the timed batches")
    parser.add_argument("--quick", action="store_true", help="200 nodes, 50 experts, 5 batches")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.experts, args.batches = 200, 50, 5
    return run_batches(args)


if __name__ == "__main__":
    sys.exit(main())
