"""Print reports for people (``table``) and programs (``json``, ``yaml``)."""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from tabulate import tabulate

from headroom.api import ResourceReport

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
    return "\n\n".join(parts)


def render_report(report: ResourceReport, fmt: OutputFormat) -> str:
    """The report in the requested format."""
    if fmt == "table":
        return _table(report)
    wire: dict[str, Any] = report.to_wire()
    if fmt == "json":
        return json.dumps(wire, indent=2)
    return yaml.safe_dump(wire, sort_keys=False).rstrip()
