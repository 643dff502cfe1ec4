"""The ``headroom report`` command: read, then print tables, JSON/YAML or write the HTML page."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from headroom import __version__

if TYPE_CHECKING:
    from headroom.report.view import ClusterReport

__all__ = ["add_arguments", "export", "run_report", "serialise"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's flags (shared by ``headroom report`` and ``kubectl headroom``)."""
    parser.add_argument("what", nargs="?", choices=["all", "nodes", "experts"], default="all")
    parser.add_argument("-n", "--namespace", help="experts of one namespace (default: all)")
    parser.add_argument(
        "-l", "--selector", dest="node_selector", help="only Nodes matching this label selector"
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "yaml", "patch", "csv"],
        help="table (default; plain text when not a terminal), json, yaml; for experts also "
        "patch (a strategic-merge patch per Deployment, for kubectl patch or apply "
        "--server-side) or csv (a row per container and per pod total)",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write one self-contained HTML page (charts, sortable tables) to FILE",
    )
    parser.add_argument(
        "--pods-encoding",
        choices=["protobuf", "json"],
        default="protobuf",
        help="how Pods are asked of the API server: protobuf (default, the cheaper) or json",
    )
    parser.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG, ~/.kube/config")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def serialise(report: ClusterReport, fmt: str) -> str:
    """``-o json`` / ``-o yaml``: the :class:`ClusterReport` with every key present."""
    data = report.model_dump(mode="json")
    if fmt == "json":
        return json.dumps(data, indent=2)
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False)).rstrip()


def export(report: ClusterReport, fmt: str) -> str:
    """``-o patch`` (one YAML document per Deployment with advice) or ``-o csv``."""
    from headroom.report.export import csv_rows, deployment_patch, hpa_patch, to_csv

    if fmt == "csv":
        return to_csv(
            row for e in report.experts for row in csv_rows(e.namespace, e.name, e.status())
        ).rstrip("\n")
    import yaml

    patches = [
        patch
        for e in report.experts
        for patch in (
            deployment_patch(e.namespace, e.name, e.status()),
            hpa_patch(e.namespace, e.status()),
        )
    ]
    found = [p for p in patches if p is not None]
    if not found:
        return "# no recommendations yet"
    return str(yaml.safe_dump_all(found, sort_keys=False)).rstrip()


def run_report(args: argparse.Namespace) -> int:
    """Read the cluster once and show it as asked; 1 with a message when it cannot be read."""
    from headroom.kube.client import ApiError, KubeClient
    from headroom.kube.config import ConfigError, load_config
    from headroom.report.fetch import read_cluster

    # The pages make millions of short-lived objects and no reference cycles worth
    # collecting (refcounting frees each page once folded): with the collector on,
    # its full passes over everything alive cost more than decoding the JSON
    # (10 MB of Pods: 0.1 s without, 0.2-1.2 s with). This process only reads once.
    gc.disable()
    try:
        config = load_config(args.kubeconfig, context=args.context)
        client = KubeClient(config, timeout=60.0, user_agent=f"headroom-report/{__version__}")
        report = read_cluster(
            client,
            nodes=args.what in ("all", "nodes") and args.output not in ("patch", "csv"),
            experts=args.what in ("all", "experts"),
            namespace=args.namespace,
            node_selector=args.node_selector,
            pods_as_protobuf=args.pods_encoding == "protobuf",
        )
        client.close()
    except (ConfigError, ApiError, ValueError, OSError) as error:
        print(f"headroom report: {error}", file=sys.stderr)
        return 1
    if args.html is not None:
        from headroom.report.html import render_html

        args.html.write_text(render_html(report, source=config.server), encoding="utf-8")
        print(
            f"wrote {args.html}: {report.summary.nodes} nodes, {report.summary.experts} experts",
            file=sys.stderr,
        )
        if args.output is None:
            return 0
    fmt = args.output or "table"
    if fmt in ("patch", "csv"):
        print(export(report, fmt))
    elif fmt == "table":
        from headroom.report.terminal import print_tables

        print_tables(
            report, nodes=args.what in ("all", "nodes"), experts=args.what in ("all", "experts")
        )
    else:
        print(serialise(report, fmt))
    return 0
