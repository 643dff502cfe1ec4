"""Helpers for the fault tests: a socket that counts who knocks while the API server is
away, real agent processes, and a simulated agent writing in the background."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from tests.controlplane.cluster import LOOPBACK, ControlPlane
from tests.integration.cluster_sim import SimulatedAgent


class ConnectionSink:
    """A real TCP listener on the API server's port while it is down.

    Every connection is accepted, attributed to the process that opened it (by
    its source port, through psutil) and closed at once: the client sees the
    server drop it, as when an API server dies mid-handshake. The counts come
    from the kernel's accept queue, so they cannot be flattered by a client.
    """

    def __init__(self, port: int, processes: dict[str, int]) -> None:
        self.port = port
        self.processes = processes  # label → pid
        self.counts: Counter[str] = Counter()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        deadline = time.monotonic() + 10
        while True:
            try:
                self._socket.bind((LOOPBACK, self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._socket.listen(128)
        self._socket.settimeout(0.2)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _owner(self, peer_port: int) -> str:
        for label, pid in self.processes.items():
            with contextlib.suppress(psutil.Error):
                for conn in psutil.Process(pid).net_connections(kind="tcp"):
                    if conn.laddr and conn.laddr.port == peer_port:
                        return label
        return "other"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, (_, peer_port) = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.counts[self._owner(peer_port)] += 1
            conn.close()


class AgentProcess:
    """``headroom agent`` as a real process for one (simulated) Node."""

    def __init__(self, cp: ControlPlane, node: str, log_dir: Path, **env: str) -> None:
        self.node = node
        self.log = log_dir / f"agent-{node}.log"
        self.env = {
            **os.environ,
            "NODE_NAME": node,
            "HEADROOM_INTERVAL_SECONDS": "1",
            "HEADROOM_LISTEN_PORT": "0",
            **env,
        }
        self.cmd = [
            sys.executable,
            "-m",
            "headroom.cli",
            "agent",
            "--kubeconfig",
            str(cp.kubeconfig),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=out)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class ReportPump:
    """A simulated agent writing every ``period`` seconds in a thread; failures are counted."""

    def __init__(self, agent: SimulatedAgent, period: float = 2.0) -> None:
        self.agent = agent
        self.period = period
        self.writes = 0
        self.failures = 0
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if self.paused.is_set():
                continue
            try:
                self.agent.report()
                self.writes += 1
            except Exception:
                self.failures += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
