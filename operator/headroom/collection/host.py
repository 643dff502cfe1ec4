"""Where the node's filesystems are seen from inside the agent container.

Node figures are the node's, not the container's (REQUIREMENTS, HR-002): the
DaemonSet mounts the node's ``/proc`` at ``/host/proc``, its ``/`` at ``/host``
and its ``/sys/fs/cgroup`` at ``/host/sys/fs/cgroup``, read-only, the way
node_exporter takes ``--path.procfs`` and ``--path.rootfs``. The agent's *own*
cgroup (for its container limits) is read through its own ``/proc/self`` and
``/sys/fs/cgroup``, which are kept as separate settings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HostPaths"]


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Absolute mount points of the node's filesystems, as settings.

    The defaults fit a process running directly on the node (``--once`` on a
    machine, tests); :meth:`mounted_under` gives the DaemonSet layout.
    """

    procfs: str = "/proc"
    """The node's procfs (``/proc/stat``, ``/proc/meminfo``)."""
    rootfs: str = "/"
    """The node's root filesystem; configured disk paths are looked up under it."""
    cgroupfs: str = "/sys/fs/cgroup"
    """The node's cgroup mount, where every pod's cgroup is found."""
    own_procfs: str = "/proc"
    """The agent's own procfs, for ``self/cgroup``."""
    own_cgroupfs: str = "/sys/fs/cgroup"
    """The agent's own cgroup mount, for its container limits."""

    @classmethod
    def mounted_under(cls, host_root: str = "/host") -> HostPaths:
        """The DaemonSet layout: the node's ``/`` mounted at ``host_root``."""
        root = host_root.rstrip("/")
        return cls(
            procfs=f"{root}/proc",
            rootfs=root or "/",
            cgroupfs=f"{root}/sys/fs/cgroup",
        )

    def on_node(self, path: str) -> str:
        """Where the node's absolute ``path`` is seen from here (under ``rootfs``)."""
        root = self.rootfs.rstrip("/")
        return f"{root}/{path.lstrip('/')}" if root else path
