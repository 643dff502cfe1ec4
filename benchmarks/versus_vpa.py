"""Headroom beside VPA's recommender and metrics-server on the same real pods (issue 16).

On the real node of tests/node (kubelet, containerd, runc; the image from our
Dockerfile), the Headroom chart runs as pods and metrics-server 0.9.0 and VPA's
recommender 1.8.1 (built from the Go module proxy by tests/scanners/build-go-tool.sh)
beside it. Six expert Deployments with a load we set (tests/node/versus.py: steady,
a compressed daily cycle, growing memory, an OOM kill, two containers, an HPA) each
get a ``VerticalPodAutoscaler`` with ``updateMode: "Off"``. At fixed times it prints,
per container, both tools' requests and bounds beside the right request and the
error of each, whether each would OOM-kill or starve the workload as set, what each
says about replicas; at the end the time to each tool's first advice and to the first
within 15 %, each component's RSS and CPU, and ``kubectl top`` beside the agent.

Needs root on Linux (as the node tier). Run from the repository root::

    sudo uv run python -m benchmarks.versus_vpa           # an hour: 5, 15, 30, 60 min
    sudo uv run python -m benchmarks.versus_vpa --quick   # six minutes: 2, 4, 6 min
    sudo uv run python -m benchmarks.versus_vpa --minutes 30
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import time
from contextlib import ExitStack

from tests.controlplane.binaries import extract_client_binaries, find_server_binaries
from tests.node.node import (
    build_images,
    node_bin_dir,
    node_control_plane,
    routable_ipv4,
    running_node,
)
from tests.node.peers import PeerSettings, peer_binaries, running_peers
from tests.node.versus import (
    FULL,
    QUICK,
    WORKLOADS,
    compare,
    install_headroom,
    markdown_summary,
    settings_line,
    summary_tables,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="six minutes, short loops")
    parser.add_argument(
        "--minutes", type=float, help="stop after this long (checkpoints up to it are printed)"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("versus_vpa: needs root (the real node: cgroups, network, mounts)", file=sys.stderr)
        return 2
    pace = QUICK if args.quick else FULL
    until = args.minutes * 60 if args.minutes else None
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"versus_vpa {'--quick ' if args.quick else ''}started {started.isoformat()} "
        f"at {commit or '?'}; {settings_line(pace)}"
    )
    for w in WORKLOADS:
        print(f"  {w.name:8} {w.what}")
    t = time.monotonic()
    server = find_server_binaries(build=True)
    client = extract_client_binaries()
    bins = node_bin_dir(build=True)
    peers_bins = peer_binaries(build=True)
    images = build_images()
    print(f"binaries and images ready in {time.monotonic() - t:.0f} s", flush=True)
    node_ip = routable_ipv4()
    with ExitStack() as stack:
        cp = stack.enter_context(node_control_plane(server, client, node_ip))
        node = stack.enter_context(running_node(cp, bins, images, node_ip))
        install_headroom(node, pace)
        settings = PeerSettings(
            metric_resolution_s=pace.metric_resolution_s, vpa_interval_s=pace.vpa_interval_s
        )
        peers = stack.enter_context(running_peers(cp, peers_bins, node_ip, settings))
        print(f"node, chart and peers up in {time.monotonic() - t:.0f} s", flush=True)
        result = compare(
            node,
            peers,
            dataclasses.replace(pace),
            until_s=until,
            echo=lambda text: print(text, flush=True),
        )
        print(summary_tables(result), flush=True)
        print("\n=== the same, as Markdown (the README's table) ===\n" + markdown_summary(result))
    print(f"node teardown undid: {node.teardown_report or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
