"""Per-pod usage from the node's cgroup tree: v1 and v2, systemd and cgroupfs drivers.

The kubelet puts every pod in a cgroup whose path follows from the cgroup
driver, the QoS class and the pod UID (Guaranteed pods directly under the
kubepods cgroup, Burstable and BestEffort under their own)::

    v2 systemd   kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice
                 kubepods.slice/kubepods-pod<uid_>.slice               (Guaranteed)
    v2 cgroupfs  kubepods/burstable/pod<uid>, kubepods/pod<uid>
    v1           the same under cpu,cpuacct/ (or cpuacct/) and memory/

(``<uid_>`` is the UID with ``_`` for ``-``.) Below each pod cgroup the runtime
puts one cgroup per container, named after the container ID:
``cri-containerd-<id>.scope`` (containerd), ``crio-<id>.scope`` (CRI-O) or
``docker-<id>.scope`` (cri-dockerd) with the systemd driver, the bare ``<id>``
with cgroupfs. Each is read like the pod's and reported under it by the
first 12 characters of its ID; anything else there (CRI-O's
``crio-conmon-<id>.scope``, the kubelet's own files) is not a container. The
sandbox ("pause") container has a cgroup of its own too and is reported like
the others: which ID is the sandbox is known only to the runtime and the
Pod's status, so the controller keeps the IDs it finds in the Pod's
``containerStatuses`` and drops the rest (a few dozen bytes per pod in the
report, against a CRI call or a heuristic on the agent). A pod's container
directories are listed again every ``RESCAN_CYCLES`` cycles, and at once
when one of them has gone (ENODEV): a restarted container is read from the
next cycle, a new sidecar within four. kind runs the kubelet with
``cgroupRoot: /kubelet``, which gives ``kubelet.slice/kubelet-kubepods.slice/...``;
that is found too. CPU is the cumulative usage counter; memory is the working
set, usage minus inactive file cache, floored at 0 — the kubelet's and
metrics-server's definition. Pods vanish while being read; such a pod is left
out of that cycle with a warning, not an error (REQUIREMENTS: per-pod usage).

The multi-line ``cpu.stat`` and ``memory.stat`` of each pod stay open between
cycles and are read again from offset 0 (the kernel regenerates a cgroup file
on every read from the start): one ``pread`` instead of open, read and close
saves two thirds of the system calls of a cycle (PR-003). A removed cgroup's
open file answers ENODEV, which counts as vanished; files of pods no longer
listed are closed at the end of each cycle.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from headroom.collection.cgroupfiles import OpenFiles, keyed_value
from headroom.collection.figures import QosClass
from headroom.collection.sample import ContainerCounters, PodCounters

__all__ = [
    "CONTAINER_ID_CHARS",
    "RESCAN_CYCLES",
    "CgroupDriver",
    "CgroupVersion",
    "KubepodsLayout",
    "PodCgroupReader",
    "container_id_from_cgroup_name",
    "detect_cgroup_version",
    "detect_kubepods_layout",
    "pod_uid_from_cgroup_name",
]

CgroupVersion = Literal["v1", "v2"]
CgroupDriver = Literal["systemd", "cgroupfs"]

_KUBEPODS_CANDIDATES: tuple[tuple[str, CgroupDriver, str], ...] = (
    ("kubepods.slice", "systemd", "kubepods"),
    ("kubepods", "cgroupfs", ""),
    ("kubelet.slice/kubelet-kubepods.slice", "systemd", "kubelet-kubepods"),
    ("kubelet/kubepods", "cgroupfs", ""),
)
"""(path under the hierarchy, driver, systemd slice prefix), most common first."""

_V1_CPUACCT_HIERARCHIES = ("cpu,cpuacct", "cpuacct,cpu", "cpuacct")
_VANISHED = (errno.ENOENT, errno.ENODEV, errno.ESRCH)
CONTAINER_ID_CHARS = 12
"""How much of a container ID a report carries (``docker ps``'s short ID; unique on a node)."""
_CONTAINER_CGROUP = re.compile(r"(?:cri-containerd-|crio-|docker-)?([0-9a-f]{12,64})(?:\.scope)?")


def detect_cgroup_version(cgroupfs: str) -> CgroupVersion:
    """v2 when the mount is the unified hierarchy (it has ``cgroup.controllers``).

    A hybrid host (v1 controllers plus ``unified/``) counts as v1: the kubelet
    uses the v1 controllers there.
    """
    return "v2" if os.path.exists(f"{cgroupfs}/cgroup.controllers") else "v1"


@dataclass(frozen=True, slots=True)
class KubepodsLayout:
    """Where the kubepods cgroup is and how its children are named."""

    version: CgroupVersion
    driver: CgroupDriver
    cpu_root: str
    """The kubepods directory in the hierarchy holding CPU counters."""
    memory_root: str
    """The kubepods directory in the memory hierarchy (= ``cpu_root`` on v2)."""
    slice_prefix: str = "kubepods"
    """systemd only: ``kubepods``, or ``kubelet-kubepods`` on kind."""

    def qos_directories(self) -> tuple[tuple[QosClass, str], ...]:
        """Each QoS class with its directory relative to the kubepods root."""
        if self.driver == "systemd":
            prefix = self.slice_prefix
            return (
                ("Guaranteed", ""),
                ("Burstable", f"/{prefix}-burstable.slice"),
                ("BestEffort", f"/{prefix}-besteffort.slice"),
            )
        return (("Guaranteed", ""), ("Burstable", "/burstable"), ("BestEffort", "/besteffort"))


def detect_kubepods_layout(cgroupfs: str) -> KubepodsLayout | None:
    """Find the kubepods cgroup under ``cgroupfs``; None when there is none."""
    version = detect_cgroup_version(cgroupfs)
    for relative, driver, prefix in _KUBEPODS_CANDIDATES:
        if version == "v2":
            root = f"{cgroupfs}/{relative}"
            if os.path.isdir(root):
                return KubepodsLayout("v2", driver, root, root, prefix)
            continue
        memory_root = f"{cgroupfs}/memory/{relative}"
        if not os.path.isdir(memory_root):
            continue
        for hierarchy in _V1_CPUACCT_HIERARCHIES:
            cpu_root = f"{cgroupfs}/{hierarchy}/{relative}"
            if os.path.isdir(cpu_root):
                return KubepodsLayout("v1", driver, cpu_root, memory_root, prefix)
    return None


def pod_uid_from_cgroup_name(name: str) -> str | None:
    """The pod UID in a pod cgroup's directory name, or None if it is not a pod's.

    ``kubepods-burstable-pod1b2c_3d.slice`` and ``pod1b2c-3d`` both give
    ``1b2c-3d``. UIDs are hex and dashes, so the last ``pod`` is the marker.
    """
    if name.endswith(".slice"):
        name = name[:-6]
    head, marker, uid = name.rpartition("pod")
    if not marker or not uid or (head and not head.endswith("-")):
        return None
    return uid.replace("_", "-")


def container_id_from_cgroup_name(name: str) -> str | None:
    """The short container ID in a container cgroup's directory name, or None.

    ``cri-containerd-<id>.scope``, ``crio-<id>.scope``, ``docker-<id>.scope`` and a
    bare ``<id>`` (cgroupfs driver) give the first 12 hex digits of ``<id>``;
    ``crio-conmon-<id>.scope`` (CRI-O's monitor process) and other names give None.
    """
    found = _CONTAINER_CGROUP.fullmatch(name)
    return None if found is None else found.group(1)[:CONTAINER_ID_CHARS]


@dataclass(frozen=True, slots=True)
class _CounterFiles:
    """The three counter files of one cgroup (a pod's or a container's)."""

    cpu: str
    """v2 ``cpu.stat`` (its ``usage_usec`` line) or v1 ``cpuacct.usage`` (ns)."""
    current: str
    """``memory.current`` (v2) or ``memory.usage_in_bytes`` (v1)."""
    stat: str
    """``memory.stat``: its ``inactive_file`` (v2) or ``total_inactive_file`` (v1) line."""
    v2: bool

    @classmethod
    def of(cls, cpu_dir: str, memory_dir: str, v2: bool) -> _CounterFiles:
        if v2:
            return cls(
                f"{cpu_dir}/cpu.stat", f"{cpu_dir}/memory.current", f"{cpu_dir}/memory.stat", v2
            )
        return cls(
            f"{cpu_dir}/cpuacct.usage",
            f"{memory_dir}/memory.usage_in_bytes",
            f"{memory_dir}/memory.stat",
            v2,
        )

    def read(self, files: OpenFiles) -> tuple[float, int]:
        """(CPU seconds, working set bytes) now; OSError when gone, ValueError on odd content."""
        cpu = files.read(self.cpu)
        current = int(files.read(self.current))
        stat = files.read(self.stat)
        if self.v2:
            cpu_seconds = keyed_value(cpu, b"usage_usec") / 1e6
            inactive = keyed_value(stat, b"inactive_file")
        else:
            cpu_seconds = int(cpu) / 1e9
            inactive = keyed_value(stat, b"total_inactive_file")
        return cpu_seconds, max(current - inactive, 0)


_UNSEEN: Any = object()
RESCAN_CYCLES = 4
"""A pod's container directories are listed again every this many cycles (or at once
when one of them is gone): containers change far less often than the agent reads."""


@dataclass(slots=True)
class _Listing:
    """A pod's container cgroups as last listed, and the cycle they were listed in."""

    cycle: int
    containers: tuple[tuple[str, _CounterFiles], ...]


@dataclass(frozen=True, slots=True)
class _PodFiles:
    """One pod's counter files and where its containers are, worked out once per pod."""

    uid: str
    qos: QosClass
    counters: _CounterFiles
    cpu_dir: str
    memory_dir: str

    @classmethod
    def of(cls, uid: str, qos: QosClass, cpu_dir: str, memory_dir: str, v2: bool) -> _PodFiles:
        return cls(uid, qos, _CounterFiles.of(cpu_dir, memory_dir, v2), cpu_dir, memory_dir)

    def list_containers(self, cycle: int) -> _Listing:
        """The container cgroups below the pod's, sorted by short ID."""
        found = []
        try:
            with os.scandir(self.cpu_dir) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    short = container_id_from_cgroup_name(entry.name)
                    if short is not None:
                        files = _CounterFiles.of(
                            entry.path, f"{self.memory_dir}/{entry.name}", self.counters.v2
                        )
                        found.append((short, files))
        except FileNotFoundError:
            pass
        found.sort(key=lambda container: container[0])
        return _Listing(cycle, tuple(found))

    def read(self, files: OpenFiles, listing: _Listing) -> PodCounters:
        """The pod's counters now; OSError when its cgroup went, ValueError on odd content.

        A container of ``listing`` that vanished or reads oddly is left out of
        this cycle (containers restart; the pod's figures stand) and the pod is
        listed again next cycle.
        """
        cpu_seconds, working_set = self.counters.read(files)
        found: list[ContainerCounters] = []
        for short, counters in listing.containers:
            try:
                container_cpu, container_memory = counters.read(files)
            except (OSError, ValueError):
                listing.cycle = -RESCAN_CYCLES
                continue
            found.append(ContainerCounters(short, container_cpu, container_memory))
        return PodCounters(self.uid, self.qos, cpu_seconds, working_set, tuple(found))


class PodCgroupReader:
    """Reads every pod's counters under one cgroup mount, layout found once.

    The layout is detected on first use and kept while its kubepods directory
    exists; directories are re-listed every cycle because pods come and go.
    """

    def __init__(self, cgroupfs: str) -> None:
        self._cgroupfs = cgroupfs.rstrip("/") or "/"
        self._layout: KubepodsLayout | None = None
        self._files = OpenFiles()
        self._known: dict[str, _PodFiles | None] = {}
        """Each listed directory's pod files (None: not a pod), kept while listed."""
        self._listings: dict[str, _Listing] = {}
        """Each pod's container cgroups as last listed (see ``RESCAN_CYCLES``)."""
        self._cycle = 0

    def close(self) -> None:
        """Close the pod files kept open between reads."""
        self._files.close()

    def __del__(self) -> None:
        files = getattr(self, "_files", None)
        if files is not None:
            files.close()

    @property
    def layout(self) -> KubepodsLayout | None:
        """The layout in use (None before the first read or when none was found)."""
        return self._layout

    def read(self) -> tuple[tuple[PodCounters, ...], tuple[str, ...]]:
        """Every pod's counters now, and warnings about what could not be read."""
        layout = self._layout or detect_kubepods_layout(self._cgroupfs)
        if layout is None:
            self._files.close()
            return (), (f"no kubepods cgroup under {self._cgroupfs}; per-pod usage left out",)
        try:
            pods, problems, vanished = self._read_layout(layout)
        except FileNotFoundError:
            self._layout = None
            self._files.close()
            return (), (f"kubepods cgroup under {self._cgroupfs} disappeared",)
        finally:
            self._files.sweep()
        self._layout = layout
        warnings: list[str] = []
        if problems:
            warnings.append(f"{len(problems)} pod cgroup(s) unreadable, first: {problems[0]}")
        if vanished:
            warnings.append(
                f"{len(vanished)} pod cgroup(s) vanished while read (pod deleted?), "
                f"left out this cycle: {', '.join(vanished)}"
            )
        return pods, tuple(warnings)

    def _read_layout(
        self, layout: KubepodsLayout
    ) -> tuple[tuple[PodCounters, ...], list[str], list[str]]:
        pods: list[PodCounters] = []
        problems: list[str] = []
        vanished: list[str] = []
        v2 = layout.version == "v2"
        known, self._known = self._known, {}
        self._cycle += 1
        listings, self._listings = self._listings, {}
        for qos, relative in layout.qos_directories():
            cpu_parent = layout.cpu_root + relative
            memory_parent = layout.memory_root + relative
            try:
                entries = os.scandir(cpu_parent)
            except FileNotFoundError:
                if not relative:
                    raise
                continue
            with entries:
                for entry in entries:
                    path = entry.path
                    pod = known.get(path, _UNSEEN)
                    if pod is _UNSEEN:
                        uid = pod_uid_from_cgroup_name(entry.name)
                        pod = (
                            None
                            if uid is None
                            else _PodFiles.of(uid, qos, path, f"{memory_parent}/{entry.name}", v2)
                        )
                    self._known[path] = pod
                    if pod is None:
                        continue
                    try:
                        listing = listings.get(path)
                        if listing is None or self._cycle - listing.cycle >= RESCAN_CYCLES:
                            listing = pod.list_containers(self._cycle)
                        self._listings[path] = listing
                        pods.append(pod.read(self._files, listing))
                    except OSError as error:
                        if error.errno in _VANISHED:
                            vanished.append(pod.uid)
                        else:
                            problems.append(f"{entry.path}: {error.strerror}")
                    except ValueError as error:
                        problems.append(f"{entry.path}: {error}")
        return tuple(pods), problems, vanished
