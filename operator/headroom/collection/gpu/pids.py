"""From a host PID to its pod: ``/proc/<pid>/cgroup`` read through the node's procfs.

NVML names the processes using a GPU by PID. The kubelet puts every container
of a pod under the pod's cgroup, so the pod UID is in the process's cgroup
path, spelled the way the pod cgroups are (``kubepods-burstable-pod<uid_>.slice``
with systemd, ``pod<uid>`` with cgroupfs, v1 and v2): the same
:func:`~headroom.collection.cgroups.pod_uid_from_cgroup_name` that names the
pod cgroups reads it here. Only a component below a ``kubepods`` one counts,
so a host service called ``podman-....scope`` is nobody's pod.
"""

from __future__ import annotations

from headroom.collection.cgroupfiles import read_bytes
from headroom.collection.cgroups import pod_uid_from_cgroup_name

__all__ = ["pod_uid_from_proc_cgroup", "pod_uid_of_pid"]

_UID_CHARACTERS = frozenset("0123456789abcdefABCDEF-")


def _is_kubepods(component: str) -> bool:
    name = component.removesuffix(".slice")
    return name == "kubepods" or name.startswith(("kubepods-", "kubelet-kubepods"))


def pod_uid_from_proc_cgroup(text: str) -> str | None:
    """The pod UID in ``/proc/<pid>/cgroup`` content (v1 or v2), or None (not a pod's).

    Each line is ``hierarchy-id:controllers:path``; the v2 line (``0::``) and
    every v1 line name the same pod, so the first line that names one wins.
    """
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        below_kubepods = False
        for component in path.split("/"):
            if not component:
                continue
            if below_kubepods:
                uid = pod_uid_from_cgroup_name(component)
                if uid and set(uid) <= _UID_CHARACTERS:
                    return uid
            if _is_kubepods(component):
                below_kubepods = True
    return None


def pod_uid_of_pid(procfs: str, pid: int) -> str | None:
    """The pod of host process ``pid``; None when it is no pod's or has exited."""
    try:
        text = read_bytes(f"{procfs}/{pid}/cgroup").decode(errors="replace")
    except OSError:
        return None
    return pod_uid_from_proc_cgroup(text)
