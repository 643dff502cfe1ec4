"""Wire the agent together from settings: reader, API store, admin endpoint, signals."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from headroom import __version__
from headroom.agent.loop import Agent
from headroom.agent.reports import ApiReportStore
from headroom.agent.settings import AgentSettings, SettingsError
from headroom.collection.derive import derive_status
from headroom.collection.psutil_reader import PsutilNodeReader
from headroom.logs import setup_logging

if TYPE_CHECKING:
    from headroom.agent.admin import AdminServer
    from headroom.agent.metrics import AgentMetrics
    from headroom.agent.tls import TlsSource
    from headroom.kube.config import KubeConfig

__all__ = ["build_reader", "load_settings", "run_agent"]

log = logging.getLogger("headroom.agent")

_SETTING_FLAGS = (
    "node_name",
    "procfs",
    "rootfs",
    "cgroupfs",
    "disk_paths",
    "interval_seconds",
    "heartbeat_seconds",
    "change_threshold_percent",
    "kubeconfig",
    "listen_host",
    "listen_port",
    "gpu_recording",
    "tls_cert_file",
    "tls_key_file",
    "plain_http",
)


def load_settings(args: argparse.Namespace) -> AgentSettings:
    """Environment first, flags over it; raises SettingsError naming the setting."""
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in _SETTING_FLAGS
        if getattr(args, name, None) is not None
    }
    return AgentSettings.load(overrides)


def build_reader(settings: AgentSettings) -> PsutilNodeReader:
    """The real reader over the node's mounts, with a GPU reader where NVML is (GP-003)."""
    from headroom.collection.gpu.setup import choose_gpu_reader

    recording = str(settings.gpu_recording) if settings.gpu_recording else None
    gpu, why_not = choose_gpu_reader(str(settings.procfs), recording)
    if why_not:
        log.warning("%s", why_not)
    return PsutilNodeReader(settings.host_paths(), settings.disk_paths, gpu=gpu)


def build_tls(settings: AgentSettings) -> TlsSource | None:
    """The admin endpoint's certificate: the files given, else self-signed; None for plain.

    Raises OSError or ssl.SSLError when the files cannot be used.
    """
    if settings.plain_http:
        log.warning("admin endpoint: plain HTTP, bearer tokens travel in clear (plain_http)")
        return None
    from headroom.agent.tls import CertificateFiles, SelfSigned

    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        files = CertificateFiles(settings.tls_cert_file, settings.tls_key_file)
        files.load()
        log.info("admin endpoint: TLS with the certificate %s", settings.tls_cert_file)
        return files
    names = [settings.node_name or socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    made = SelfSigned.make(names)
    log.info("admin endpoint: TLS, self-signed certificate sha256 %s", made.fingerprint)
    return made


def _start_admin(
    settings: AgentSettings, agent: Agent, config: KubeConfig, metrics: AgentMetrics
) -> AdminServer:
    """Serve the admin endpoint; reviews go through a client of their own, so a
    request never waits behind a report write stuck on a slow API server."""
    from headroom.agent.admin import AdminServer, AdminSources
    from headroom.agent.auth import Authorizer, KubeReviewer
    from headroom.kube.client import KubeClient

    reviews = KubeClient(config, timeout=5.0, user_agent=f"headroom-agent/{__version__}")
    sources = AdminSources(
        node_name=agent.settings.node_name or "",
        latest=lambda: agent.latest,
        ready=agent.ready,
        authorizer=Authorizer(KubeReviewer(reviews)),
        registry=metrics.registry,
    )
    server = AdminServer(sources, settings.listen_host, settings.listen_port, build_tls(settings))
    server.start()
    return server


def _once(settings: AgentSettings, output: str, pause: float = 0.5) -> int:
    try:
        reader = build_reader(settings)
        first = reader.read()
        time.sleep(pause)
        second = reader.read()
    except OSError as error:  # HR-002: the node's procfs is not there or not readable
        where = f": {error.filename}" if error.filename else ""
        print(f"headroom agent: cannot read the node ({error.strerror}{where})", file=sys.stderr)
        return 1
    status = derive_status(
        first,
        second,
        collected_at=datetime.now(UTC),
        agent_version=__version__,
        heartbeat_seconds=settings.heartbeat_seconds,
    )
    name = settings.node_name or socket.gethostname()
    # The API models (pydantic), tables and YAML only for --once: the running
    # agent never imports them (PR-002); here the status is validated once.
    from headroom.api import ObjectMeta, ResourceReport, ResourceReportSpec, ResourceReportStatus
    from headroom.render import render_report

    report = ResourceReport(
        metadata=ObjectMeta(name=name),
        spec=ResourceReportSpec(nodeName=name),
        status=ResourceReportStatus.model_validate(status.to_wire()),
    )

    print(render_report(report, output))  # type: ignore[arg-type]
    return 0


def run_agent(args: argparse.Namespace) -> int:
    """``headroom agent``: ``--once`` prints a report; otherwise run until SIGTERM."""
    setup_logging(args.log_level, json_logs=None if not args.once else False)
    try:
        settings = load_settings(args)
    except SettingsError as error:
        print(f"headroom agent: invalid setting {error}", file=sys.stderr)
        return 2
    if args.once:
        return _once(settings, args.output)
    if not settings.node_name:
        print(
            "headroom agent: NODE_NAME is not set (use the downward API or --node-name)",
            file=sys.stderr,
        )
        return 2
    from headroom.kube.client import KubeClient
    from headroom.kube.config import ConfigError, load_config

    try:
        config = load_config(settings.kubeconfig)
        client = KubeClient(config, user_agent=f"headroom-agent/{__version__}")
    except (ConfigError, ValueError) as error:
        print(f"headroom agent: {error}", file=sys.stderr)
        return 2
    metrics: AgentMetrics | None = None
    if settings.listen_port:
        from headroom.agent.metrics import AgentMetrics

        metrics = AgentMetrics()
    agent = Agent(
        settings,
        build_reader(settings),
        ApiReportStore(client, settings.node_name),
        clock=time.monotonic,
        metrics=metrics,
    )
    server: AdminServer | None = None
    if metrics is not None:
        try:
            server = _start_admin(settings, agent, config, metrics)
        except OSError as error:  # ssl.SSLError is one: an unusable certificate
            where = f"{settings.listen_host}:{settings.listen_port}"
            print(f"headroom agent: cannot serve on {where}: {error}", file=sys.stderr)
            return 2
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log.info("agent %s starting for node %s", __version__, settings.node_name)
    agent.run(stop)
    if server is not None:
        server.stop()
    client.close()
    return 0
