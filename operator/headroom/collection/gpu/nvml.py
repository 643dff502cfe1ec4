"""The NVML calls the agent makes, as a small interface, and the real binding behind it.

:class:`Nvml` names exactly the NVML queries the GPU reader uses, with the
shapes NVML answers in (``nvmlMemory_t`` as ``(total, free, used)`` bytes,
``nvmlUtilization_t`` as ``(gpu, memory)`` percent, ``nvmlSample_t`` as
``(timeStamp µs, value)``, ``nvmlProcessInfo_t`` as :class:`ProcessInfo`,
``nvmlProcessUtilizationSample_t`` as :class:`ProcessUtilization`). A failed
query raises :class:`NvmlError` carrying NVML's own error name
(``NVML_ERROR_GPU_IS_LOST``, ``NVML_ERROR_NOT_SUPPORTED``...), so a recorded
answer and a live one fail the same way.

:class:`NvmlBinding` is the official binding (``nvidia-ml-py``, module
``pynvml``). It is imported only by :func:`open_nvml`, and only when
``libnvidia-ml.so.1`` is present on the library path (:func:`nvml_library`):
on a node without the NVIDIA driver the agent never imports pynvml or ctypes'
NVML wrappers, costs no memory for them and reports no ``gpus`` section.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from headroom.collection.gpu.library import LIBRARY, nvml_library

__all__ = [
    "LIBRARY",
    "NOT_SUPPORTED",
    "Nvml",
    "NvmlBinding",
    "NvmlError",
    "ProcessInfo",
    "ProcessUtilization",
    "SampleKind",
    "XidEvent",
    "nvml_library",
    "open_nvml",
]

NOT_SUPPORTED = "NVML_ERROR_NOT_SUPPORTED"
NOT_FOUND = "NVML_ERROR_NOT_FOUND"
NO_DATA_ERRORS = (NOT_SUPPORTED, NOT_FOUND)
"""Answers that mean "no such figure here", not "something is wrong"."""
NO_INSTANCE = 0xFFFFFFFF
"""``gpuInstanceId`` / ``computeInstanceId`` of a process on a GPU without MIG."""

SampleKind = Literal["gpu", "memory"]
"""``NVML_GPU_UTILIZATION_SAMPLES`` (1) and ``NVML_MEMORY_UTILIZATION_SAMPLES`` (2)."""


class NvmlError(Exception):
    """An NVML call failed; ``name`` is NVML's error name (``NVML_ERROR_...``)."""

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message or name

    @property
    def no_data(self) -> bool:
        """The figure does not exist here (not supported, not found), not a fault."""
        return self.name in NO_DATA_ERRORS


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """``nvmlProcessInfo_t``: a compute process on a GPU or MIG device."""

    pid: int
    used_gpu_memory: int | None
    """Bytes; None where NVML cannot tell (``NVML_VALUE_NOT_AVAILABLE``)."""
    gpu_instance_id: int = NO_INSTANCE
    compute_instance_id: int = NO_INSTANCE


@dataclass(frozen=True, slots=True)
class ProcessUtilization:
    """``nvmlProcessUtilizationSample_t``: one process's share of the GPU in one sample."""

    pid: int
    time_stamp: int
    """µs since the epoch (NVML's clock)."""
    sm_util: int
    mem_util: int


@dataclass(frozen=True, slots=True)
class XidEvent:
    """``nvmlEventData_t`` of ``nvmlEventTypeXidCriticalError``: an Xid on one GPU."""

    uuid: str
    xid: int


class Nvml(Protocol):
    """The NVML queries the GPU reader makes. ``handle`` is opaque to the caller."""

    def device_count(self) -> int:
        """``nvmlDeviceGetCount``."""
        ...

    def device(self, index: int) -> object:
        """``nvmlDeviceGetHandleByIndex``."""
        ...

    def name(self, handle: object) -> str:
        """``nvmlDeviceGetName`` (a MIG device's ends with its profile, ``MIG 1g.10gb``)."""
        ...

    def uuid(self, handle: object) -> str:
        """``nvmlDeviceGetUUID`` (``GPU-...`` or ``MIG-...``)."""
        ...

    def memory(self, handle: object) -> tuple[int, int, int]:
        """``nvmlDeviceGetMemoryInfo``: (total, free, used) bytes."""
        ...

    def utilization(self, handle: object) -> tuple[int, int]:
        """``nvmlDeviceGetUtilizationRates``: (gpu, memory) % over NVML's last period."""
        ...

    def samples(self, handle: object, kind: SampleKind, since: int) -> list[tuple[int, int]]:
        """``nvmlDeviceGetSamples``: (timeStamp µs, value %) newer than ``since``."""
        ...

    def mig_mode(self, handle: object) -> tuple[int, int]:
        """``nvmlDeviceGetMigMode``: (current, pending), 1 = enabled."""
        ...

    def mig_devices(self, handle: object) -> list[object]:
        """The MIG devices that exist (``nvmlDeviceGetMigDeviceHandleByIndex`` up to the max)."""
        ...

    def instance_ids(self, handle: object) -> tuple[int, int]:
        """A MIG device's (``nvmlDeviceGetGpuInstanceId``, ``...ComputeInstanceId``)."""
        ...

    def compute_processes(self, handle: object) -> list[ProcessInfo]:
        """``nvmlDeviceGetComputeRunningProcesses``."""
        ...

    def process_utilization(self, handle: object, since: int) -> list[ProcessUtilization]:
        """``nvmlDeviceGetProcessUtilization``: samples newer than ``since`` (µs)."""
        ...

    def xid_events(self) -> list[XidEvent]:
        """Xid critical errors since the last call (``nvmlEventSetWait`` with no wait)."""
        ...


def open_nvml() -> NvmlBinding:
    """The real NVML, initialised; raises :class:`NvmlError` when it cannot be."""
    return NvmlBinding()


class NvmlBinding:
    """:class:`Nvml` over ``pynvml`` (nvidia-ml-py), imported here and nowhere else."""

    def __init__(self) -> None:
        import pynvml  # type: ignore[import-untyped]

        self._nvml: Any = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            raise self._error(error) from None
        self._events: Any = None

    def _error(self, error: Any) -> NvmlError:
        value = getattr(error, "value", None)
        names = {
            getattr(self._nvml, attribute): attribute
            for attribute in dir(self._nvml)
            if attribute.startswith("NVML_ERROR_")
        }
        return NvmlError(names.get(value, f"NVML_ERROR_{value}"), str(error))

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(*args)
        except self._nvml.NVMLError as error:
            raise self._error(error) from None

    def close(self) -> None:
        """``nvmlShutdown``."""
        with contextlib.suppress(self._nvml.NVMLError):
            self._nvml.nvmlShutdown()

    def device_count(self) -> int:
        """``nvmlDeviceGetCount``."""
        return int(self._call("nvmlDeviceGetCount"))

    def device(self, index: int) -> object:
        """``nvmlDeviceGetHandleByIndex``."""
        handle: object = self._call("nvmlDeviceGetHandleByIndex", index)
        return handle

    def name(self, handle: object) -> str:
        """``nvmlDeviceGetName``."""
        value = self._call("nvmlDeviceGetName", handle)
        return value.decode() if isinstance(value, bytes) else str(value)

    def uuid(self, handle: object) -> str:
        """``nvmlDeviceGetUUID``."""
        value = self._call("nvmlDeviceGetUUID", handle)
        return value.decode() if isinstance(value, bytes) else str(value)

    def memory(self, handle: object) -> tuple[int, int, int]:
        """``nvmlDeviceGetMemoryInfo``."""
        info = self._call("nvmlDeviceGetMemoryInfo", handle)
        return int(info.total), int(info.free), int(info.used)

    def utilization(self, handle: object) -> tuple[int, int]:
        """``nvmlDeviceGetUtilizationRates``."""
        rates = self._call("nvmlDeviceGetUtilizationRates", handle)
        return int(rates.gpu), int(rates.memory)

    def samples(self, handle: object, kind: SampleKind, since: int) -> list[tuple[int, int]]:
        """``nvmlDeviceGetSamples`` (utilisation samples are unsigned ints)."""
        sampling = (
            self._nvml.NVML_GPU_UTILIZATION_SAMPLES
            if kind == "gpu"
            else self._nvml.NVML_MEMORY_UTILIZATION_SAMPLES
        )
        _, samples = self._call("nvmlDeviceGetSamples", handle, sampling, since)
        return [(int(s.timeStamp), int(s.sampleValue.uiVal)) for s in samples]

    def mig_mode(self, handle: object) -> tuple[int, int]:
        """``nvmlDeviceGetMigMode``."""
        current, pending = self._call("nvmlDeviceGetMigMode", handle)
        return int(current), int(pending)

    def mig_devices(self, handle: object) -> list[object]:
        """Each existing MIG device (an index without one answers NOT_FOUND)."""
        devices: list[object] = []
        for index in range(int(self._call("nvmlDeviceGetMaxMigDeviceCount", handle))):
            try:
                devices.append(self._call("nvmlDeviceGetMigDeviceHandleByIndex", handle, index))
            except NvmlError as error:
                if error.name != NOT_FOUND:
                    raise
        return devices

    def instance_ids(self, handle: object) -> tuple[int, int]:
        """A MIG device's GPU and compute instance IDs."""
        return (
            int(self._call("nvmlDeviceGetGpuInstanceId", handle)),
            int(self._call("nvmlDeviceGetComputeInstanceId", handle)),
        )

    def compute_processes(self, handle: object) -> list[ProcessInfo]:
        """``nvmlDeviceGetComputeRunningProcesses`` (v3 structures)."""
        return [
            ProcessInfo(
                pid=int(p.pid),
                used_gpu_memory=None if p.usedGpuMemory is None else int(p.usedGpuMemory),
                gpu_instance_id=int(getattr(p, "gpuInstanceId", NO_INSTANCE)),
                compute_instance_id=int(getattr(p, "computeInstanceId", NO_INSTANCE)),
            )
            for p in self._call("nvmlDeviceGetComputeRunningProcesses", handle)
        ]

    def process_utilization(self, handle: object, since: int) -> list[ProcessUtilization]:
        """``nvmlDeviceGetProcessUtilization``."""
        return [
            ProcessUtilization(int(s.pid), int(s.timeStamp), int(s.smUtil), int(s.memUtil))
            for s in self._call("nvmlDeviceGetProcessUtilization", handle, since)
        ]

    def _event_set(self) -> Any:
        """An event set for Xid critical errors on every GPU, created on first use."""
        if self._events is None:
            self._events = self._call("nvmlEventSetCreate")
            for index in range(self.device_count()):
                handle = self.device(index)
                try:
                    self._call(
                        "nvmlDeviceRegisterEvents",
                        handle,
                        self._nvml.nvmlEventTypeXidCriticalError,
                        self._events,
                    )
                except NvmlError as error:
                    if not error.no_data:
                        raise
        return self._events

    def xid_events(self) -> list[XidEvent]:
        """Every Xid waiting in the event set; never blocks (timeout 0 ms)."""
        events: list[XidEvent] = []
        event_set = self._event_set()
        while True:
            try:
                data = self._call("nvmlEventSetWait_v2", event_set, 0)
            except NvmlError as error:
                if error.name == "NVML_ERROR_TIMEOUT":
                    return events
                raise
            events.append(XidEvent(self.uuid(data.device), int(data.eventData)))
