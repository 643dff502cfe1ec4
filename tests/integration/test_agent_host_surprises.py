"""The real ``headroom agent`` process against the API server while its host misbehaves.

A configured disk path vanishes and the node's procfs goes away and comes
back: the process never dies, the report says what it can (HR-002, HR-003,
AG-002), and writing resumes on its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.cluster import ControlPlane, wait_until
from tests.integration.kube_helpers import create_node, get_report, unique
from tests.unit.collection_fixtures import PROCFS


def _status(control_plane: ControlPlane, node: str) -> dict[str, Any]:
    status: dict[str, Any] = (get_report(control_plane, node) or {}).get("status") or {}
    return status


def _disk_errors(status: dict[str, Any]) -> dict[str, str | None]:
    return {disk["path"]: disk.get("error") for disk in status.get("disks", [])}


@pytest.mark.requirement("HR-002", "HR-003", "AG-002")
def test_a_vanished_disk_and_a_lost_procfs_are_reported_never_fatal(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    node = unique("node")
    create_node(control_plane, node)
    procfs = Path(shutil.copytree(PROCFS, tmp_path / "proc"))
    rootfs = tmp_path / "host"
    (rootfs / "data").mkdir(parents=True)
    log = tmp_path / "agent.log"
    env = {
        **os.environ,
        "NODE_NAME": node,
        "HEADROOM_PROCFS": str(procfs),
        "HEADROOM_ROOTFS": str(rootfs),
        "HEADROOM_DISK_PATHS": "/,/data",
        "HEADROOM_INTERVAL_SECONDS": "1",
        "HEADROOM_HEARTBEAT_SECONDS": "5",
        "HEADROOM_LISTEN_PORT": "0",
    }
    argv = [sys.executable, "-m", "headroom.cli", "agent", "--kubeconfig"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, str(control_plane.kubeconfig)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_until(
                lambda: _disk_errors(_status(control_plane, node)) == {"/": None, "/data": None},
                timeout=30,
                what="the first report, both paths measured",
            )

            (rootfs / "data").rmdir()
            wait_until(
                lambda: _disk_errors(_status(control_plane, node)).get("/data") is not None,
                timeout=15,
                what="the vanished path reported as an error",
            )
            assert _disk_errors(_status(control_plane, node))["/"] is None

            away = procfs.rename(tmp_path / "proc-away")
            procfs.mkdir()
            wait_until(
                lambda: "cannot read the node" in log.read_text(),
                timeout=15,
                what="the unreadable procfs logged",
            )
            assert proc.poll() is None, log.read_text()

            procfs.rmdir()
            away.rename(procfs)
            back = datetime.now().astimezone()
            wait_until(
                lambda: datetime.fromisoformat(_status(control_plane, node)["collectedAt"]) > back,
                timeout=30,
                what="a report collected after procfs came back",
            )
            assert "reading the node again" in log.read_text()

            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, log.read_text()
