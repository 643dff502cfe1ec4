"""``headroom report`` at scale against a real kube-apiserver + etcd: seconds and peak RSS.

For each ``--nodes`` count (1,000 and 5,000 by default) the run grows one
control plane (``tests/controlplane``, no kube-controller-manager) to:

* N Nodes (32 cores, 128 GiB allocatable, Ready) and one ResourceReport each
  (realistic per-pod figures, written once through ``/status``);
* ``--pods-per-node`` (30) bound Pods per node (one container with requests;
  real pods carry more fields, so real pages are heavier);
* ``--experts`` (1,000) CapacityRecommendations with current, recommended
  and fit (20 listed nodes), as the controller writes them.

Then it runs ``headroom report -o json`` (Pods read as protobuf, the
default), the same with ``--pods-encoding json`` (alternating with it, round
by round) and ``headroom report --html FILE`` as real processes, ``--repeat``
times each, and prints the wall time (best and median), the kube-apiserver's
and etcd's CPU during the run (``/proc/<pid>/stat``), the peak RSS
(``ru_maxrss`` of the child) and the JSON ÷ protobuf ratios. Figures, not a
timed test.

``--hold SECONDS`` keeps the last cluster up afterwards (its KUBECONFIG
printed, nothing writing) to profile the command by hand; ``--repeat 0``
skips the timing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._proc import format_table, read_cpu_seconds
from benchmarks.scale import (
    EXPERT_NAMESPACES,
    Agents,
    Pool,
    World,
    component_pids,
    control_plane,
    create_nodes,
    ensure_namespaces,
    fill_nodes,
)
from headroom.api import API_VERSION
from headroom.recommend.quantities import format_cpu, format_memory

GiB = 2**30


def recommendation(index: int, nodes: list[str], rng: random.Random) -> dict[str, Any]:
    """An expert's CapacityRecommendation as the controller writes it."""
    cpu, memory = rng.choice((0.25, 0.5, 1.0, 2.0)), rng.choice((1, 2, 4)) * GiB
    rec_cpu, rec_memory = cpu * rng.uniform(0.5, 1.5), int(memory * rng.uniform(0.5, 1.2))
    listed = rng.sample(nodes, min(20, len(nodes)))
    return {
        "apiVersion": API_VERSION,
        "kind": "CapacityRecommendation",
        "metadata": {"name": f"expert-{index:04d}"},
        "spec": {"targetRef": {"name": f"expert-{index:04d}"}},
        "status": {
            "current": {
                "replicas": 3,
                "cpuRequestCores": cpu,
                "cpuRequest": format_cpu(cpu),
                "memoryRequestBytes": memory,
                "memoryRequest": format_memory(memory),
            },
            "recommended": {
                "replicas": rng.randint(1, 6),
                "replicasReason": "total CPU in use ÷ (request × 70 % target)",
                "cpuRequestCores": round(rec_cpu, 3),
                "cpuRequest": format_cpu(rec_cpu),
                "cpuReason": "p95 of per-pod CPU + 15 % margin",
                "memoryRequestBytes": rec_memory,
                "memoryRequest": format_memory(rec_memory),
                "memoryReason": "peak working set + 15 % margin",
            },
            "fit": {
                "additionalReplicas": 20 * 7,
                "nodes": [{"node": n, "replicas": 7, "limitedBy": "cpu"} for n in listed],
                "fittingNodeCount": len(nodes),
            },
        },
    }


def create_recommendations(pool: Pool, world: World, first: int, count: int) -> None:
    """``count`` recommendations (create, then ``/status``) spread over the expert namespaces."""
    rng = random.Random(first)
    ensure_namespaces(pool, (f"experts-{i}" for i in range(EXPERT_NAMESPACES)))

    def create(index: int) -> None:
        body = recommendation(index, world.nodes, rng)
        status = body.pop("status")
        namespace = f"experts-{index % EXPERT_NAMESPACES}"
        path = f"/apis/{API_VERSION}/namespaces/{namespace}/capacityrecommendations"
        created = pool.request("POST", path, body)
        created["status"] = status
        pool.request("PUT", f"{path}/{body['metadata']['name']}/status", created)

    pool.run_all(create, range(first, first + count), "recommendations")


def run_report(kubeconfig: Path, *args: str) -> tuple[float, int, int]:
    """One ``headroom report`` process: (seconds, peak RSS bytes, bytes written to stdout)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headroom.cli",
                "report",
                *args,
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdout=out,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"headroom report failed: {stderr}")
        size = out.seek(0, os.SEEK_END)
    return elapsed, usage.ru_maxrss * 1024, size


@dataclass
class Runs:
    """The runs of one command: seconds, peak RSS, output size, API server and etcd CPU."""

    seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    size: int = 0
    apiserver_cpu: list[float] = field(default_factory=list)
    etcd_cpu: list[float] = field(default_factory=list)


COMMANDS = {
    "-o json": ("-o", "json"),
    "-o json, Pods as JSON": ("-o", "json", "--pods-encoding", "json"),
}
"""Timed in turn, alternating, so a noisy machine weighs on both alike (Pods as protobuf is
the default; the JSON path is the comparison)."""


def measure(kubeconfig: Path, repeat: int, html: Path, pids: tuple[int, int]) -> dict[str, Runs]:
    """Each command ``repeat`` times (the two ``-o json`` interleaved), then ``--html``."""
    results = {label: Runs() for label in (*COMMANDS, "--html")}

    def timed(label: str, args: tuple[str, ...]) -> None:
        before = [read_cpu_seconds(pid)[0] for pid in pids]
        seconds, rss, size = run_report(kubeconfig, *args)
        after = [read_cpu_seconds(pid)[0] for pid in pids]
        runs = results[label]
        runs.seconds.append(seconds)
        runs.rss.append(rss)
        runs.size = size
        runs.apiserver_cpu.append(after[0] - before[0])
        runs.etcd_cpu.append(after[1] - before[1])

    for round_ in range(repeat):
        labels = list(COMMANDS) if round_ % 2 == 0 else list(reversed(COMMANDS))
        for label in labels:
            timed(label, COMMANDS[label])
    for _ in range(repeat):
        timed("--html", ("--html", str(html)))
    results["--html"].size = html.stat().st_size
    return results


def main(argv: list[str] | None = None) -> int:
    """Grow the cluster and time the report at each size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nodes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1000, 5000],
        help="comma-separated node counts, measured in turn on one growing cluster",
    )
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--experts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="harness API connections")
    parser.add_argument(
        "--hold", type=float, default=0.0, help="keep the last cluster up this long, seconds"
    )
    args = parser.parse_args(argv)
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    with ExitStack() as stack:
        plane = stack.enter_context(control_plane())
        pool = Pool(plane, args.threads, "bench-setup")
        stack.callback(pool.close)
        world = World()
        agents = Agents(pool, world, 60, 7)
        html = Path(tempfile.mkdtemp(prefix="headroom-report-")) / "report.html"
        for scale in sorted(args.nodes):
            print(f"scale {scale:,} nodes:", file=sys.stderr)
            first = len(world.nodes)
            create_nodes(pool, world, first, scale - first)
            fill_nodes(
                pool, world, world.nodes[first:], args.pods_per_node, True, random.Random(scale)
            )
            pool.run_all(agents.write, world.nodes[first:], "reports")
            if first == 0:
                create_recommendations(pool, world, 0, args.experts)
            if args.repeat < 1:
                continue
            results = measure(plane.kubeconfig, args.repeat, html, component_pids(plane))
            cluster = f"{scale:,} nodes, {world.pod_objects:,} pods, {args.experts:,} experts"
            for label, runs in results.items():
                rows.append(
                    [
                        cluster,
                        label,
                        f"{min(runs.seconds):.2f}",
                        f"{statistics.median(runs.seconds):.2f}",
                        f"{statistics.median(runs.apiserver_cpu):.2f}",
                        f"{statistics.median(runs.etcd_cpu):.2f}",
                        f"{max(runs.rss) / 2**20:.0f}",
                        f"{runs.size / 2**20:.1f}",
                    ]
                )
            fast, slow = results["-o json"], results["-o json, Pods as JSON"]
            ratios.append(
                [
                    cluster,
                    f"{statistics.median(slow.seconds) / statistics.median(fast.seconds):.2f}",
                    f"{statistics.median(slow.apiserver_cpu) / statistics.median(fast.apiserver_cpu):.2f}",
                    f"{max(slow.rss) / max(fast.rss):.2f}",
                ]
            )
            print(
                format_table(
                    [
                        "cluster",
                        "command",
                        "best s",
                        "median s",
                        "apiserver CPU s",
                        "etcd CPU s",
                        "peak RSS MB",
                        "output MB",
                    ],
                    rows,
                ),
                flush=True,
            )
            print(
                format_table(
                    ["cluster", "Pods JSON ÷ protobuf: median s", "apiserver CPU", "peak RSS"],
                    ratios,
                ),
                flush=True,
            )
        if args.hold:
            print(f"holding {args.hold:.0f}s; KUBECONFIG={plane.kubeconfig}", flush=True)
            time.sleep(args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
