"""Recorded NVML answers: an :class:`~headroom.collection.gpu.nvml.Nvml` for tests and demos.

A recording is a YAML (or JSON) file of NVML's answers, one entry per
collection cycle; the reader moves to the next cycle on each
``device_count()`` (the first call of a reading) and stays on the last::

    cycles:
      - xidEvents: [{uuid: GPU-..., xid: 79}]          # optional
        devices:                                       # by NVML index
          - uuid: GPU-5b1c...
            name: NVIDIA A100-SXM4-80GB
            memory: [85899345920, 64424509440, 21474836480]   # total, free, used
            utilization: [40, 22]                      # gpu %, memory % (last period)
            samples: {gpu: [[1700000000166666, 35], ...], memory: [[..., 20]]}
            migMode: [0, 0]                            # current, pending
            processes: [{pid: 4242, usedGpuMemory: 17179869184}]
            processUtilization: [{pid: 4242, timeStamp: ..., smUtil: 31, memUtil: 18}]
            migDevices:                                # MIG mode only
              - {uuid: MIG-..., name: NVIDIA A100-SXM4-80GB MIG 1g.10gb,
                 instanceIds: [7, 0], memory: [...], processes: [...]}
            errors: {memory: NVML_ERROR_GPU_IS_LOST}   # per call; "*" for every call

An answer left out is ``NVML_ERROR_NOT_SUPPORTED``, as NVML gives it for a
figure a GPU does not have; ``usedGpuMemory: null`` is NVML's
``NVML_VALUE_NOT_AVAILABLE``. The keys of ``errors`` are the method names of
:class:`~headroom.collection.gpu.nvml.Nvml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from headroom.collection.gpu.nvml import (
    NO_INSTANCE,
    NOT_SUPPORTED,
    NvmlError,
    ProcessInfo,
    ProcessUtilization,
    SampleKind,
    XidEvent,
)

__all__ = ["RecordedNvml", "load_nvml_recording"]


def load_nvml_recording(path: str | Path) -> list[dict[str, Any]]:
    """The cycles of a recording file; ValueError when it has none."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    document = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    cycles = document.get("cycles") if isinstance(document, dict) else None
    if not isinstance(cycles, list) or not cycles:
        raise ValueError(f"{file}: an NVML recording needs a non-empty 'cycles' list")
    return cycles


def _processes(entries: list[dict[str, Any]]) -> list[ProcessInfo]:
    return [
        ProcessInfo(
            pid=int(entry["pid"]),
            used_gpu_memory=entry.get("usedGpuMemory"),
            gpu_instance_id=int(entry.get("gpuInstanceId", NO_INSTANCE)),
            compute_instance_id=int(entry.get("computeInstanceId", NO_INSTANCE)),
        )
        for entry in entries
    ]


def _pair(handle: object) -> tuple[int, int | None]:
    """A recorded handle: (GPU index, MIG device position or None)."""
    if not isinstance(handle, tuple) or len(handle) != 2:
        raise TypeError(f"not a recorded NVML handle: {handle!r}")
    gpu: int = handle[0]
    mig: int | None = handle[1]
    return gpu, mig


class RecordedNvml:
    """Replays recorded NVML answers (implements ``Nvml``); handles are (gpu, mig) pairs."""

    def __init__(self, cycles: list[dict[str, Any]]) -> None:
        if not cycles:
            raise ValueError("an NVML recording needs at least one cycle")
        self._cycles = cycles
        self._position = -1

    @classmethod
    def from_file(cls, path: str | Path) -> RecordedNvml:
        """A reader over a recording file."""
        return cls(load_nvml_recording(path))

    @property
    def _cycle(self) -> dict[str, Any]:
        return self._cycles[min(max(self._position, 0), len(self._cycles) - 1)]

    def _entry(self, handle: object, call: str) -> dict[str, Any]:
        gpu, mig = _pair(handle)
        device: dict[str, Any] = self._cycle["devices"][gpu]
        errors = device.get("errors") or {}
        name = errors.get(call) or errors.get("*")
        if name:
            raise NvmlError(name, f"recorded on GPU {gpu}")
        if mig is None:
            return device
        entry: dict[str, Any] = device["migDevices"][mig]
        return entry

    def _answer(self, handle: object, call: str, key: str) -> Any:
        entry = self._entry(handle, call)
        if key not in entry:
            raise NvmlError(NOT_SUPPORTED, f"no recorded {key}")
        return entry[key]

    def device_count(self) -> int:
        """The next cycle's device count."""
        self._position = min(self._position + 1, len(self._cycles) - 1)
        error = (self._cycle.get("errors") or {}).get("device_count")
        if error:
            raise NvmlError(error)
        return len(self._cycle.get("devices") or [])

    def device(self, index: int) -> object:
        """A handle of GPU ``index``."""
        self._entry((index, None), "device")
        return (index, None)

    def name(self, handle: object) -> str:
        """Recorded ``name``."""
        return str(self._answer(handle, "name", "name"))

    def uuid(self, handle: object) -> str:
        """Recorded ``uuid``."""
        return str(self._answer(handle, "uuid", "uuid"))

    def memory(self, handle: object) -> tuple[int, int, int]:
        """Recorded ``memory``: total, free, used."""
        total, free, used = self._answer(handle, "memory", "memory")
        return int(total), int(free), int(used)

    def utilization(self, handle: object) -> tuple[int, int]:
        """Recorded ``utilization``: gpu %, memory %."""
        gpu, memory = self._answer(handle, "utilization", "utilization")
        return int(gpu), int(memory)

    def samples(self, handle: object, kind: SampleKind, since: int) -> list[tuple[int, int]]:
        """Recorded ``samples[kind]`` newer than ``since``."""
        recorded = self._answer(handle, "samples", "samples")
        if kind not in recorded:
            raise NvmlError(NOT_SUPPORTED, f"no recorded {kind} samples")
        return [(int(stamp), int(value)) for stamp, value in recorded[kind] if stamp > since]

    def mig_mode(self, handle: object) -> tuple[int, int]:
        """Recorded ``migMode``."""
        current, pending = self._answer(handle, "mig_mode", "migMode")
        return int(current), int(pending)

    def mig_devices(self, handle: object) -> list[object]:
        """Handles of the recorded ``migDevices``."""
        gpu, _ = _pair(handle)
        return [(gpu, j) for j in range(len(self._answer(handle, "mig_devices", "migDevices")))]

    def instance_ids(self, handle: object) -> tuple[int, int]:
        """Recorded ``instanceIds``."""
        gi, ci = self._answer(handle, "instance_ids", "instanceIds")
        return int(gi), int(ci)

    def compute_processes(self, handle: object) -> list[ProcessInfo]:
        """Recorded ``processes`` (none recorded: none running)."""
        entry = self._entry(handle, "compute_processes")
        return _processes(entry.get("processes") or [])

    def process_utilization(self, handle: object, since: int) -> list[ProcessUtilization]:
        """Recorded ``processUtilization`` newer than ``since``."""
        samples = self._answer(handle, "process_utilization", "processUtilization")
        return [
            ProcessUtilization(
                int(s["pid"]), int(s["timeStamp"]), int(s["smUtil"]), int(s["memUtil"])
            )
            for s in samples
            if int(s["timeStamp"]) > since
        ]

    def xid_events(self) -> list[XidEvent]:
        """Recorded ``xidEvents`` of this cycle."""
        return [
            XidEvent(str(event["uuid"]), int(event["xid"]))
            for event in self._cycle.get("xidEvents") or []
        ]
