"""From NVML answers to a node's GPU figures and each pod's GPU use (GP-001, GP-002).

:class:`GpuReader` asks an :class:`~headroom.collection.gpu.nvml.Nvml` (the
real binding or a recording) once per cycle:

* per GPU: index, UUID, product name, memory total and used, MIG mode and,
  in MIG mode, each MIG device's profile (from its NVML name,
  ``... MIG 1g.10gb``), instance IDs and memory;
* utilisation *between cycles*: the mean of NVML's own utilisation samples
  (``nvmlDeviceGetSamples``, one every ~1/6 s) newer than the last cycle's
  newest, not the instantaneous rate; where samples are not offered, the
  rate over NVML's last period (``nvmlDeviceGetUtilizationRates``). NVML has
  no utilisation for a GPU in MIG mode: none is reported there;
* compute processes (``nvmlDeviceGetComputeRunningProcesses``, on each MIG
  device in MIG mode) with their GPU memory, mapped to pods through the
  host's ``/proc/<pid>/cgroup`` (:mod:`~headroom.collection.gpu.pids`); the
  per-process SM share between cycles where NVML offers it
  (``nvmlDeviceGetProcessUtilization``);
* Xid critical errors since the last cycle, on the GPU they happened on.

An error from one GPU (``NVML_ERROR_GPU_IS_LOST``, an unknown error) ends
that GPU's reading: what was read is kept, the error is its ``error`` and the
other GPUs are read as usual (HR-003's spirit). "Not supported" and "not
found" only mean the figure does not exist there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from headroom.collection.gpu.figures import (
    GpuFigures,
    GpuSnapshot,
    MigDeviceFigures,
    PodGpuDevice,
    PodGpuUsage,
)
from headroom.collection.gpu.nvml import Nvml, NvmlError, ProcessInfo
from headroom.collection.gpu.pids import pod_uid_of_pid

__all__ = ["GpuReader", "mig_profile"]

_T = TypeVar("_T")


def mig_profile(name: str) -> str | None:
    """The MIG profile in a MIG device's NVML name: ``NVIDIA A100-SXM4-40GB MIG 1g.5gb`` → ``1g.5gb``."""
    _, marker, profile = name.rpartition("MIG ")
    return profile.strip() or None if marker else None


def _percent(used: int, total: int) -> float | None:
    return round(100.0 * used / total, 1) if total > 0 else None


@dataclass(slots=True)
class _Device:
    """One GPU or MIG device's processes, to attribute to pods."""

    uuid: str
    gpu_index: int
    profile: str | None
    processes: list[ProcessInfo]
    shares: dict[int, float] = field(default_factory=dict)


class _GpuFailed(Exception):
    """A real error on this GPU: stop reading it."""

    def __init__(self, call: str, error: NvmlError) -> None:
        super().__init__(f"{call}: {error.name}")
        self.text = f"{call}: {error.name}"


class GpuReader:
    """Reads every GPU through ``nvml`` and maps its processes to pods via ``procfs``."""

    def __init__(
        self,
        nvml: Nvml,
        procfs: str = "/proc",
        *,
        pod_of_pid: Callable[[str, int], str | None] = pod_uid_of_pid,
    ) -> None:
        self._nvml = nvml
        self._procfs = procfs.rstrip("/") or "/"
        self._pod_of_pid = pod_of_pid
        self._seen: dict[tuple[str, str], int] = {}
        """(uuid, kind) → newest NVML timestamp already counted (µs)."""

    def _ask(self, call: str, function: Callable[[], _T]) -> _T | None:
        """One query; None when the figure does not exist, _GpuFailed on a real error."""
        try:
            return function()
        except NvmlError as error:
            if error.no_data:
                return None
            raise _GpuFailed(call, error) from None

    def _mean_since(self, handle: object, uuid: str, kind: str) -> float | None:
        """Mean of the utilisation samples newer than last cycle's; None without any."""
        since = self._seen.get((uuid, kind), 0)
        samples = self._ask(
            "nvmlDeviceGetSamples",
            lambda: self._nvml.samples(handle, "gpu" if kind == "gpu" else "memory", since),
        )
        fresh = [(stamp, value) for stamp, value in samples or () if stamp > since]
        if not fresh:
            return None
        self._seen[(uuid, kind)] = max(stamp for stamp, _ in fresh)
        mean: float = round(sum(value for _, value in fresh) / len(fresh), 1)
        return mean

    def _shares(self, handle: object, uuid: str) -> dict[int, float]:
        """Each PID's mean SM share since last cycle (empty where NVML has none)."""
        since = self._seen.get((uuid, "process"), 0)
        samples = self._ask(
            "nvmlDeviceGetProcessUtilization",
            lambda: self._nvml.process_utilization(handle, since),
        )
        by_pid: dict[int, list[int]] = {}
        newest = since
        for sample in samples or ():
            if sample.time_stamp <= since:
                continue
            by_pid.setdefault(sample.pid, []).append(sample.sm_util)
            newest = max(newest, sample.time_stamp)
        self._seen[(uuid, "process")] = newest
        return {pid: round(sum(v) / len(v), 1) for pid, v in by_pid.items()}

    def _mig_device(
        self, position: int, handle: object, gpu_index: int, devices: list[_Device]
    ) -> MigDeviceFigures:
        nvml = self._nvml
        try:
            uuid = str(self._ask("nvmlDeviceGetUUID", lambda: nvml.uuid(handle)))
            name = self._ask("nvmlDeviceGetName", lambda: nvml.name(handle))
            profile = mig_profile(name) if name is not None else None
            ids = self._ask("nvmlDeviceGetGpuInstanceId", lambda: nvml.instance_ids(handle))
            memory = self._ask("nvmlDeviceGetMemoryInfo", lambda: nvml.memory(handle))
            processes = self._ask(
                "nvmlDeviceGetComputeRunningProcesses", lambda: nvml.compute_processes(handle)
            )
        except _GpuFailed as failed:
            return MigDeviceFigures(index=position, error=failed.text)
        devices.append(_Device(uuid, gpu_index, profile, list(processes or ())))
        total, used = (memory[0], memory[2]) if memory is not None else (None, None)
        gi, ci = ids if ids is not None else (None, None)
        return MigDeviceFigures(
            index=position,
            uuid=uuid,
            profile=profile,
            gpuInstanceId=gi,
            computeInstanceId=ci,
            memoryTotalBytes=total,
            memoryUsedBytes=used,
        )

    def _gpu(self, index: int, xids: dict[str, list[int]], devices: list[_Device]) -> GpuFigures:
        nvml = self._nvml
        found: dict[str, object] = {"index": index}
        try:
            handle = self._ask("nvmlDeviceGetHandleByIndex", lambda: nvml.device(index))
            uuid = str(self._ask("nvmlDeviceGetUUID", lambda: nvml.uuid(handle)))
            found["uuid"] = uuid
            found["name"] = self._ask("nvmlDeviceGetName", lambda: nvml.name(handle))
            if uuid in xids:
                found["xids"] = xids[uuid]
            memory = self._ask("nvmlDeviceGetMemoryInfo", lambda: nvml.memory(handle))
            if memory is not None:
                total, _, used = memory
                found.update(
                    memoryTotalBytes=total,
                    memoryUsedBytes=used,
                    memoryUsedPercent=_percent(used, total),
                )
            mode = self._ask("nvmlDeviceGetMigMode", lambda: nvml.mig_mode(handle))
            mig = mode is not None and mode[0] == 1
            if mode is not None:
                found["migMode"] = "Enabled" if mig else "Disabled"
            if mig:
                handles = self._ask(
                    "nvmlDeviceGetMigDeviceHandleByIndex", lambda: nvml.mig_devices(handle)
                )
                before = len(devices)
                found["migDevices"] = [
                    self._mig_device(position, mig_handle, index, devices)
                    for position, mig_handle in enumerate(handles or [])
                ]
                found["processCount"] = sum(len(d.processes) for d in devices[before:])
            else:
                self._utilization(handle, uuid, found)
                processes = self._ask(
                    "nvmlDeviceGetComputeRunningProcesses", lambda: nvml.compute_processes(handle)
                )
                device = _Device(uuid, index, None, list(processes or ()))
                found["processCount"] = len(device.processes)
                if device.processes:
                    device.shares = self._shares(handle, uuid)
                devices.append(device)
        except _GpuFailed as failed:
            found["error"] = failed.text
        return GpuFigures(**found)  # type: ignore[arg-type]

    def _utilization(self, handle: object, uuid: str, found: dict[str, object]) -> None:
        gpu = self._mean_since(handle, uuid, "gpu")
        memory = self._mean_since(handle, uuid, "memory")
        if gpu is None or memory is None:
            rates = self._ask(
                "nvmlDeviceGetUtilizationRates", lambda: self._nvml.utilization(handle)
            )
            if rates is not None:
                gpu = float(rates[0]) if gpu is None else gpu
                memory = float(rates[1]) if memory is None else memory
        found["utilizationPercent"] = gpu
        found["memoryUtilizationPercent"] = memory

    def _xids(self, warnings: list[str]) -> dict[str, list[int]]:
        try:
            events = self._nvml.xid_events()
        except NvmlError as error:
            if not error.no_data:
                warnings.append(f"GPU Xid events unreadable: {error.name}")
            return {}
        xids: dict[str, list[int]] = {}
        for event in events:
            xids.setdefault(event.uuid, []).append(event.xid)
        return xids

    def _pods(self, devices: list[_Device]) -> dict[str, PodGpuUsage]:
        """Each pod's GPU memory and SM share per device, from its processes' PIDs."""
        per_pod: dict[str, dict[str, list[ProcessInfo]]] = {}
        owners: dict[int, str | None] = {}
        for device in devices:
            for process in device.processes:
                if process.pid not in owners:
                    owners[process.pid] = self._pod_of_pid(self._procfs, process.pid)
                uid = owners[process.pid]
                if uid is not None:
                    per_pod.setdefault(uid, {}).setdefault(device.uuid, []).append(process)
        by_uuid = {device.uuid: device for device in devices}
        usage: dict[str, PodGpuUsage] = {}
        for uid, on_devices in sorted(per_pod.items()):
            entries = []
            for uuid, processes in on_devices.items():
                device = by_uuid[uuid]
                known = [p.used_gpu_memory for p in processes if p.used_gpu_memory is not None]
                shares = [device.shares[p.pid] for p in processes if p.pid in device.shares]
                entries.append(
                    PodGpuDevice(
                        uuid=uuid,
                        gpuIndex=device.gpu_index,
                        migProfile=device.profile,
                        memoryBytes=sum(known) if known else None,
                        utilizationPercent=round(min(sum(shares), 100.0), 1) if shares else None,
                        processes=len(processes),
                    )
                )
            sized = [e.memoryBytes for e in entries if e.memoryBytes is not None]
            usage[uid] = PodGpuUsage(memoryBytes=sum(sized) if sized else None, devices=entries)
        return usage

    def read(self) -> GpuSnapshot:
        """Every GPU now; never raises for one GPU's fault."""
        warnings: list[str] = []
        try:
            count = self._nvml.device_count()
        except NvmlError as error:
            return GpuSnapshot((), {}, (f"NVML cannot count GPUs: {error.name}",))
        xids = self._xids(warnings)
        devices: list[_Device] = []
        gpus = tuple(self._gpu(index, xids, devices) for index in range(count))
        for gpu in gpus:
            if gpu.error is not None:
                warnings.append(f"GPU {gpu.index} ({gpu.uuid or 'unknown UUID'}): {gpu.error}")
        return GpuSnapshot(gpus, self._pods(devices), tuple(warnings))
