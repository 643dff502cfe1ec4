"""What TLS on the admin endpoint costs the agent: RSS and handshake time, one run (PR-002).

Three real ``headroom agent`` processes, one after the other, against one real
kube-apiserver (``tests/controlplane``), admin endpoint on, at the agent's
default 15 s interval: plain HTTP (``HEADROOM_PLAIN_HTTP``), TLS with a
certificate from files (a Secret's mount), and TLS with the self-signed
certificate made at start (the default; a child process imports
``cryptography`` to make it, the agent does not). After each agent's first report, a scraper makes a request
every second for the window (a new connection each time: a TLS handshake each
time, the worst case) while the agent's VmRSS is sampled.

Printed per mode: steady RSS (median over the window), max RSS, the ratio to
plain HTTP, and the median request time (connect + handshake + answer).

Run from the repository root::

    uv run python -m benchmarks.agent_tls                # 30 s per mode
    uv run python -m benchmarks.agent_tls --window 10    # quicker
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._proc import ProcessSampler, format_table, percentile
from benchmarks.agent_overhead import REPO, agent_environment, free_port, make_kubepods_tree

if TYPE_CHECKING:
    from tests.controlplane.cluster import ControlPlane

MODES = ("plain", "files", "self-signed")


def _tls_env(mode: str, work: Path) -> dict[str, str]:
    if mode == "plain":
        return {"HEADROOM_PLAIN_HTTP": "true"}
    if mode == "files":
        from headroom.agent.tls import self_signed_pem

        cert, key = self_signed_pem(["127.0.0.1"])
        (work / "tls.crt").write_bytes(cert)
        (work / "tls.key").write_bytes(key)
        return {
            "HEADROOM_TLS_CERT_FILE": str(work / "tls.crt"),
            "HEADROOM_TLS_KEY_FILE": str(work / "tls.key"),
        }
    return {}


_CLIENT = ssl.create_default_context()
_CLIENT.check_hostname = False
_CLIENT.verify_mode = ssl.CERT_NONE


def _request(port: int, tls: bool) -> float:
    """One GET /healthz on a new connection; seconds, connect to last byte."""
    started = time.perf_counter()
    if tls:
        context = _CLIENT
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"/healthz answered {answer.status}")
    finally:
        connection.close()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds sampled per mode")
    args = parser.parse_args(argv)
    from tests.controlplane.cluster import ControlPlane, wait_until

    rows = []
    steady: dict[str, float] = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="headroom-tls-")))
        cgroupfs = work / "cgroup"
        cgroupfs.mkdir()
        make_kubepods_tree(cgroupfs, 20)
        env = agent_environment(cgroupfs)
        plane = stack.enter_context(ControlPlane(with_controller_manager=False))
        plane.install_crds(REPO / "crds")
        for mode in MODES:
            node = f"tls-bench-{mode}"
            plane.api("POST", "/api/v1/nodes", {"metadata": {"name": node}})
            port = free_port()
            agent_env = {
                **env,
                **_tls_env(mode, work),
                "NODE_NAME": node,
                "HEADROOM_LISTEN_HOST": "127.0.0.1",
                "HEADROOM_LISTEN_PORT": str(port),
            }
            with (work / f"agent-{mode}.log").open("wb") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "headroom.cli",
                        "agent",
                        "--kubeconfig",
                        str(plane.kubeconfig),
                    ],
                    env=agent_env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                path = f"/apis/headroom.dev/v1alpha1/resourcereports/{node}"
                wait_until(partial(_exists, plane, path), timeout=60, what=f"{mode} report")
                sampler = ProcessSampler(proc.pid)
                sampler.start(time.monotonic())
                latencies = []
                ends = time.monotonic() + args.window
                while time.monotonic() < ends:
                    latencies.append(_request(port, mode != "plain"))
                    sampler.sample()
                    time.sleep(1.0)
                cost = sampler.stop(time.monotonic())
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            steady[mode] = cost.steady_rss_mb
            rows.append(
                [
                    mode,
                    f"{cost.steady_rss_mb:.1f}",
                    f"{cost.max_rss_mb:.1f}",
                    f"{cost.steady_rss_mb / steady['plain']:.2f}",
                    f"{percentile(latencies, 50) * 1000:.1f}",
                    str(len(latencies)),
                ]
            )
    print(
        format_table(
            ["admin endpoint", "RSS MiB steady", "max", "× plain", "p50 ms/request", "requests"],
            rows,
        )
    )
    print(
        f"TLS (self-signed) costs {steady['self-signed'] - steady['plain']:+.1f} MiB of RSS, "
        f"TLS from files {steady['files'] - steady['plain']:+.1f} MiB, beside plain HTTP"
    )
    return 0


def _exists(plane: ControlPlane, path: str) -> bool:
    try:
        return bool(plane.api("GET", path))
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
