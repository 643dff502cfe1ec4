"""PsutilNodeReader over a recorded procfs, cgroup tree and a scratch rootfs.

FR-001..FR-005 come through psutil pointed at the node's procfs (HR-002);
HR-003: a disk path that is missing, not a directory, a dangling symlink or
unreadable yields an error entry, never an exception.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from headroom.collection.figures import ContainerLimits
from headroom.collection.host import HostPaths
from headroom.collection.psutil_reader import PsutilNodeReader, read_disk_figures
from headroom.collection.sample import NodeReader
from tests.unit.collection_fixtures import CGROUPFS, EXPECTED_PODS, OWN, PROCFS

TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "var" / "lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("node-1\n")
    (root / "broken").symlink_to(root / "nowhere")
    return root


@pytest.fixture
def paths(rootfs: Path) -> HostPaths:
    return HostPaths(
        procfs=str(PROCFS),
        rootfs=str(rootfs),
        cgroupfs=str(CGROUPFS / "v2-systemd"),
        own_procfs=str(OWN / "v2-limited" / "proc"),
        own_cgroupfs=str(OWN / "v2-limited" / "cgroup"),
    )


def test_it_is_a_node_reader(paths: HostPaths) -> None:
    reader: NodeReader = PsutilNodeReader(paths)
    assert reader.read().logical_cores >= 1


@pytest.mark.requirement("FR-001", "HR-002")
def test_fr001_cpu_times_from_the_node_procfs(paths: HostPaths) -> None:
    sample = PsutilNodeReader(paths).read()

    # cpu  4705356 2217 1497853 98162045 41212 0 29786 1874 12345 678 (guest* not added)
    total_ticks = 4705356 + 2217 + 1497853 + 98162045 + 41212 + 0 + 29786 + 1874
    busy_ticks = total_ticks - 98162045 - 41212
    assert sample.cpu_times.total == pytest.approx(total_ticks / TICKS)
    assert sample.cpu_times.busy == pytest.approx(busy_ticks / TICKS)


@pytest.mark.requirement("FR-002", "FR-003")
def test_fr002_fr003_core_counts_are_psutils(paths: HostPaths) -> None:
    sample = PsutilNodeReader(paths).read()

    assert sample.logical_cores == psutil.cpu_count(logical=True)
    assert sample.physical_cores == psutil.cpu_count(logical=False)


@pytest.mark.requirement("FR-004")
def test_fr004_memory_as_psutil_reports_it(paths: HostPaths) -> None:
    memory = PsutilNodeReader(paths).read().memory

    assert memory.totalBytes == 16303428 * 1024
    assert memory.availableBytes == 10117804 * 1024
    # psutil >= 7.2 on Linux: used = total - available (procps-ng 4 "free")
    assert memory.usedBytes == (16303428 - 10117804) * 1024
    assert memory.usedPercent == 37.9


@pytest.mark.requirement("HR-002")
def test_psutil_procfs_is_restored_after_a_read(paths: HostPaths) -> None:
    before = psutil.PROCFS_PATH
    PsutilNodeReader(paths).read()
    assert before == psutil.PROCFS_PATH


@pytest.mark.requirement("FR-006")
def test_pods_and_own_limits_come_from_the_configured_trees(paths: HostPaths) -> None:
    sample = PsutilNodeReader(paths).read()

    assert sorted(pod.uid for pod in sample.pods) == [pod.uid for pod in EXPECTED_PODS]
    assert sample.agent_container == ContainerLimits(
        cgroupVersion="v2", cpuLimitCores=0.5, memoryLimitBytes=268435456
    )
    assert sample.warnings == ()


def test_monotonic_comes_from_the_clock(paths: HostPaths) -> None:
    reader = PsutilNodeReader(paths, clock=lambda: 42.0)
    assert reader.read().monotonic == 42.0


@pytest.mark.requirement("FR-005")
def test_fr005_disk_paths_are_reported_as_configured(paths: HostPaths, rootfs: Path) -> None:
    disks = PsutilNodeReader(paths, ["/", "/var/lib"]).read().disks

    assert [disk.path for disk in disks] == ["/", "/var/lib"]
    vfs = os.statvfs(rootfs / "var" / "lib")
    for disk in disks:
        assert disk.error is None
        assert disk.totalBytes == vfs.f_blocks * vfs.f_frsize
        assert disk.usedPercent is not None
        assert 0 <= disk.usedPercent <= 100


@pytest.mark.requirement("HR-003")
@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/missing", "No such file or directory"),
        ("/etc/hostname", "not a directory"),
        ("/broken", "No such file or directory"),
        ("/var/lib/missing/deeper", "No such file or directory"),
    ],
)
def test_hr003_a_bad_disk_path_is_an_error_entry(paths: HostPaths, path: str, error: str) -> None:
    disks = PsutilNodeReader(paths, ["/", path]).read().disks

    assert disks[0].error is None
    assert disks[1].path == path
    assert disks[1].error == error
    assert disks[1].totalBytes is None


@pytest.mark.requirement("HR-003")
def test_hr003_an_unreadable_disk_path_is_an_error_entry(rootfs: Path) -> None:
    """Behind a mode-000 directory; root reads through it, so it is faked as well."""
    locked = rootfs / "locked"
    (locked / "inner").mkdir(parents=True)
    locked.chmod(0)
    try:
        figures = read_disk_figures("/locked/inner", str(locked / "inner"))
    finally:
        locked.chmod(0o755)
    if os.geteuid() != 0:
        assert figures.error == "Permission denied"
    else:
        assert figures.error is None


@pytest.mark.requirement("HR-003")
def test_hr003_a_statvfs_failure_is_an_error_entry(
    rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(psutil, "disk_usage", denied)

    figures = read_disk_figures("/var/lib", str(rootfs / "var" / "lib"))

    assert figures.error == "Permission denied"


@pytest.mark.requirement("HR-002", "FR-006")
def test_host_paths_mounted_under() -> None:
    paths = HostPaths.mounted_under("/host")

    assert paths.procfs == "/host/proc"
    assert paths.rootfs == "/host"
    assert paths.cgroupfs == "/host/sys/fs/cgroup"
    assert (paths.own_procfs, paths.own_cgroupfs) == ("/proc", "/sys/fs/cgroup")
    assert paths.on_node("/var/lib") == "/host/var/lib"
    assert paths.on_node("/") == "/host/"
    assert HostPaths().on_node("/var/lib") == "/var/lib"
