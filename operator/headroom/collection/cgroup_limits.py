"""The agent container's own CPU and memory limits, from its own cgroup.

Node figures are the node's; the container's limits are reported apart
(REQUIREMENTS: "container limits (cgroup v1 and v2) are reported separately").
``/proc/self/cgroup`` names the agent's cgroup. With a cgroup namespace that
path is ``/`` and the files sit at the mount's root; without one, the named
path may not exist under a container's private mount, and the root is used
then too. A limit that is absent, unlimited or unreadable is None.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from headroom.collection.cgroupfiles import (
    UNLIMITED_V1_BYTES,
    OpenFiles,
    parse_cpu_max,
    parse_memory_max,
    read_bytes,
    read_int,
)
from headroom.collection.cgroups import CgroupVersion
from headroom.collection.figures import ContainerLimits

__all__ = ["OwnCgroup", "OwnLimitsReader", "find_own_cgroup", "read_own_limits"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class OwnCgroup:
    """The directories holding the agent's own cgroup files."""

    version: CgroupVersion
    cpu_dir: str | None
    memory_dir: str | None


def _parse_proc_self_cgroup(text: str) -> dict[str, str]:
    """``controller -> path`` from ``/proc/self/cgroup`` (``""`` is the v2 entry)."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
            continue
        paths[controllers] = path
        for controller in controllers.split(","):
            paths.setdefault(controller, path)
    return paths


def _existing_dir(mount: str, path: str) -> str | None:
    """``mount + path`` if it exists, else the mount's root if that exists."""
    candidate = mount.rstrip("/") + path.rstrip("/")
    if os.path.isdir(candidate):
        return candidate
    return mount if os.path.isdir(mount) else None


def _v1_hierarchy(own_cgroupfs: str, paths: dict[str, str], controller: str) -> str | None:
    """The agent's directory in the v1 hierarchy that holds ``controller``."""
    for controllers, path in paths.items():
        if controller in controllers.split(","):
            for mount_name in (controllers, controller):
                found = _existing_dir(f"{own_cgroupfs}/{mount_name}", path)
                if found is not None:
                    return found
    return None


def find_own_cgroup(own_procfs: str, own_cgroupfs: str) -> OwnCgroup | None:
    """Locate the agent's cgroup; None when ``self/cgroup`` cannot be read."""
    try:
        text = read_bytes(f"{own_procfs}/self/cgroup").decode()
    except (OSError, UnicodeDecodeError):
        return None
    paths = _parse_proc_self_cgroup(text)
    if os.path.exists(f"{own_cgroupfs}/cgroup.controllers"):
        directory = _existing_dir(own_cgroupfs, paths.get("", "/"))
        return OwnCgroup("v2", directory, directory)
    if not paths.keys() - {""}:
        return None
    return OwnCgroup(
        "v1",
        _v1_hierarchy(own_cgroupfs, paths, "cpu"),
        _v1_hierarchy(own_cgroupfs, paths, "memory"),
    )


def _v2_cpu(directory: str) -> float | None:
    return parse_cpu_max(read_bytes(f"{directory}/cpu.max"))


def _v2_memory(directory: str) -> int | None:
    return parse_memory_max(read_bytes(f"{directory}/memory.max"))


def _v1_cpu(directory: str) -> float | None:
    quota = read_int(f"{directory}/cpu.cfs_quota_us")
    period = read_int(f"{directory}/cpu.cfs_period_us")
    return quota / period if quota > 0 and period > 0 else None


def _v1_memory(directory: str) -> int | None:
    limit = read_int(f"{directory}/memory.limit_in_bytes")
    return None if limit >= UNLIMITED_V1_BYTES else limit


def _or_none(read: Callable[[str], _T | None], directory: str | None) -> _T | None:
    if directory is None:
        return None
    try:
        return read(directory)
    except (OSError, ValueError):
        return None


def read_own_limits(cgroup: OwnCgroup | None) -> ContainerLimits:
    """The limits of an already located own cgroup (see :func:`find_own_cgroup`)."""
    if cgroup is None:
        return ContainerLimits()
    v2 = cgroup.version == "v2"
    cpu = _or_none(_v2_cpu if v2 else _v1_cpu, cgroup.cpu_dir)
    memory = _or_none(_v2_memory if v2 else _v1_memory, cgroup.memory_dir)
    return ContainerLimits(
        cgroupVersion=cgroup.version,
        cpuLimitCores=None if cpu is None else round(cpu, 3),
        memoryLimitBytes=memory,
    )


def _limit_files(cgroup: OwnCgroup | None) -> tuple[str, ...]:
    """The files ``read_own_limits`` reads for ``cgroup``."""
    if cgroup is None:
        return ()
    names: tuple[tuple[str | None, str], ...]
    if cgroup.version == "v2":
        names = ((cgroup.cpu_dir, "cpu.max"), (cgroup.memory_dir, "memory.max"))
    else:
        names = (
            (cgroup.cpu_dir, "cpu.cfs_quota_us"),
            (cgroup.cpu_dir, "cpu.cfs_period_us"),
            (cgroup.memory_dir, "memory.limit_in_bytes"),
        )
    return tuple(f"{directory}/{name}" for directory, name in names if directory is not None)


class OwnLimitsReader:
    """Locates the agent's cgroup once, reads its limit files on every call.

    Limits are re-read each cycle because a pod can be resized in place. The
    files stay open (one ``pread`` each per cycle); while their content is the
    same the same :class:`ContainerLimits` is returned, parsed only on a change.
    """

    def __init__(self, own_procfs: str, own_cgroupfs: str) -> None:
        self._cgroup = find_own_cgroup(own_procfs, own_cgroupfs.rstrip("/") or "/")
        self._files = OpenFiles()
        self._paths = _limit_files(self._cgroup)
        self._seen: tuple[bytes | None, ...] | None = None
        self._limits = ContainerLimits()

    def __del__(self) -> None:
        files = getattr(self, "_files", None)
        if files is not None:
            files.close()

    def _content(self, path: str) -> bytes | None:
        try:
            return self._files.read(path)
        except OSError:
            return None

    @property
    def cgroup(self) -> OwnCgroup | None:
        """Where the limits are read from (None when not found)."""
        return self._cgroup

    def read(self) -> ContainerLimits:
        """The limits now; None for each limit that is unlimited or unreadable."""
        seen = tuple(self._content(path) for path in self._paths)
        if seen != self._seen:
            self._limits = read_own_limits(self._cgroup)
            self._seen = seen
        return self._limits
