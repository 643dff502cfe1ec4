"""The agent container's own limits, kept apart from node figures (cgroup v1 and v2).

Each case in ``tests/fixtures/cgroupfs/own/<case>`` is a recorded
``proc/self/cgroup`` beside the agent's own cgroup mount (``cgroup/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headroom.collection.cgroup_limits import OwnLimitsReader, find_own_cgroup
from headroom.collection.figures import ContainerLimits
from tests.unit.collection_fixtures import OWN


def _limits(case: str) -> ContainerLimits:
    return OwnLimitsReader(str(OWN / case / "proc"), str(OWN / case / "cgroup")).read()


@pytest.mark.requirement("FR-006")
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # cgroup namespace: /proc/self/cgroup says "0::/", files at the mount root
        ("v2-limited", ContainerLimits(cgroupVersion="v2", cpuLimitCores=0.5,
                                       memoryLimitBytes=268435456)),
        ("v2-unlimited", ContainerLimits(cgroupVersion="v2")),
        # the root cgroup has no cpu.max / memory.max at all
        ("v2-root", ContainerLimits(cgroupVersion="v2")),
        # no namespace: the full kubepods path exists under the mount
        ("v2-hostns", ContainerLimits(cgroupVersion="v2", cpuLimitCores=0.25,
                                      memoryLimitBytes=134217728)),
        # v1, the host's path is named but the container's own cgroup is at the root
        ("v1-limited", ContainerLimits(cgroupVersion="v1", cpuLimitCores=1.5,
                                       memoryLimitBytes=536870912)),
        # v1, quota -1 and PAGE_COUNTER_MAX: unlimited, and the root's values unused
        ("v1-unlimited", ContainerLimits(cgroupVersion="v1")),
    ],
)  # fmt: skip
def test_own_limits(case: str, expected: ContainerLimits) -> None:
    assert _limits(case) == expected


def test_own_cgroup_without_namespace_is_the_named_path() -> None:
    cgroup = find_own_cgroup(str(OWN / "v2-hostns" / "proc"), str(OWN / "v2-hostns" / "cgroup"))

    assert cgroup is not None
    assert cgroup.cpu_dir is not None
    assert cgroup.cpu_dir.endswith(".scope")


@pytest.mark.requirement("FR-006")
def test_v1_cpu_and_cpuacct_mounted_apart_uses_the_cpu_hierarchy() -> None:
    cgroup = find_own_cgroup(
        str(OWN / "v1-unlimited" / "proc"), str(OWN / "v1-unlimited" / "cgroup")
    )

    assert cgroup is not None
    assert cgroup.cpu_dir is not None
    assert "/cgroup/cpu/kubepods/" in cgroup.cpu_dir


def test_no_proc_self_cgroup_gives_empty_limits(tmp_path: Path) -> None:
    reader = OwnLimitsReader(str(tmp_path / "proc"), str(tmp_path / "cgroup"))

    assert reader.cgroup is None
    assert reader.read() == ContainerLimits()


def test_garbled_limit_file_is_unreadable_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cgroup.controllers").write_text("cpu memory\n")
    (cgroup / "cpu.max").write_text("lots\n")
    (cgroup / "memory.max").write_text("1048576\n")

    limits = OwnLimitsReader(str(tmp_path / "proc"), str(cgroup)).read()

    assert limits == ContainerLimits(cgroupVersion="v2", memoryLimitBytes=1048576)


@pytest.mark.requirement("FR-006")
def test_limits_are_reread_each_cycle_for_in_place_resize(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cgroup.controllers").write_text("cpu memory\n")
    (cgroup / "cpu.max").write_text("100000 100000\n")
    reader = OwnLimitsReader(str(tmp_path / "proc"), str(cgroup))
    assert reader.read().cpuLimitCores == 1.0

    (cgroup / "cpu.max").write_text("200000 100000\n")
    assert reader.read().cpuLimitCores == 2.0
