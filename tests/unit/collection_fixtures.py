"""Paths of the recorded cgroup and procfs trees, and what each one holds.

Every pod tree (``tests/fixtures/cgroupfs/<version>-<driver>``) has the same
four pods, one of them a static pod whose UID is a config hash, not a UUID.
"""

from __future__ import annotations

from pathlib import Path

from headroom.collection.sample import ContainerCounters, PodCounters

__all__ = [
    "CGROUPFS",
    "EXPECTED_CONTAINERS",
    "EXPECTED_PODS",
    "FIXTURES",
    "OWN",
    "POD_TREES",
    "PROCFS",
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CGROUPFS = FIXTURES / "cgroupfs"
OWN = CGROUPFS / "own"
PROCFS = FIXTURES / "procfs"

POD_TREES = ("v2-systemd", "v2-cgroupfs", "v2-kind", "v1-systemd", "v1-cgroupfs")

EXPECTED_PODS = (
    # usage_usec / 1e6 (v2) = cpuacct.usage / 1e9 (v1); working set = usage - inactive_file
    PodCounters("0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e", "Burstable", 98.765432, 157286400),
    PodCounters("3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8", "Guaranteed", 1234.56789, 402653184),
    PodCounters("6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c", "Burstable", 4567.890123, 721657522),
    PodCounters("c4d5e6f7-0819-4a2b-bc3d-4e5f60718293", "BestEffort", 2.5, 8388608),
)

EXPECTED_CONTAINERS = {
    # container cgroups below each pod, by short ID (first 12 hex digits), sorted;
    # working set = usage - inactive_file, CPU as for the pods
    "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e": (
        ContainerCounters("1a2b3c4d5e6f", 49.382716, 104857600 - 26214400),
    ),
    "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8": (
        ContainerCounters("8c1d6b0b1f0e", 617.283945, 268435456 - 67108864),
        ContainerCounters("9e8d7c6b5a4f", 0.03, 1048576),  # the sandbox (pause)
        ContainerCounters("f0e1d2c3b4a5", 411.52263, 178956970 - 44739242),
    ),
    "6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c": (
        ContainerCounters("3c4d5e6f7081", 2283.945061, 367001600 - 6172839),
    ),
    "c4d5e6f7-0819-4a2b-bc3d-4e5f60718293": (
        ContainerCounters("4d5e6f708192", 1.25, 5242880 - 1048576),
    ),
}
