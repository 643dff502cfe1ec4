"""What GPU experts cost a controller batch (GP-004, GP-005), measured in one run.

Builds the controller's in-memory model (``ClusterState``) from API-shaped bodies:
``--nodes`` GPU nodes (8 × ``nvidia.com/gpu`` each, an agent report with NVML figures
per node) and ``--experts`` expert Deployments requesting one GPU per replica, two
replicas each, with ``--distinct`` different GPU memory peaks. It then times
``compute_batch`` (median of ``--batches``, after one warm batch, one report changed
before each) beside the same nodes with no GPU experts.

Run from the repository root: ``uv run python -m benchmarks.gpu_recompute``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from headroom.controller.compute import compute_batch
from headroom.controller.selector import LabelSelector
from headroom.controller.state import ClusterState
from headroom.recommend.policy import SizingDefaults

GIB = 1 << 30
GPU = "nvidia.com/gpu"
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.memory": "81920"}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "64", "memory": "512Gi", GPU: "8"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _template(gpus: int) -> dict[str, Any]:
    return {
        "containers": [
            {
                "name": "model",
                "resources": {
                    "requests": {"cpu": "4", "memory": "16Gi"},
                    "limits": {GPU: str(gpus)} if gpus else {},
                },
            }
        ]
    }


def _report(name: str, at: datetime, pods: dict[str, int]) -> dict[str, Any]:
    gpus = [
        {
            "index": i,
            "uuid": f"GPU-{uid}",
            "memoryTotalBytes": 80 * GIB,
            "memoryUsedBytes": memory,
            "utilizationPercent": 50.0,
            "migMode": "Disabled",
        }
        for i, (uid, memory) in enumerate(pods.items())
    ]
    return {
        "metadata": {"name": name},
        "status": {
            "collectedAt": at.isoformat(),
            "heartbeatSeconds": 60,
            "cpu": {"utilizationPercent": 25.0, "logicalCores": 64},
            "memory": {"availableBytes": 400 * GIB, "totalBytes": 512 * GIB},
            "pods": [
                {
                    "uid": uid,
                    "qosClass": "Burstable",
                    "cpuCores": 1.0,
                    "memoryBytes": 4 * GIB,
                    "gpu": {
                        "memoryBytes": memory,
                        "devices": [{"uuid": f"GPU-{uid}", "gpuIndex": i, "memoryBytes": memory}],
                    },
                }
                for i, (uid, memory) in enumerate(pods.items())
            ],
            "gpus": gpus,
        },
    }


def build(
    nodes: int, experts: int, distinct: int
) -> tuple[ClusterState, dict[str, dict[str, int]]]:
    """The model of the cluster, and each node's GPU pods (uid → GPU memory)."""
    state = ClusterState(selector=LabelSelector.parse("headroom.dev/expert=true"))
    for n in range(nodes):
        state.upsert_node(_node(f"g{n}"))
    per_node: dict[str, dict[str, int]] = {f"g{n}": {} for n in range(nodes)}
    for e in range(experts):
        name = f"e{e}"
        state.upsert_deployment(
            {
                "metadata": {
                    "name": name,
                    "namespace": "team",
                    "uid": f"uid-{name}",
                    "generation": 1,
                    "labels": {"headroom.dev/expert": "true"},
                },
                "spec": {"replicas": 2, "template": {"spec": _template(1)}},
            }
        )
        state.upsert_replicaset(
            {
                "metadata": {
                    "name": f"{name}-rs",
                    "namespace": "team",
                    "ownerReferences": [{"kind": "Deployment", "name": name}],
                }
            }
        )
        for r in range(2):
            uid = f"{name}-p{r}"
            node = f"g{(2 * e + r) % nodes}"
            state.upsert_pod(
                {
                    "metadata": {
                        "name": uid,
                        "namespace": "team",
                        "uid": uid,
                        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-rs"}],
                    },
                    "spec": {"nodeName": node, **_template(1)},
                    "status": {"phase": "Running"},
                }
            )
            per_node[node][uid] = (10 + e % distinct) * GIB
    for node, pods in per_node.items():
        state.upsert_report(_report(node, T0, pods))
    state.ingest_pending()
    return state, per_node


def time_batches(nodes: int, experts: int, distinct: int, batches: int) -> float:
    """Median seconds of one batch."""
    state, per_node = build(nodes, experts, distinct)
    now = T0 + timedelta(seconds=5)
    first = compute_batch(state, SizingDefaults(), now)
    advised = [s.gpu for _, s in first.statuses.values() if s.gpu is not None and s.gpu.nodes]
    if len(advised) != experts:
        raise SystemExit(f"only {len(advised)} of {experts} GPU experts got GPU advice")
    times = []
    for b in range(batches):
        state.upsert_report(_report("g0", T0 + timedelta(seconds=b + 1), per_node["g0"]))
        state.ingest_pending()
        started = time.perf_counter()
        compute_batch(state, SizingDefaults(), now + timedelta(seconds=b + 1))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the batch time with and without GPU experts, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--experts", type=int, default=100)
    parser.add_argument("--distinct", type=int, default=20)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args(argv)
    with_gpu = time_batches(args.nodes, args.experts, args.distinct, args.batches)
    without = time_batches(args.nodes, 0, args.distinct, args.batches)
    print(
        f"{args.nodes} GPU nodes: batch {with_gpu * 1e3:.0f} ms with {args.experts} GPU experts "
        f"({args.distinct} distinct GPU memory needs), {without * 1e3:.0f} ms with none "
        f"(× {with_gpu / without:.1f}; {(with_gpu - without) / max(args.experts, 1) * 1e3:.2f} ms "
        "per GPU expert)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
