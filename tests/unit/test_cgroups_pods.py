"""Per-pod usage from every cgroup layout: v1/v2 × systemd/cgroupfs × the three QoS classes.

Reads the recorded trees in ``tests/fixtures/cgroupfs`` (see
``collection_fixtures``); trees that must change during a test are copied.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from headroom.collection.cgroupfiles import OpenFiles
from headroom.collection.cgroups import (
    RESCAN_CYCLES,
    PodCgroupReader,
    container_id_from_cgroup_name,
    detect_cgroup_version,
    detect_kubepods_layout,
    pod_uid_from_cgroup_name,
)
from headroom.collection.sample import ContainerCounters, PodCounters
from tests.unit.collection_fixtures import CGROUPFS, EXPECTED_CONTAINERS, EXPECTED_PODS, POD_TREES

BURSTABLE_UID = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
BURSTABLE_V2_SYSTEMD = (
    "kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod0b9c8d7e_6f5a_4b3c_9d2e_1f0a9b8c7d6e.slice"
)


def _sorted(pods: tuple[PodCounters, ...]) -> list[PodCounters]:
    return sorted(pods, key=lambda pod: pod.uid)


@pytest.fixture
def v2_systemd_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CGROUPFS / "v2-systemd", tmp_path / "cgroup", symlinks=True))


@pytest.mark.requirement("FR-006")
@pytest.mark.parametrize("tree", POD_TREES)
def test_every_pod_in_every_qos_class_is_read(tree: str) -> None:
    pods, warnings = PodCgroupReader(str(CGROUPFS / tree)).read()

    assert warnings == ()
    assert len(pods) == len(EXPECTED_PODS)
    for got, want in zip(_sorted(pods), EXPECTED_PODS, strict=True):
        assert got.uid == want.uid
        assert got.qos_class == want.qos_class
        assert got.cpu_usage_seconds == pytest.approx(want.cpu_usage_seconds, abs=1e-9)
        assert got.memory_working_set_bytes == want.memory_working_set_bytes


@pytest.mark.requirement("FR-006")
@pytest.mark.parametrize(
    ("tree", "version", "driver", "cpu_root", "memory_root"),
    [
        ("v2-systemd", "v2", "systemd", "kubepods.slice", "kubepods.slice"),
        ("v2-cgroupfs", "v2", "cgroupfs", "kubepods", "kubepods"),
        (
            "v2-kind",
            "v2",
            "systemd",
            "kubelet.slice/kubelet-kubepods.slice",
            "kubelet.slice/kubelet-kubepods.slice",
        ),
        ("v1-systemd", "v1", "systemd", "cpu,cpuacct/kubepods.slice", "memory/kubepods.slice"),
        ("v1-cgroupfs", "v1", "cgroupfs", "cpuacct/kubepods", "memory/kubepods"),
    ],
)
def test_layout_is_detected(
    tree: str, version: str, driver: str, cpu_root: str, memory_root: str
) -> None:
    layout = detect_kubepods_layout(str(CGROUPFS / tree))

    assert layout is not None
    assert (layout.version, layout.driver) == (version, driver)
    assert layout.cpu_root == f"{CGROUPFS / tree}/{cpu_root}"
    assert layout.memory_root == f"{CGROUPFS / tree}/{memory_root}"


def test_hybrid_host_with_unified_mount_counts_as_v1() -> None:
    assert (CGROUPFS / "v1-systemd" / "unified" / "cgroup.controllers").exists()
    assert detect_cgroup_version(str(CGROUPFS / "v1-systemd")) == "v1"


@pytest.mark.parametrize(
    ("name", "uid"),
    [
        ("kubepods-burstable-pod0b9c8d7e_6f5a_4b3c_9d2e_1f0a9b8c7d6e.slice", BURSTABLE_UID),
        (
            "kubepods-besteffort-podc4d5e6f7_0819_4a2b_bc3d_4e5f60718293.slice",
            "c4d5e6f7-0819-4a2b-bc3d-4e5f60718293",
        ),
        (
            "kubepods-pod3f1a2b4c_5d6e_4f70_8192_a3b4c5d6e7f8.slice",
            "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8",
        ),
        ("kubelet-kubepods-burstable-pod0b9c8d7e_6f5a_4b3c_9d2e_1f0a9b8c7d6e.slice", BURSTABLE_UID),
        (f"pod{BURSTABLE_UID}", BURSTABLE_UID),
        ("pod6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c", "6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c"),
        ("kubepods-pod6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c.slice", "6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c"),
    ],
)
def test_pod_uid_is_parsed_from_the_directory_name(name: str, uid: str) -> None:
    assert pod_uid_from_cgroup_name(name) == uid


@pytest.mark.parametrize(
    "name",
    [
        "kubepods-burstable.slice",
        "kubepods-besteffort.slice",
        "burstable",
        "besteffort",
        "cgroup.procs",
        "cpu.stat",
        "kubepods-pod.slice",
        "pod",
        "cri-containerd-0123abcd.scope",
    ],
)
def test_names_that_are_not_pods_are_ignored(name: str) -> None:
    assert pod_uid_from_cgroup_name(name) is None


def test_a_pod_whose_files_vanish_mid_read_is_skipped_with_a_warning(
    v2_systemd_copy: Path,
) -> None:
    (v2_systemd_copy / BURSTABLE_V2_SYSTEMD / "memory.current").unlink()

    pods, warnings = PodCgroupReader(str(v2_systemd_copy)).read()

    assert len(warnings) == 1
    assert "vanished while read" in warnings[0] and BURSTABLE_UID in warnings[0]
    assert BURSTABLE_UID not in {pod.uid for pod in pods}
    assert len(pods) == len(EXPECTED_PODS) - 1


def test_a_v1_pod_missing_from_the_memory_hierarchy_is_skipped(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(CGROUPFS / "v1-cgroupfs", tmp_path / "cgroup", symlinks=True))
    shutil.rmtree(tree / "memory" / "kubepods" / "burstable" / f"pod{BURSTABLE_UID}")

    pods, warnings = PodCgroupReader(str(tree)).read()

    assert len(warnings) == 1 and BURSTABLE_UID in warnings[0]
    assert BURSTABLE_UID not in {pod.uid for pod in pods}


def test_a_removed_cgroup_reading_enodev_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_read = OpenFiles.read

    def read(files: OpenFiles, path: str) -> bytes:
        if BURSTABLE_UID.replace("-", "_") in path:
            raise OSError(errno.ENODEV, "No such device")
        return real_read(files, path)

    monkeypatch.setattr(OpenFiles, "read", read)
    pods, warnings = PodCgroupReader(str(CGROUPFS / "v2-systemd")).read()

    assert len(warnings) == 1 and "vanished while read" in warnings[0]
    assert len(pods) == len(EXPECTED_PODS) - 1


def test_an_unreadable_pod_is_left_out_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real_read = OpenFiles.read

    def read(files: OpenFiles, path: str) -> bytes:
        if BURSTABLE_UID.replace("-", "_") in path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_read(files, path)

    monkeypatch.setattr(OpenFiles, "read", read)
    pods, warnings = PodCgroupReader(str(CGROUPFS / "v2-systemd")).read()

    assert len(pods) == len(EXPECTED_PODS) - 1
    assert len(warnings) == 1
    assert "1 pod cgroup(s) unreadable" in warnings[0]
    assert "Permission denied" in warnings[0]


def test_a_garbled_file_is_a_warning_not_an_exception(v2_systemd_copy: Path) -> None:
    (v2_systemd_copy / BURSTABLE_V2_SYSTEMD / "cpu.stat").write_text("user_usec 12\n")

    pods, warnings = PodCgroupReader(str(v2_systemd_copy)).read()

    assert len(pods) == len(EXPECTED_PODS) - 1
    assert "usage_usec" in warnings[0]


def test_working_set_is_floored_at_zero(v2_systemd_copy: Path) -> None:
    pod = v2_systemd_copy / BURSTABLE_V2_SYSTEMD
    (pod / "memory.current").write_text("1000\n")

    pods, _ = PodCgroupReader(str(v2_systemd_copy)).read()

    assert {p.uid: p.memory_working_set_bytes for p in pods}[BURSTABLE_UID] == 0


def test_pods_that_come_and_go_are_seen_on_the_next_read(v2_systemd_copy: Path) -> None:
    reader = PodCgroupReader(str(v2_systemd_copy))
    assert len(reader.read()[0]) == len(EXPECTED_PODS)

    shutil.rmtree(v2_systemd_copy / BURSTABLE_V2_SYSTEMD)
    assert len(reader.read()[0]) == len(EXPECTED_PODS) - 1

    new_uid = "aaaaaaaa-0000-4000-8000-000000000001"
    burstable = v2_systemd_copy / "kubepods.slice" / "kubepods-burstable.slice"
    shutil.copytree(
        burstable / "kubepods-burstable-pod6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c.slice",
        burstable / f"kubepods-burstable-pod{new_uid.replace('-', '_')}.slice",
    )
    qos_by_uid = {pod.uid: pod.qos_class for pod in reader.read()[0]}
    assert qos_by_uid[new_uid] == "Burstable"
    assert len(qos_by_uid) == len(EXPECTED_PODS)


def test_a_node_without_kubepods_gives_no_pods_and_a_warning(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")

    pods, warnings = PodCgroupReader(str(tmp_path)).read()

    assert pods == ()
    assert "no kubepods cgroup" in warnings[0]


def test_layout_is_found_again_after_the_kubepods_cgroup_reappears(
    v2_systemd_copy: Path, tmp_path: Path
) -> None:
    reader = PodCgroupReader(str(v2_systemd_copy))
    reader.read()
    assert reader.layout is not None

    kubepods = v2_systemd_copy / "kubepods.slice"
    kubepods.rename(tmp_path / "aside")
    pods, warnings = reader.read()
    assert pods == ()
    assert warnings
    assert reader.layout is None

    (tmp_path / "aside").rename(kubepods)
    pods, warnings = reader.read()
    assert len(pods) == len(EXPECTED_PODS)
    assert warnings == ()


# --- containers below each pod --------------------------------------------------------


@pytest.mark.requirement("FR-006")
@pytest.mark.parametrize("tree", POD_TREES)
def test_every_container_below_each_pod_is_read(tree: str) -> None:
    pods, warnings = PodCgroupReader(str(CGROUPFS / tree)).read()

    assert warnings == ()
    for pod in pods:
        want = EXPECTED_CONTAINERS[pod.uid]
        assert [c.id for c in pod.containers] == [c.id for c in want]
        for got, expected in zip(pod.containers, want, strict=True):
            assert got.cpu_usage_seconds == pytest.approx(expected.cpu_usage_seconds, abs=1e-9)
            assert got.memory_working_set_bytes == expected.memory_working_set_bytes


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("cri-containerd-" + "ab" * 32 + ".scope", "abababababab"),
        ("crio-" + "0123456789abcdef" * 4 + ".scope", "0123456789ab"),
        ("docker-" + "fe" * 32 + ".scope", "fefefefefefe"),
        ("cd" * 32, "cdcdcdcdcdcd"),  # cgroupfs driver: the bare ID
    ],
)
def test_container_ids_are_read_from_every_runtimes_naming(name: str, short: str) -> None:
    assert container_id_from_cgroup_name(name) == short


@pytest.mark.parametrize(
    "name",
    [
        "crio-conmon-" + "ab" * 32 + ".scope",  # CRI-O's monitor, not a container
        "cri-containerd-xyz.scope",
        "init.scope",
        "abc",
    ],
)
def test_names_that_are_not_containers_are_ignored(name: str) -> None:
    assert container_id_from_cgroup_name(name) is None


def _write_v2_cgroup(path: Path, usage_usec: int, current: int, inactive: int) -> None:
    path.mkdir(parents=True)
    (path / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")
    (path / "memory.current").write_text(f"{current}\n")
    (path / "memory.stat").write_text(f"anon 0\nfile 0\ninactive_file {inactive}\n")


def test_crio_pods_give_their_containers_and_skip_conmon(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    pod = (
        tmp_path
        / "kubepods.slice/kubepods-burstable.slice"
        / ("kubepods-burstable-pod" + BURSTABLE_UID.replace("-", "_") + ".slice")
    )
    _write_v2_cgroup(pod, 3_000_000, 300 << 20, 0)
    _write_v2_cgroup(pod / f"crio-{'1' * 64}.scope", 2_000_000, 200 << 20, 10 << 20)
    _write_v2_cgroup(pod / f"crio-conmon-{'1' * 64}.scope", 5_000, 1 << 20, 0)
    _write_v2_cgroup(pod / f"crio-{'2' * 64}.scope", 1_000_000, 90 << 20, 0)

    (found,), warnings = PodCgroupReader(str(tmp_path)).read()

    assert warnings == ()
    assert found.containers == (
        ContainerCounters("1" * 12, 2.0, 190 << 20),
        ContainerCounters("2" * 12, 1.0, 90 << 20),
    )


def test_a_container_that_goes_leaves_its_pod_read_and_the_pod_is_listed_again(
    v2_systemd_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = PodCgroupReader(str(v2_systemd_copy))
    reader.read()
    pod_dir = v2_systemd_copy / BURSTABLE_V2_SYSTEMD
    container = next(p for p in pod_dir.iterdir() if p.is_dir())
    shutil.rmtree(container)
    # A removed cgroup's open file answers ENODEV (a plain file here would still read).
    real_read = OpenFiles.read

    def read(files: OpenFiles, path: str) -> bytes:
        if path.startswith(str(container)):
            raise OSError(errno.ENODEV, "No such device")
        return real_read(files, path)

    monkeypatch.setattr(OpenFiles, "read", read)
    pods, warnings = reader.read()

    assert warnings == ()
    burstable = next(p for p in pods if p.uid == BURSTABLE_UID)
    assert burstable.containers == ()
    assert burstable.memory_working_set_bytes == 157286400
    # Listed again at once: a new container (the restarted one) is read on the next cycle.
    _write_v2_cgroup(pod_dir / f"cri-containerd-{'7' * 64}.scope", 1_000_000, 10 << 20, 0)
    pods, _ = reader.read()
    burstable = next(p for p in pods if p.uid == BURSTABLE_UID)
    assert burstable.containers == (ContainerCounters("7" * 12, 1.0, 10 << 20),)


def test_a_new_container_is_seen_within_the_rescan_cycles(v2_systemd_copy: Path) -> None:
    reader = PodCgroupReader(str(v2_systemd_copy))
    reader.read()
    pod_dir = v2_systemd_copy / BURSTABLE_V2_SYSTEMD
    _write_v2_cgroup(pod_dir / f"cri-containerd-{'8' * 64}.scope", 2_000_000, 20 << 20, 0)

    seen = []
    for _ in range(RESCAN_CYCLES):
        pods, _ = reader.read()
        burstable = next(p for p in pods if p.uid == BURSTABLE_UID)
        seen.append("8" * 12 in {c.id for c in burstable.containers})
    assert seen[-1] and seen.count(True) >= 1
