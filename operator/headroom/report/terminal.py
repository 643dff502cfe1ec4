"""``headroom report`` as tables (rich): colours and boxes on a terminal, plain text otherwise.

Stale nodes are shown in red *and* marked ``STALE`` in the REPORTED column, so
the flag survives a pipe (no colours there) and a colour-blind reader.
"""

from __future__ import annotations

from typing import IO

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from headroom.api.capacityrecommendation import (
    CurrentSizing,
    RecommendationColumns,
    RecommendedSizing,
)
from headroom.report.text import (
    format_age,
    format_bytes,
    format_cores,
    format_fit_nodes,
    format_gpu_advice,
    format_share,
)
from headroom.report.view import ClusterReport, ExpertView, NodeView

__all__ = ["print_tables", "render_tables"]

_PLAIN_WIDTH = 1000  # a pipe has no width: never wrap or cut a row


def _table(title: str, plain: bool) -> Table:
    return Table(
        title=None if plain else title,
        box=None if plain else box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=not plain,
        header_style="" if plain else "bold",
    )


def _with_share(figure: str, share: str) -> str:
    return f"{figure} ({share})" if share else figure


def _node_row(node: NodeView) -> list[str]:
    cpu_alloc, mem_alloc = node.allocatableCpuCores, node.allocatableMemoryBytes
    disk = node.fullestDisk
    reported = format_age(node.reportAgeSeconds)
    return [
        node.name,
        format_cores(cpu_alloc),
        _with_share(
            format_cores(node.requestedCpuCores), format_share(node.requestedCpuCores, cpu_alloc)
        ),
        _with_share(format_cores(node.usedCpuCores), format_share(node.usedCpuCores, cpu_alloc)),
        format_cores(node.freeCpuCores),
        format_bytes(mem_alloc),
        _with_share(
            format_bytes(node.requestedMemoryBytes),
            format_share(node.requestedMemoryBytes, mem_alloc),
        ),
        _with_share(
            format_bytes(node.usedMemoryBytes), format_share(node.usedMemoryBytes, mem_alloc)
        ),
        format_bytes(node.freeMemoryBytes),
        str(node.pods),
        "-" if disk is None else f"{disk.usedPercent:.0f}% {disk.path}",
        f"{reported} STALE" if node.stale else reported,
        "; ".join(n for n in node.notes if not n.startswith("stale report")),
    ]


def _gpu_cells(node: NodeView) -> list[str]:
    """GPU ALLOC, GPU REQ, GPU MEM USED, GPU UTIL (GP-001, GP-005)."""
    gpu = node.gpu
    if gpu is None:
        return ["-", "-", "-", "-"]
    used = _with_share(
        format_bytes(gpu.memoryUsedBytes), format_share(gpu.memoryUsedBytes, gpu.memoryTotalBytes)
    )
    busy = "-" if gpu.utilizationPercent is None else f"{gpu.utilizationPercent:.0f}%"
    if gpu.errors:
        busy += f" ({gpu.errors} failing)"
    return [str(gpu.allocatableDevices), str(gpu.requestedDevices), used, busy]


_GPU_HEADERS = ("GPU ALLOC", "GPU REQ", "GPU MEM USED", "GPU UTIL")


def nodes_table(report: ClusterReport, plain: bool) -> Table:
    """Per node: CPU and memory allocatable / requested / used / free, pods, disk, age;
    GPU columns too when any node has GPUs."""
    table = _table("Nodes", plain)
    gpus = any(node.gpu is not None for node in report.nodes)
    headers: list[str] = [
        "NODE",
        "CPU ALLOC",
        "CPU REQ",
        "CPU USED",
        "CPU FREE",
        "MEM ALLOC",
        "MEM REQ",
        "MEM USED",
        "MEM FREE",
        "PODS",
        "FULLEST DISK",
        "REPORTED",
        "NOTES",
    ]
    if gpus:
        headers[-1:-1] = _GPU_HEADERS
    for header in headers:
        left = header in ("NODE", "FULLEST DISK", "REPORTED", "NOTES")
        table.add_column(header, justify="left" if left else "right", no_wrap=True)
    for node in report.nodes:
        row = _node_row(node)
        if gpus:
            row[-1:-1] = _gpu_cells(node)
        table.add_row(*row, style="bold red" if node.stale else None)
    return table


def _change(current: str | None, recommended: str | None) -> Text:
    cur, rec = current or "-", recommended or "-"
    if rec == "-" or cur == rec:
        return Text(f"{cur} → {rec}" if rec != "-" else cur)
    return Text.assemble(f"{cur} → ", (rec, "bold yellow"))


def _sizes(
    cur: CurrentSizing | None, rec: RecommendedSizing | None, cols: RecommendationColumns | None
) -> tuple[Text, Text, Text]:
    """Current → recommended, the recommended side as ``kubectl get caprec`` shows it:
    ``~`` while provisional, ``hpa:min-max`` where an HPA owns the replicas."""
    if rec is None:
        recommended: tuple[str | None, str | None, str | None] = (None, None, None)
    elif cols is not None:
        recommended = (cols.replicas, cols.cpuRequest, cols.memoryRequest)
    else:
        recommended = (str(rec.replicas), rec.cpuRequest, rec.memoryRequest)
    return (
        _change(str(cur.replicas) if cur else None, recommended[0]),
        _change(cur.cpuRequest if cur else None, recommended[1]),
        _change(cur.memoryRequest if cur else None, recommended[2]),
    )


def _expert_row(expert: ExpertView) -> list[Text | str]:
    replicas, cpu, memory = _sizes(expert.current, expert.recommended, expert.columns)
    fit = expert.fit
    return [
        f"{expert.namespace}/{expert.name}",
        replicas,
        cpu,
        memory,
        "-" if fit is None else str(fit.additionalReplicas),
        format_fit_nodes(fit),
        expert.message or "",
    ]


def experts_table(report: ClusterReport, plain: bool) -> Table:
    """Per expert: current → recommended replicas, CPU and memory; how many more fit, where."""
    table = _table("Experts", plain)
    gpus = any(expert.gpu is not None for expert in report.experts)
    headers = ["EXPERT", "REPLICAS", "CPU", "MEMORY", "FITS", "WHERE", "NOTES"]
    if gpus:
        headers.insert(-1, "GPU (GP-004)")
    for header in headers:
        table.add_column(
            header, justify="right" if header == "FITS" else "left", no_wrap=header != "NOTES"
        )
    for expert in report.experts:
        row = _expert_row(expert)
        if gpus:
            row.insert(-1, format_gpu_advice(expert.gpu))
        table.add_row(*row)
        for container_row in _container_rows(expert):
            if gpus:
                container_row.insert(-1, "")
            table.add_row(*container_row, style="dim" if plain else None)
    return table


def _container_rows(expert: ExpertView) -> list[list[Text | str]]:
    """One row per container under its expert: requests current → recommended, limits, OOM."""
    rows: list[list[Text | str]] = []
    containers = expert.containers or []
    if expert.podLevel is not None:
        level = expert.podLevel
        rows.append(
            [
                "  (pod-level resources)",
                "",
                "",
                _change(level.current.memoryLimit, level.memoryLimit),
                "",
                "",
                f"memory limit; {level.memoryLimitReason}",
            ]
        )
    for container in containers:
        now, advice, kills = container.current, container.recommended, container.oomKills
        notes = []
        if container.sidecar:
            notes.append("sidecar")
        if advice is not None:
            notes.append(
                f"mem limit {(now.memoryLimit if now else None) or '-'} → {advice.memoryLimit}"
            )
            if advice.cpuLimit is not None:
                notes.append(f"cpu limit → {advice.cpuLimit}")
        if kills is not None:
            notes.append(f"OOM-killed ×{kills.count}, last {kills.lastKilledAt:%Y-%m-%d %H:%M}Z")
        rows.append(
            [
                f"  └ {container.name}",
                "",
                _change(now.cpuRequest if now else None, advice.cpuRequest if advice else None),
                _change(
                    now.memoryRequest if now else None, advice.memoryRequest if advice else None
                ),
                "",
                "",
                "; ".join(notes),
            ]
        )
    return rows


def _summary(report: ClusterReport) -> str:
    s = report.summary
    return (
        f"read at {report.readAt.isoformat(timespec='seconds')}: {s.nodes} nodes "
        f"({s.staleNodes} stale), CPU {format_cores(s.requestedCpuCores)} requested / "
        f"{format_cores(s.usedCpuCores)} used of {format_cores(s.allocatableCpuCores)}, "
        f"memory {format_bytes(s.requestedMemoryBytes)} requested / "
        f"{format_bytes(s.usedMemoryBytes)} used of {format_bytes(s.allocatableMemoryBytes)}; "
        f"{s.experts} experts, {s.additionalReplicas} more replicas fit"
    )


def _print(console: Console, what: Table | str) -> None:
    """Print whole: a table wider than the terminal is not cut (the terminal wraps, as kubectl's)."""
    if isinstance(what, Table):
        needed = Measurement.get(
            console, console.options.update(max_width=_PLAIN_WIDTH), what
        ).maximum
        if needed > console.width:
            console.width = needed
    console.print(what, soft_wrap=False)
    console.print()


def print_tables(
    report: ClusterReport,
    *,
    nodes: bool = True,
    experts: bool = True,
    file: IO[str] | None = None,
    terminal: bool | None = None,
) -> None:
    """Print the tables; ``terminal`` None means: decide by whether ``file`` is a terminal."""
    probe = Console(file=file)
    plain = not (probe.is_terminal if terminal is None else terminal)
    console = (
        Console(file=file, width=_PLAIN_WIDTH, color_system=None, highlight=False, emoji=False)
        if plain
        else Console(file=file, force_terminal=True, highlight=False, emoji=False)
    )
    if nodes:
        _print(console, nodes_table(report, plain) if report.nodes else "no nodes")
    if experts:
        _print(
            console,
            experts_table(report, plain) if report.experts else "no CapacityRecommendations",
        )
    console.print(_summary(report), soft_wrap=True, highlight=False)


def render_tables(
    report: ClusterReport, *, nodes: bool = True, experts: bool = True, terminal: bool = False
) -> str:
    """The tables as a string (plain unless ``terminal``)."""
    import io

    buffer = io.StringIO()
    print_tables(report, nodes=nodes, experts=experts, file=buffer, terminal=terminal)
    return buffer.getvalue()
