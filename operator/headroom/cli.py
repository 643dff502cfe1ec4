"""``headroom``: one command, three roles (agent, controller, report) and the generators (CRDs, API docs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from headroom import __version__
from headroom.report.command import add_arguments as add_report_arguments

__all__ = ["kubectl_plugin", "main"]


def _agent_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser(
        "agent",
        help="measure this node and keep its ResourceReport current",
        description="Settings come from HEADROOM_* environment variables (NODE_NAME for the "
        "node); flags override them.",
    )
    agent.add_argument(
        "--once", action="store_true", help="collect twice, print, exit (no cluster)"
    )
    agent.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    agent.add_argument("--node-name", dest="node_name")
    agent.add_argument("--procfs", help="the node's procfs (default /proc)")
    agent.add_argument("--rootfs", help="where the node's / is mounted (default /)")
    agent.add_argument("--cgroupfs", help="the node's cgroup filesystem (default /sys/fs/cgroup)")
    agent.add_argument(
        "--disk-path", dest="disk_paths", action="append", help="node path to measure (repeatable)"
    )
    agent.add_argument("--interval", dest="interval_seconds", type=float)
    agent.add_argument("--heartbeat", dest="heartbeat_seconds", type=int)
    agent.add_argument("--threshold", dest="change_threshold_percent", type=float)
    agent.add_argument("--kubeconfig")
    agent.add_argument(
        "--gpu-recording",
        dest="gpu_recording",
        help="replay recorded NVML answers from this file instead of the real NVML",
    )
    agent.add_argument("--listen-host", dest="listen_host", help="admin endpoint address")
    agent.add_argument(
        "--listen-port", dest="listen_port", type=int, help="admin endpoint port (0: off)"
    )
    agent.add_argument(
        "--tls-cert-file", dest="tls_cert_file", help="admin endpoint certificate (PEM)"
    )
    agent.add_argument("--tls-key-file", dest="tls_key_file", help="its private key (PEM)")
    agent.add_argument(
        "--plain-http",
        dest="plain_http",
        action="store_true",
        default=None,
        help="serve the admin endpoint without TLS (tokens travel in clear)",
    )
    agent.add_argument("--log-level", default="INFO")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headroom", description=__doc__)
    parser.add_argument("--version", action="version", version=f"headroom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _agent_parser(sub)
    controller = sub.add_parser(
        "controller",
        help="turn reports, Nodes and expert Deployments into CapacityRecommendations",
        description="Settings come from HEADROOM_* environment variables; flags override them.",
    )
    controller.add_argument("--expert-selector", dest="expert_selector")
    controller.add_argument("--kubeconfig")
    controller.add_argument("--metrics-port", dest="metrics_port", type=int)
    controller.add_argument("--health-port", dest="health_port", type=int)
    controller.add_argument("--identity", help="this replica's name in the Lease")
    controller.add_argument("--lease-namespace", dest="lease_namespace")
    controller.add_argument("--recompute-seconds", dest="recompute_seconds", type=float)
    controller.add_argument("--log-level", default="INFO")
    report = sub.add_parser(
        "report",
        help="per node and per expert: allocatable, requested, used, recommended, where more fit",
        description="Also installed as the kubectl plugin `kubectl headroom`.",
    )
    add_report_arguments(report)
    crds = sub.add_parser("crds", help="generate the CRD YAML from the API models")
    crds.add_argument(
        "--output-dir",
        action="append",
        type=Path,
        help="where to write (repeatable; default crds/ and charts/headroom/crds/)",
    )
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ")
    docs = sub.add_parser("docs", help="generate documentation pages from the API models")
    docs.add_argument("page", choices=["api"], help="api: the API reference (docs/api.md)")
    docs.add_argument(
        "--output", type=Path, help="where to write (default docs/api.md)", default=None
    )
    docs.add_argument("--check", action="store_true", help="exit 1 if the page differs")
    return parser


def _crds(args: argparse.Namespace) -> int:
    from headroom.api.crdgen import render_all, write_all

    dirs: list[Path] = args.output_dir or [Path("crds"), Path("charts/headroom/crds")]
    if args.check:
        stale = [
            str(d / name)
            for d in dirs
            for name, text in render_all().items()
            if not (d / name).exists() or (d / name).read_text(encoding="utf-8") != text
        ]
        for path in stale:
            print(f"stale: {path} (run `headroom crds`)", file=sys.stderr)
        return 1 if stale else 0
    for written in write_all(*dirs):
        print(f"wrote {written}")
    return 0


def _docs(args: argparse.Namespace) -> int:
    from headroom.api.apidocs import API_DOCS_PATH, render_api_docs

    path: Path = args.output or Path(API_DOCS_PATH)
    text = render_api_docs()
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"stale: {path} (run `headroom docs api`)", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``headroom`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "agent":
        from headroom.agent.main import run_agent

        return run_agent(args)
    if args.command == "controller":
        from headroom.controller.main import run_controller

        return run_controller(args)
    if args.command == "crds":
        return _crds(args)
    if args.command == "docs":
        return _docs(args)
    if args.command == "report":
        from headroom.report.command import run_report

        return run_report(args)
    raise AssertionError(args.command)  # pragma: no cover - argparse refuses others


def kubectl_plugin() -> int:
    """Entry point of ``kubectl-headroom``: ``kubectl headroom ARGS`` is ``headroom report ARGS``."""
    return main(["report", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
