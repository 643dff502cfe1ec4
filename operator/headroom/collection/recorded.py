"""Replaying recorded readings: a NodeReader for tests, demos and benchmarks.

A recording is a JSON or YAML file (chosen by suffix: ``.json`` is JSON,
anything else YAML) with the camelCase field names of the API::

    samples:
      - monotonic: 1000.0              # seconds, any origin, increasing
        cpuTimes: {busy: 120.5, total: 800.0}   # cumulative CPU seconds
        logicalCores: 8
        physicalCores: 4               # optional
        memory: {totalBytes: 33554432000, availableBytes: 21474836480,
                 usedBytes: 12079595520, usedPercent: 36.0}
        disks:                         # optional; DiskFigures as in the API
          - {path: /, totalBytes: 100, usedBytes: 40, freeBytes: 60, usedPercent: 40.0}
          - {path: /data, error: No such file or directory}
        pods:                          # optional
          - {uid: 0b6c..., qosClass: Burstable, cpuUsageSeconds: 12.5,
             memoryWorkingSetBytes: 104857600,
             containers: [{id: 1a2b3c4d5e6f, cpuUsageSeconds: 10.0,   # optional
                           memoryWorkingSetBytes: 83886080}]}
        agentContainer: {cgroupVersion: v2, cpuLimitCores: 0.2}   # optional
        warnings: []                   # optional

When the samples run out the reader either cycles or raises
:class:`RecordingExhausted` (``cycle=False``). Cycling continues the counters
so the replay looks like one long run to :mod:`~headroom.collection.derive`:
lap *k* is the recording with the clock, the CPU times and each pod's (and
container's) CPU counter advanced by *k* times (recorded span + one average step).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from headroom import api
from headroom.collection import figures
from headroom.collection.figures import QosClass
from headroom.collection.sample import ContainerCounters, CpuTimes, PodCounters, RawSample

__all__ = [
    "RecordedNodeReader",
    "RecordingExhausted",
    "load_recording",
    "sample_from_document",
    "sample_to_document",
    "save_recording",
]


class RecordingExhausted(LookupError):
    """A non-cycling :class:`RecordedNodeReader` was read past its last sample."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CpuTimesDoc(_Strict):
    busy: float = Field(ge=0)
    total: float = Field(ge=0)


class _ContainerDoc(_Strict):
    id: str = Field(min_length=1)
    cpuUsageSeconds: float = Field(ge=0)
    memoryWorkingSetBytes: int = Field(ge=0)


class _PodDoc(_Strict):
    uid: str = Field(min_length=1)
    qosClass: QosClass
    cpuUsageSeconds: float = Field(ge=0)
    memoryWorkingSetBytes: int = Field(ge=0)
    containers: list[_ContainerDoc] = Field(default_factory=list)


class _SampleDoc(_Strict):
    monotonic: float
    cpuTimes: _CpuTimesDoc
    logicalCores: int = Field(ge=1)
    physicalCores: int | None = Field(default=None, ge=1)
    memory: api.MemoryFigures
    disks: list[api.DiskFigures] = Field(default_factory=list)
    pods: list[_PodDoc] = Field(default_factory=list)
    agentContainer: api.ContainerLimits | None = None
    warnings: list[str] = Field(default_factory=list)


class _RecordingDoc(_Strict):
    samples: list[_SampleDoc] = Field(min_length=1)


def _from_doc(doc: _SampleDoc) -> RawSample:
    return RawSample(
        monotonic=doc.monotonic,
        cpu_times=CpuTimes(busy=doc.cpuTimes.busy, total=doc.cpuTimes.total),
        logical_cores=doc.logicalCores,
        physical_cores=doc.physicalCores,
        memory=figures.MemoryFigures(**doc.memory.model_dump()),
        disks=tuple(figures.DiskFigures(**disk.model_dump()) for disk in doc.disks),
        pods=tuple(
            PodCounters(
                p.uid,
                p.qosClass,
                p.cpuUsageSeconds,
                p.memoryWorkingSetBytes,
                tuple(
                    ContainerCounters(c.id, c.cpuUsageSeconds, c.memoryWorkingSetBytes)
                    for c in p.containers
                ),
            )
            for p in doc.pods
        ),
        agent_container=(
            figures.ContainerLimits(**doc.agentContainer.model_dump())
            if doc.agentContainer is not None
            else None
        ),
        warnings=tuple(doc.warnings),
    )


def sample_from_document(document: dict[str, Any]) -> RawSample:
    """One sample from its recorded (camelCase) form; raises ``ValidationError``."""
    return _from_doc(_SampleDoc.model_validate(document))


def _pod_document(pod: PodCounters) -> dict[str, Any]:
    document: dict[str, Any] = {
        "uid": pod.uid,
        "qosClass": pod.qos_class,
        "cpuUsageSeconds": pod.cpu_usage_seconds,
        "memoryWorkingSetBytes": pod.memory_working_set_bytes,
    }
    if pod.containers:
        document["containers"] = [
            {
                "id": c.id,
                "cpuUsageSeconds": c.cpu_usage_seconds,
                "memoryWorkingSetBytes": c.memory_working_set_bytes,
            }
            for c in pod.containers
        ]
    return document


def sample_to_document(sample: RawSample) -> dict[str, Any]:
    """The recorded form of one sample (JSON types, optional parts left out if empty)."""
    document: dict[str, Any] = {
        "monotonic": sample.monotonic,
        "cpuTimes": {"busy": sample.cpu_times.busy, "total": sample.cpu_times.total},
        "logicalCores": sample.logical_cores,
        "memory": sample.memory.to_wire(),
        "disks": [disk.to_wire() for disk in sample.disks],
        "pods": [_pod_document(pod) for pod in sample.pods],
    }
    if sample.physical_cores is not None:
        document["physicalCores"] = sample.physical_cores
    if sample.agent_container is not None:
        document["agentContainer"] = sample.agent_container.to_wire()
    if sample.warnings:
        document["warnings"] = list(sample.warnings)
    return document


def load_recording(path: str | Path) -> tuple[RawSample, ...]:
    """Every sample of a recording file (format in the module docstring)."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    raw = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    return tuple(_from_doc(doc) for doc in _RecordingDoc.model_validate(raw).samples)


def save_recording(path: str | Path, samples: Iterable[RawSample]) -> None:
    """Write samples as a recording file that :func:`load_recording` reads back."""
    file = Path(path)
    document = {"samples": [sample_to_document(sample) for sample in samples]}
    if file.suffix == ".json":
        file.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    else:
        file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _lap_advance(first: float, last: float, count: int) -> float:
    """How far a counter moves per lap: the recorded span plus one average step."""
    return (last - first) * count / (count - 1) if count > 1 else 0.0


class RecordedNodeReader:
    """Replays samples in order (implements ``NodeReader``)."""

    def __init__(self, samples: Sequence[RawSample], *, cycle: bool = True) -> None:
        if not samples:
            raise ValueError("a recording needs at least one sample")
        self._samples = tuple(samples)
        self._cycle = cycle
        self._position = 0
        first, last, count = self._samples[0], self._samples[-1], len(self._samples)
        self._clock_lap = _lap_advance(first.monotonic, last.monotonic, count) or 1.0
        self._busy_lap = _lap_advance(first.cpu_times.busy, last.cpu_times.busy, count)
        self._total_lap = _lap_advance(first.cpu_times.total, last.cpu_times.total, count)
        last_pods = {pod.uid: pod.cpu_usage_seconds for pod in last.pods}
        self._pod_laps = {
            pod.uid: _lap_advance(pod.cpu_usage_seconds, last_pods[pod.uid], count)
            for pod in first.pods
            if pod.uid in last_pods
        }
        last_containers = {
            (p.uid, c.id): c.cpu_usage_seconds for p in last.pods for c in p.containers
        }
        self._container_laps = {
            (p.uid, c.id): _lap_advance(c.cpu_usage_seconds, last_containers[p.uid, c.id], count)
            for p in first.pods
            for c in p.containers
            if (p.uid, c.id) in last_containers
        }

    @classmethod
    def from_file(cls, path: str | Path, *, cycle: bool = True) -> RecordedNodeReader:
        """A reader over a recording file (see :func:`load_recording`)."""
        return cls(load_recording(path), cycle=cycle)

    def read(self) -> RawSample:
        """The next sample; after the last, the first again (advanced) or an error."""
        lap, index = divmod(self._position, len(self._samples))
        if lap and not self._cycle:
            raise RecordingExhausted(f"all {len(self._samples)} recorded samples were read")
        self._position += 1
        sample = self._samples[index]
        return self._advanced(sample, lap) if lap else sample

    def _advanced(self, sample: RawSample, lap: int) -> RawSample:
        pods = tuple(
            replace(
                pod,
                cpu_usage_seconds=pod.cpu_usage_seconds + lap * self._pod_laps[pod.uid],
                containers=tuple(
                    replace(
                        c,
                        cpu_usage_seconds=c.cpu_usage_seconds
                        + lap * self._container_laps[pod.uid, c.id],
                    )
                    if (pod.uid, c.id) in self._container_laps
                    else c
                    for c in pod.containers
                ),
            )
            if pod.uid in self._pod_laps
            else pod
            for pod in sample.pods
        )
        return replace(
            sample,
            monotonic=sample.monotonic + lap * self._clock_lap,
            cpu_times=CpuTimes(
                busy=sample.cpu_times.busy + lap * self._busy_lap,
                total=sample.cpu_times.total + lap * self._total_lap,
            ),
            pods=pods,
        )
