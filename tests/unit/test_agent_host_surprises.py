"""Host surprises are reported, never fatal: the real reader over fake host trees.

A configured disk path that vanishes, a pod cgroup that goes while it is read,
a procfs that cannot be read: each cycle completes, what could be read is
reported, the problem is logged (or is an error entry), and the agent picks up
again when the host is back (HR-002, HR-003, FR-006, AG-002).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from headroom.agent.loop import Agent
from headroom.agent.settings import AgentSettings
from headroom.cli import main
from headroom.collection.figures import ReportStatus
from headroom.collection.host import HostPaths
from headroom.collection.psutil_reader import PsutilNodeReader
from tests.unit.collection_fixtures import CGROUPFS, EXPECTED_PODS, OWN, PROCFS

INTERVAL = 15.0
BURSTABLE = "kubepods.slice/kubepods-burstable.slice"
BURSTABLE_V2_SYSTEMD = (
    f"{BURSTABLE}/kubepods-burstable-pod0b9c8d7e_6f5a_4b3c_9d2e_1f0a9b8c7d6e.slice"
)
NEW_UID = "11111111-2222-4333-8444-555555555555"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    def __init__(self) -> None:
        self.written: list[ReportStatus] = []

    def write(self, status: ReportStatus) -> None:
        self.written.append(status)


class Host:
    """A node's procfs, rootfs and cgroupfs as copies the test may break."""

    def __init__(self, root: Path) -> None:
        self.procfs = Path(shutil.copytree(PROCFS, root / "proc"))
        self.rootfs = root / "host"
        (self.rootfs / "data").mkdir(parents=True)
        self.cgroupfs = Path(shutil.copytree(CGROUPFS / "v2-systemd", root / "cgroup"))
        self.clock = Clock()
        self.store = Store()
        paths = HostPaths(
            procfs=str(self.procfs),
            rootfs=str(self.rootfs),
            cgroupfs=str(self.cgroupfs),
            own_procfs=str(OWN / "v2-limited" / "proc"),
            own_cgroupfs=str(OWN / "v2-limited" / "cgroup"),
        )
        settings = AgentSettings(
            node_name="worker-1",
            disk_paths=["/", "/data"],
            interval_seconds=INTERVAL,
            heartbeat_seconds=60,
        )
        reader = PsutilNodeReader(paths, settings.disk_paths, clock=self.clock)
        self.agent = Agent(settings, reader, self.store, clock=self.clock)

    def cycle(self) -> None:
        """One cycle, then the interval passes (any exception fails the test)."""
        self.clock.now += self.agent.tick()


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def disks(status: ReportStatus) -> dict[str, str | None]:
    return {disk.path: disk.error for disk in status.disks}


@pytest.mark.requirement("HR-003", "FR-005")
def test_a_disk_path_removed_between_cycles_is_an_error_entry_and_writes_go_on(
    host: Host,
) -> None:
    host.cycle()
    assert disks(host.store.written[-1]) == {"/": None, "/data": None}

    (host.rootfs / "data").rmdir()
    host.cycle()
    status = host.store.written[-1]
    assert disks(status) == {"/": None, "/data": "No such file or directory"}
    assert status.disks[0].totalBytes is not None, "the other path is still measured"
    assert len(host.store.written) == 2, "a disk error appearing is worth a write"

    (host.rootfs / "data").mkdir()
    host.cycle()
    assert disks(host.store.written[-1]) == {"/": None, "/data": None}


@pytest.mark.requirement("FR-006", "HR-002")
def test_a_pod_cgroup_gone_mid_read_is_skipped_with_a_warning(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    host.cycle()
    assert len(host.store.written[-1].pods) == len(EXPECTED_PODS)

    # A pod being deleted: listed, but its memory.current is gone when read.
    going = host.cgroupfs / BURSTABLE / f"kubepods-burstable-pod{NEW_UID.replace('-', '_')}.slice"
    shutil.copytree(host.cgroupfs / BURSTABLE_V2_SYSTEMD, going)
    (going / "memory.current").unlink()
    with caplog.at_level(logging.WARNING, logger="headroom"):
        host.cycle()
        host.cycle()  # the same warning is not repeated every cycle

    latest = host.agent.latest
    assert latest is not None
    assert {pod.uid for pod in latest.pods} == {p.uid for p in EXPECTED_PODS}
    assert latest.podCount == len(EXPECTED_PODS)
    warned = [r.getMessage() for r in caplog.records if NEW_UID in r.getMessage()]
    assert len(warned) == 1 and "vanished while read" in warned[0]

    shutil.rmtree(going)  # deleted: gone from the listing, no warning any more
    host.cycle()
    assert host.agent.warnings == ()


@pytest.mark.requirement("HR-002", "AG-002")
def test_an_unreadable_procfs_is_logged_never_fatal_and_recovers(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    host.cycle()
    written = len(host.store.written)
    away = host.procfs.with_name("proc-away")
    host.procfs.rename(away)
    host.procfs.mkdir()  # mounted, but empty

    with caplog.at_level(logging.WARNING, logger="headroom"):
        for _ in range(4):
            host.cycle()
    assert len(host.store.written) == written, "no figures, so nothing is written"
    assert host.agent.ready() is False, "/readyz tells the kubelet after 3 intervals"
    failures = [r.getMessage() for r in caplog.records if "cannot read the node" in r.getMessage()]
    assert len(failures) == 1 and "stat" in failures[0]

    caplog.clear()
    host.procfs.rmdir()
    away.rename(host.procfs)
    with caplog.at_level(logging.WARNING, logger="headroom"):
        host.cycle()
        host.clock.now += 60
        host.cycle()
    assert host.agent.ready() is True
    assert len(host.store.written) > written, "writing again once the node can be read"
    assert any("reading the node again" in r.getMessage() for r in caplog.records)


@pytest.mark.requirement("HR-002", "AG-003")
def test_once_with_an_unreadable_procfs_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["agent", "--once", "--procfs", str(tmp_path)]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1
    assert "cannot read the node" in errors[0] and str(tmp_path) in errors[0]
