"""Paths of the recorded cgroup and procfs trees, and what each one holds.

Every pod tree (``tests/fixtures/cgroupfs/<version>-<driver>``) has the same
four pods, one of them a static pod whose UID is a config hash, not a UUID.
"""

from __future__ import annotations

from pathlib import Path

from headroom.collection.sample import PodCounters

__all__ = ["CGROUPFS", "EXPECTED_PODS", "FIXTURES", "OWN", "POD_TREES", "PROCFS"]

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
