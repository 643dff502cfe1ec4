"""``headroom agent`` as a real process: reports, then stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.controlplane.cluster import ControlPlane, wait_until
from tests.integration.kube_helpers import create_node, get_report, unique


def test_agent_process_reports_and_stops_on_sigterm(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    node_name = unique("node")
    create_node(control_plane, node_name)
    log = tmp_path / "agent.log"
    env = {
        **os.environ,
        "NODE_NAME": node_name,
        "HEADROOM_INTERVAL_SECONDS": "1",
        "HEADROOM_HEARTBEAT_SECONDS": "5",
        "HEADROOM_LISTEN_PORT": "0",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headroom.cli",
                "agent",
                "--kubeconfig",
                str(control_plane.kubeconfig),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: (get_report(control_plane, node_name) or {}).get("status") is not None,
                timeout=30,
                what="the agent's first report",
            )
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, log.read_text()
    assert time.monotonic() - started < 5
    assert "stopping" in log.read_text()
