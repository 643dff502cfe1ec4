"""Print reports for people (``table``) and programs (``json``, ``yaml``)."""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from tabulate import tabulate

from headroom.api import ResourceReport, ResourceReportStatus

__all__ = ["OutputFormat", "format_bytes", "render_report"]

OutputFormat = Literal["table", "json", "yaml"]


def format_bytes(value: int | None) -> str:
    """Binary units, as ``kubectl`` users read them (``1.5Gi``)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if size < 1024 or unit == "Ti":
            return f"{size:.0f}{unit}" if unit == "" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}Pi"  # pragma: no cover - loop always returns


def _table(report: ResourceReport) -> str:
    status = report.status
    if status is None:
        return f"{report.metadata.name}: no figures yet"
    cpu, memory = status.cpu, status.memory
    node: list[list[object]] = [
        ["node", report.metadata.name],
        ["collected at", status.collectedAt.isoformat(timespec="seconds")],
        ["cpu utilisation (FR-001)", f"{cpu.utilizationPercent:.1f}%"],
        ["physical cores (FR-002)", cpu.physicalCores if cpu.physicalCores is not None else "-"],
        ["logical cores (FR-003)", cpu.logicalCores],
        ["memory total (FR-004)", format_bytes(memory.totalBytes)],
        ["memory available", format_bytes(memory.availableBytes)],
        ["memory used", f"{format_bytes(memory.usedBytes)} ({memory.usedPercent:.1f}%)"],
        ["pods", status.podCount],
    ]
    if status.agentContainer is not None:
        limits = status.agentContainer
        node.append(["agent cpu limit", limits.cpuLimitCores or "unlimited"])
        memory_limit = limits.memoryLimitBytes
        node.append(
            ["agent memory limit", format_bytes(memory_limit) if memory_limit else "unlimited"]
        )
    disks = [
        [
            d.path,
            format_bytes(d.totalBytes),
            format_bytes(d.usedBytes),
            format_bytes(d.freeBytes),
            "-" if d.usedPercent is None else f"{d.usedPercent:.1f}%",
            d.error or "",
        ]
        for d in status.disks
    ]
    parts = [
        tabulate(node, tablefmt="plain"),
        tabulate(disks, headers=["DISK (FR-005)", "TOTAL", "USED", "FREE", "USE%", "ERROR"]),
    ]
    if status.pods:
        pods = [
            [
                p.uid,
                p.qosClass,
                "-" if p.cpuCores is None else f"{p.cpuCores:.3f}",
                format_bytes(p.memoryBytes),
            ]
            for p in status.pods
        ]
        parts.append(tabulate(pods, headers=["POD UID", "QOS", "CPU (cores)", "MEMORY"]))
    parts.extend(_gpu_tables(status))
    return "\n\n".join(parts)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _gpu_tables(status: ResourceReportStatus) -> list[str]:
    """The GPUs (GP-001), their MIG devices and each pod's GPU use (GP-002); none without GPUs."""
    if not status.gpus:
        return []
    gpus, migs = [], []
    for gpu in status.gpus:
        gpus.append(
            [
                gpu.index,
                gpu.name or "-",
                gpu.uuid or "-",
                format_bytes(gpu.memoryTotalBytes),
                format_bytes(gpu.memoryUsedBytes),
                _percent(gpu.utilizationPercent),
                _percent(gpu.memoryUtilizationPercent),
                gpu.migMode or "-",
                "-" if gpu.processCount is None else gpu.processCount,
                ",".join(str(x) for x in gpu.xids or ()),
                gpu.error or "",
            ]
        )
        for mig in gpu.migDevices or ():
            migs.append(
                [
                    f"{gpu.index}/{mig.index}",
                    mig.profile or "-",
                    mig.uuid or "-",
                    format_bytes(mig.memoryTotalBytes),
                    format_bytes(mig.memoryUsedBytes),
                    mig.error or "",
                ]
            )
    headers = ["GPU (GP-001)", "NAME", "UUID", "MEMORY", "USED", "UTIL", "MEM-UTIL", "MIG"]
    parts = [tabulate(gpus, headers=[*headers, "PROCS", "XID", "ERROR"])]
    if migs:
        parts.append(
            tabulate(migs, headers=["MIG DEVICE", "PROFILE", "UUID", "MEMORY", "USED", "ERROR"])
        )
    pods = [
        [
            pod.uid,
            device.gpuIndex
            if device.migProfile is None
            else f"{device.gpuIndex} ({device.migProfile})",
            format_bytes(device.memoryBytes),
            _percent(device.utilizationPercent),
            device.processes,
        ]
        for pod in status.pods
        if pod.gpu is not None
        for device in pod.gpu.devices
    ]
    if pods:
        parts.append(
            tabulate(pods, headers=["POD UID (GP-002)", "GPU", "GPU MEMORY", "SM SHARE", "PROCS"])
        )
    return parts


def render_report(report: ResourceReport, fmt: OutputFormat) -> str:
    """The report in the requested format."""
    if fmt == "table":
        return _table(report)
    wire: dict[str, Any] = report.to_wire()
    if fmt == "json":
        return json.dumps(wire, indent=2)
    return yaml.safe_dump(wire, sort_keys=False).rstrip()
