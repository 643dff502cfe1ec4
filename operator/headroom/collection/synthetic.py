"""Simulated nodes: deterministic, plausible readings for tests and benchmarks.

Benchmarks of the agent and the controller need many nodes with about thirty
pods each, without a cluster. A :class:`SyntheticNodeReader` is one such node:
given the same seed it produces the same sequence of samples, with counters
that only grow, pods that come and go (``churn``) and figures that stay within
their bounds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from headroom.collection.figures import ContainerLimits, DiskFigures, MemoryFigures, QosClass
from headroom.collection.sample import CpuTimes, PodCounters, RawSample

__all__ = ["SyntheticNodeReader", "synthetic_samples"]

_GIB = 1 << 30
_QOS_WEIGHTS: tuple[tuple[QosClass, int], ...] = (
    ("Guaranteed", 2),
    ("Burstable", 6),
    ("BestEffort", 1),
)


@dataclass(slots=True)
class _SimulatedPod:
    uid: str
    qos_class: QosClass
    cores: float
    memory_bytes: int
    cpu_seconds: float = 0.0


class SyntheticNodeReader:
    """One simulated node (implements ``NodeReader``); each read advances ``interval``."""

    def __init__(
        self,
        seed: int,
        *,
        pods: int = 30,
        logical_cores: int = 16,
        memory_gib: int = 64,
        interval: float = 10.0,
        disk_paths: Sequence[str] = ("/", "/var/lib"),
        churn: float = 0.0,
    ) -> None:
        self._random = random.Random(seed)
        self._logical_cores = logical_cores
        self._memory_total = memory_gib * _GIB
        self._interval = interval
        self._churn = churn
        self._monotonic = 1000.0
        self._busy = 0.0
        self._total = 0.0
        self._disks = [(path, self._random.randint(50, 500) * _GIB) for path in disk_paths]
        self._disk_used = [self._random.uniform(0.1, 0.8) for _ in disk_paths]
        self._pods = [self._new_pod() for _ in range(pods)]

    def _new_pod(self) -> _SimulatedPod:
        rng = self._random
        qos = rng.choices([q for q, _ in _QOS_WEIGHTS], [w for _, w in _QOS_WEIGHTS])[0]
        return _SimulatedPod(
            uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            qos_class=qos,
            cores=rng.uniform(0.01, 0.6 * self._logical_cores / 30),
            memory_bytes=rng.randint(32, 2048) * (1 << 20),
            cpu_seconds=rng.uniform(0, 1000),
        )

    def _advance_pods(self) -> float:
        """Move every pod one interval on; the cores they used altogether."""
        rng = self._random
        used = 0.0
        for index, pod in enumerate(self._pods):
            if self._churn and rng.random() < self._churn:
                pod = self._pods[index] = self._new_pod()
            cores = pod.cores * rng.uniform(0.5, 1.5)
            pod.cpu_seconds += cores * self._interval
            pod.memory_bytes = max(1 << 20, int(pod.memory_bytes * rng.uniform(0.97, 1.03)))
            used += cores
        return used

    def read(self) -> RawSample:
        """The next simulated reading."""
        rng = self._random
        self._monotonic += self._interval
        pod_cores = self._advance_pods()
        capacity = self._logical_cores * self._interval
        system_cores = rng.uniform(0.05, 0.5)
        self._busy += min(capacity, (pod_cores + system_cores) * self._interval)
        self._total += capacity
        pod_memory = sum(pod.memory_bytes for pod in self._pods)
        used = min(self._memory_total, pod_memory + rng.randint(1, 4) * _GIB)
        disks = []
        for index, (path, total) in enumerate(self._disks):
            share = min(0.99, max(0.01, self._disk_used[index] + rng.uniform(-0.002, 0.003)))
            self._disk_used[index] = share
            used_bytes = int(total * share)
            disks.append(
                DiskFigures(
                    path=path,
                    totalBytes=total,
                    usedBytes=used_bytes,
                    freeBytes=total - used_bytes,
                    usedPercent=round(100 * share, 1),
                )
            )
        return RawSample(
            monotonic=self._monotonic,
            cpu_times=CpuTimes(busy=self._busy, total=self._total),
            logical_cores=self._logical_cores,
            physical_cores=self._logical_cores // 2 or 1,
            memory=MemoryFigures(
                totalBytes=self._memory_total,
                availableBytes=self._memory_total - used,
                usedBytes=used,
                usedPercent=round(100 * used / self._memory_total, 1),
            ),
            disks=tuple(disks),
            pods=tuple(
                PodCounters(p.uid, p.qos_class, p.cpu_seconds, p.memory_bytes) for p in self._pods
            ),
            agent_container=ContainerLimits(
                cgroupVersion="v2", cpuLimitCores=0.1, memoryLimitBytes=64 << 20
            ),
        )


def synthetic_samples(
    seed: int, count: int, *, pods: int = 30, churn: float = 0.0
) -> list[RawSample]:
    """``count`` consecutive samples of the simulated node ``seed``."""
    reader = SyntheticNodeReader(seed, pods=pods, churn=churn)
    return [reader.read() for _ in range(count)]
