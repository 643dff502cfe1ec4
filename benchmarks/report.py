"""``headroom report`` at scale against a real kube-apiserver + etcd: seconds and peak RSS.

For each ``--nodes`` count (1,000 and 5,000 by default) the run grows one
control plane (``tests/controlplane``, no kube-controller-manager) to:

* N Nodes (32 cores, 128 GiB allocatable, Ready) and one ResourceReport each
  (realistic per-pod figures, written once through ``/status``);
* ``--pods-per-node`` (30) bound Pods per node (one container with requests;
  real pods carry more fields, so real pages are heavier);
* ``--experts`` (1,000) CapacityRecommendations with current, recommended
  and fit (20 listed nodes), as the controller writes them.

Then it runs ``headroom report -o json`` and ``headroom report --html FILE``
as real processes, ``--repeat`` times each, and prints the wall time (best
and median) and the peak RSS (``ru_maxrss`` of the child). Figures, not a
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
from pathlib import Path
from typing import Any

from benchmarks._proc import format_table
from benchmarks.scale import (
    EXPERT_NAMESPACES,
    Agents,
    Pool,
    World,
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


def measure(kubeconfig: Path, repeat: int, html: Path) -> dict[str, tuple[float, float, int, int]]:
    """Best and median seconds, peak RSS and output size of ``-o json`` and ``--html``."""
    results = {}
    for label, args in (("-o json", ("-o", "json")), ("--html", ("--html", str(html)))):
        runs = [run_report(kubeconfig, *args) for _ in range(repeat)]
        seconds = [r[0] for r in runs]
        size = runs[-1][2] if label == "-o json" else html.stat().st_size
        results[label] = (min(seconds), statistics.median(seconds), max(r[1] for r in runs), size)
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
    rows = []
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
            for label, (best, median, rss, size) in measure(
                plane.kubeconfig, args.repeat, html
            ).items():
                rows.append(
                    [
                        f"{scale:,} nodes, {world.pod_objects:,} pods, {args.experts:,} experts",
                        label,
                        f"{best:.2f}",
                        f"{median:.2f}",
                        f"{rss / 2**20:.0f}",
                        f"{size / 2**20:.1f}",
                    ]
                )
            print(
                format_table(
                    ["cluster", "command", "best s", "median s", "peak RSS MB", "output MB"], rows
                ),
                flush=True,
            )
        if args.hold:
            print(f"holding {args.hold:.0f}s; KUBECONFIG={plane.kubeconfig}", flush=True)
            time.sleep(args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
