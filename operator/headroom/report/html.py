"""``headroom report --html FILE``: one self-contained page — inline CSS, SVG and JS, no network.

The page holds bar charts (inline SVG) of node headroom and of each expert's
current vs recommended sizing, the node and expert tables (sortable: click a
header; ``?sort=TABLE:COLUMN[:desc]`` in the URL sorts on load, the way a
bookmark or a headless browser asks for it), and the time the data was read.
Every string from the cluster is escaped. Every bar and sortable cell carries
its figure in a ``data-`` attribute, so a browser test can check the numbers
drawn against the numbers read.

The node chart shows the :data:`CHART_NODES` fullest nodes (by the largest
share of CPU or memory requested or used) and the expert charts the first
:data:`CHART_EXPERTS` experts: a chart of 5,000 bars helps nobody; the tables
below list everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from headroom.report.text import (
    format_age,
    format_bytes,
    format_cores,
    format_fit_nodes,
    format_gpu_advice,
    format_share,
)
from headroom.report.view import ClusterReport, ExpertView, NodeView

__all__ = ["CHART_EXPERTS", "CHART_NODES", "render_html"]

CHART_NODES = 40
"""The node chart shows this many of the fullest nodes."""
CHART_EXPERTS = 60
"""The expert charts show this many experts (by namespace and name)."""

_LABEL_W = 230
_TRACK_W = 440
_BAR_H = 12
_SVG_W = _LABEL_W + _TRACK_W + 420

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#57606a;margin:0 0 12px}.summary{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:18px}
svg text{font:12px system-ui,sans-serif;fill:#1b1f24}
.track{fill:#eef1f4}.requested{fill:#5b8def}.used{fill:#1f3b73}.current{fill:#9aa5b1}
.gpu-requested{fill:#8250df}.gpu-used{fill:#3b1f73}
.recommended{fill:#2da44e}.stale-label{fill:#cf222e;font-weight:bold}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f6f8fa;cursor:pointer;user-select:none;position:sticky;top:0}
th.text,td.text{text-align:left}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}tr.stale td{color:#cf222e;font-weight:bold}
td.notes{white-space:normal;max-width:360px;text-align:left;color:#57606a}
.changed{color:#9a6700;font-weight:bold}
"""

_JS = """
(function(){
  function key(row,i,numeric){
    var c=row.cells[i];var v=c.hasAttribute('data-sort')?c.getAttribute('data-sort'):c.textContent;
    if(!numeric)return v.toLowerCase();
    var n=parseFloat(v);return isNaN(n)?-Infinity:n;
  }
  function sortBy(table,th){
    var ths=Array.prototype.slice.call(th.parentNode.cells);var i=ths.indexOf(th);
    var numeric=th.getAttribute('data-type')==='number';
    var desc=th.getAttribute('aria-sort')==='ascending';
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a,i,numeric),y=key(b,i,numeric);
      return (x<y?-1:x>y?1:0)*(desc?-1:1);});
    rows.forEach(function(r){body.appendChild(r);});
    ths.forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',desc?'descending':'ascending');
  }
  var tables=document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables,function(t){
    Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th){
      th.addEventListener('click',function(){sortBy(t,th);});
    });
  });
  var ask=new URLSearchParams(location.search).get('sort');
  if(ask){var p=ask.split(':');var t=document.getElementById(p[0]);
    var th=t&&t.querySelector('th[data-key="'+p[1]+'"]');
    if(th){th.click();if(p[2]==='desc')th.click();}}
})();
"""


def _attrs(**values: object) -> str:
    return "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(str(value), quote=True)}"'
        for name, value in values.items()
        if value is not None
    )


def _fullness(node: NodeView) -> float:
    shares = []
    for part, whole in (
        (node.requestedCpuCores, node.allocatableCpuCores),
        (node.usedCpuCores, node.allocatableCpuCores),
        (node.requestedMemoryBytes, node.allocatableMemoryBytes),
        (node.usedMemoryBytes, node.allocatableMemoryBytes),
    ):
        if part is not None and whole:
            shares.append(part / whole)
    return max(shares, default=0.0)


def _width(value: float | None, whole: float) -> float:
    if value is None or whole <= 0:
        return 0.0
    return round(min(value, whole) / whole * _TRACK_W, 1)


def _node_bar(node: NodeView, resource: str, y: int) -> str:
    if resource == "cpu":
        alloc, req, used, free = (
            node.allocatableCpuCores,
            node.requestedCpuCores,
            node.usedCpuCores,
            node.freeCpuCores,
        )
        fmt = format_cores
        unit = " cores"
    else:
        alloc, req, used, free = (
            node.allocatableMemoryBytes,
            node.requestedMemoryBytes,
            node.usedMemoryBytes,
            node.freeMemoryBytes,
        )
        fmt = format_bytes  # type: ignore[assignment]
        unit = ""
    whole = float(alloc or 0)
    label = f"{resource}: {fmt(req)} req, {fmt(used)} used, {fmt(free)} free of {fmt(alloc)}{unit}"
    return (
        f'<g class="node-bar"{_attrs(data_node=node.name, data_resource=resource, data_allocatable=alloc, data_requested=req, data_used=used, data_free=free)}>'
        f"<title>{escape(node.name)} {escape(label)}</title>"
        f'<rect class="track" x="{_LABEL_W}" y="{y}" width="{_TRACK_W}" height="{_BAR_H}"/>'
        f'<rect class="requested" x="{_LABEL_W}" y="{y}" width="{_width(req, whole)}" height="{_BAR_H}"/>'
        f'<rect class="used" x="{_LABEL_W}" y="{y + _BAR_H // 3}" width="{_width(used, whole)}" height="{_BAR_H // 3}"/>'
        f'<text x="{_LABEL_W + _TRACK_W + 8}" y="{y + _BAR_H - 2}">{escape(label)}</text></g>'
    )


def _gpu_bar(node: NodeView, y: int) -> str:
    """GPU devices requested of allocatable, with the GPU memory in use as the inner line."""
    gpu = node.gpu
    assert gpu is not None
    alloc, req = gpu.allocatableDevices, gpu.requestedDevices
    share = (
        gpu.memoryUsedBytes / gpu.memoryTotalBytes
        if gpu.memoryUsedBytes is not None and gpu.memoryTotalBytes
        else None
    )
    used = None if share is None else round(share * alloc, 3)
    label = f"gpu: {req} of {alloc} devices requested"
    if gpu.memoryTotalBytes is not None:
        label += (
            f", GPU memory {format_bytes(gpu.memoryUsedBytes)} used of "
            f"{format_bytes(gpu.memoryTotalBytes)}"
        )
    if gpu.utilizationPercent is not None:
        label += f", {gpu.utilizationPercent:.0f}% busy"
    return (
        f'<g class="node-bar"{_attrs(data_node=node.name, data_resource="gpu", data_allocatable=alloc, data_requested=req, data_used=used, data_memory_used=gpu.memoryUsedBytes, data_memory_total=gpu.memoryTotalBytes, data_utilization=gpu.utilizationPercent)}>'
        f"<title>{escape(node.name)} {escape(label)}</title>"
        f'<rect class="track" x="{_LABEL_W}" y="{y}" width="{_TRACK_W}" height="{_BAR_H}"/>'
        f'<rect class="gpu-requested" x="{_LABEL_W}" y="{y}" width="{_width(req, float(alloc))}" height="{_BAR_H}"/>'
        f'<rect class="gpu-used" x="{_LABEL_W}" y="{y + _BAR_H // 3}" width="{_width(used, float(alloc))}" height="{_BAR_H // 3}"/>'
        f'<text x="{_LABEL_W + _TRACK_W + 8}" y="{y + _BAR_H - 2}">{escape(label)}</text></g>'
    )


def _node_chart(nodes: Sequence[NodeView]) -> str:
    chosen = sorted(nodes, key=lambda n: (-_fullness(n), n.name))[:CHART_NODES]
    rows = []
    y = 4
    for node in chosen:
        css = ' class="stale-label"' if node.stale else ""
        name = node.name + (" (stale)" if node.stale else "")
        rows.append(f'<text x="0" y="{y + _BAR_H + 4}"{css}>{escape(name)}</text>')
        rows.append(_node_bar(node, "cpu", y))
        rows.append(_node_bar(node, "memory", y + _BAR_H + 3))
        if node.gpu is not None and node.gpu.allocatableDevices:
            rows.append(_gpu_bar(node, y + 2 * (_BAR_H + 3)))
            y += _BAR_H + 3
        y += 2 * _BAR_H + 14
    note = (
        f"<p class='meta'>The {len(chosen)} fullest of {len(nodes)} nodes.</p>"
        if len(nodes) > len(chosen)
        else ""
    )
    return (
        '<p class="legend"><span class="requested" style="background:#5b8def"></span>requested'
        '<span style="background:#1f3b73"></span>used (measured)'
        '<span style="background:#eef1f4"></span>allocatable'
        + (
            '<span style="background:#8250df"></span>GPUs requested'
            '<span style="background:#3b1f73"></span>GPU memory used'
            if any(n.gpu is not None and n.gpu.allocatableDevices for n in chosen)
            else ""
        )
        + "</p>"
        f'<svg id="node-chart" role="img" aria-label="node headroom" width="{_SVG_W}" '
        f'height="{y}" viewBox="0 0 {_SVG_W} {y}">{"".join(rows)}</svg>{note}'
    )


def _pairs(
    experts: Sequence[ExpertView], metric: str
) -> list[tuple[str, float | None, float | None, str, str]]:
    out: list[tuple[str, float | None, float | None, str, str]] = []
    for e in experts:
        cur, rec = e.current, e.recommended
        label = f"{e.namespace}/{e.name}"
        if metric == "replicas":
            out.append(
                (
                    label,
                    cur.replicas if cur else None,
                    rec.replicas if rec else None,
                    str(cur.replicas) if cur else "-",
                    str(rec.replicas) if rec else "-",
                )
            )
        elif metric == "cpu":
            out.append(
                (
                    label,
                    cur.cpuRequestCores if cur else None,
                    rec.cpuRequestCores if rec else None,
                    (cur.cpuRequest or "-") if cur else "-",
                    rec.cpuRequest if rec else "-",
                )
            )
        else:
            out.append(
                (
                    label,
                    cur.memoryRequestBytes if cur else None,
                    rec.memoryRequestBytes if rec else None,
                    (cur.memoryRequest or "-") if cur else "-",
                    rec.memoryRequest if rec else "-",
                )
            )
    return out


def _expert_chart(experts: Sequence[ExpertView], metric: str, title: str) -> str:
    pairs = _pairs(experts[:CHART_EXPERTS], metric)
    scale = max((v for _, c, r, _, _ in pairs for v in (c, r) if v is not None), default=0.0)
    rows = []
    y = 4
    for label, cur, rec, cur_text, rec_text in pairs:
        rows.append(
            f'<g class="pair"{_attrs(data_expert=label, data_metric=metric, data_current=cur, data_recommended=rec)}>'
            f'<text x="0" y="{y + _BAR_H + 2}">{escape(label)}</text>'
            f'<rect class="current" x="{_LABEL_W}" y="{y}" width="{_width(cur, scale)}" height="{_BAR_H}"{_attrs(data_value=cur)}/>'
            f'<text x="{_LABEL_W + _width(cur, scale) + 6}" y="{y + _BAR_H - 2}">current {escape(cur_text)}</text>'
            f'<rect class="recommended" x="{_LABEL_W}" y="{y + _BAR_H + 2}" width="{_width(rec, scale)}" height="{_BAR_H}"{_attrs(data_value=rec)}/>'
            f'<text x="{_LABEL_W + _width(rec, scale) + 6}" y="{y + 2 * _BAR_H}">recommended {escape(rec_text)}</text></g>'
        )
        y += 2 * _BAR_H + 12
    return (
        f"<h3>{escape(title)}</h3>"
        f'<svg id="expert-chart-{metric}" role="img" aria-label="{escape(title)}" '
        f'width="{_SVG_W}" height="{y}" viewBox="0 0 {_SVG_W} {y}">{"".join(rows)}</svg>'
    )


def _cell(text: str, sort: object = None, css: str | None = None) -> str:
    return f"<td{_attrs(class_=css, data_sort=sort)}>{escape(text)}</td>"


def _head(table_id: str, columns: Iterable[tuple[str, str, bool]]) -> str:
    cells = "".join(
        f"<th{_attrs(data_key=key, data_type='number' if numeric else 'text', class_=None if numeric else 'text')}>"
        f"{escape(title)}</th>"
        for key, title, numeric in columns
    )
    return f'<table id="{table_id}" class="sortable"><thead><tr>{cells}</tr></thead><tbody>'


_GPU_COLUMNS = [
    ("gpu-alloc", "GPUs alloc", True),
    ("gpu-req", "GPUs req", True),
    ("gpu-mem-used", "GPU mem used", True),
    ("gpu-util", "GPU util", True),
]


def _gpu_cells(n: NodeView) -> str:
    gpu = n.gpu
    if gpu is None:
        return _cell("-") * len(_GPU_COLUMNS)
    used = f"{format_bytes(gpu.memoryUsedBytes)} {format_share(gpu.memoryUsedBytes, gpu.memoryTotalBytes)}"
    busy = "-" if gpu.utilizationPercent is None else f"{gpu.utilizationPercent:.0f}%"
    return (
        _cell(str(gpu.allocatableDevices), gpu.allocatableDevices)
        + _cell(str(gpu.requestedDevices), gpu.requestedDevices)
        + _cell(used.rstrip(), gpu.memoryUsedBytes)
        + _cell(busy, gpu.utilizationPercent)
    )


def _nodes_table(nodes: Sequence[NodeView]) -> str:
    gpus = any(n.gpu is not None for n in nodes)
    columns = [
        ("name", "node", False),
        ("cpu-alloc", "CPU alloc", True),
        ("cpu-req", "CPU req", True),
        ("cpu-used", "CPU used", True),
        ("cpu-free", "CPU free", True),
        ("mem-alloc", "mem alloc", True),
        ("mem-req", "mem req", True),
        ("mem-used", "mem used", True),
        ("mem-free", "mem free", True),
        ("pods", "pods", True),
        ("disk", "fullest disk", True),
        ("age", "reported", True),
        ("notes", "notes", False),
    ]
    if gpus:
        columns[-1:-1] = _GPU_COLUMNS
    head = _head("nodes", columns)
    rows = []
    for n in nodes:
        disk = n.fullestDisk
        age = format_age(n.reportAgeSeconds) + (" STALE" if n.stale else "")
        rows.append(
            f"<tr{_attrs(class_='stale' if n.stale else None, data_node=n.name)}>"
            + _cell(n.name, css="text")
            + _cell(format_cores(n.allocatableCpuCores), n.allocatableCpuCores)
            + _cell(
                f"{format_cores(n.requestedCpuCores)} {format_share(n.requestedCpuCores, n.allocatableCpuCores)}".rstrip(),
                n.requestedCpuCores,
            )
            + _cell(
                f"{format_cores(n.usedCpuCores)} {format_share(n.usedCpuCores, n.allocatableCpuCores)}".rstrip(),
                n.usedCpuCores,
            )
            + _cell(format_cores(n.freeCpuCores), n.freeCpuCores)
            + _cell(format_bytes(n.allocatableMemoryBytes), n.allocatableMemoryBytes)
            + _cell(
                f"{format_bytes(n.requestedMemoryBytes)} {format_share(n.requestedMemoryBytes, n.allocatableMemoryBytes)}".rstrip(),
                n.requestedMemoryBytes,
            )
            + _cell(
                f"{format_bytes(n.usedMemoryBytes)} {format_share(n.usedMemoryBytes, n.allocatableMemoryBytes)}".rstrip(),
                n.usedMemoryBytes,
            )
            + _cell(format_bytes(n.freeMemoryBytes), n.freeMemoryBytes)
            + _cell(str(n.pods), n.pods)
            + _cell(
                "-" if disk is None else f"{disk.usedPercent:.0f}% {disk.path}",
                None if disk is None else disk.usedPercent,
            )
            + _cell(age, n.reportAgeSeconds)
            + (_gpu_cells(n) if gpus else "")
            + _cell("; ".join(n.notes), css="notes")
            + "</tr>"
        )
    return head + "".join(rows) + "</tbody></table>"


def _change_cell(cur: str, rec: str, sort: object) -> str:
    changed = rec not in ("-", cur)
    text = (
        f"{escape(cur)} → <span class='changed'>{escape(rec)}</span>"
        if changed
        else escape(cur if rec == "-" else f"{cur} → {rec}")
    )
    return f"<td{_attrs(class_='text', data_sort=sort)}>{text}</td>"


def _experts_table(experts: Sequence[ExpertView]) -> str:
    gpus = any(e.gpu is not None for e in experts)
    columns = [
        ("name", "expert", False),
        ("replicas", "replicas", True),
        ("cpu", "CPU request", True),
        ("memory", "memory request", True),
        ("fits", "more fit", True),
        ("where", "where", False),
        ("why", "why", False),
    ]
    if gpus:
        columns.insert(-1, ("gpu", "GPU advice", False))
    head = _head("experts", columns)
    rows = []
    for e in experts:
        cur, rec, fit = e.current, e.recommended, e.fit
        why = (
            " | ".join((rec.replicasReason, rec.cpuReason, rec.memoryReason))
            if rec
            else (e.message or "")
        )
        rows.append(
            f"<tr{_attrs(data_expert=f'{e.namespace}/{e.name}')}>"
            + _cell(f"{e.namespace}/{e.name}", css="text")
            + _change_cell(
                str(cur.replicas) if cur else "-",
                str(rec.replicas) if rec else "-",
                rec.replicas if rec else None,
            )
            + _change_cell(
                (cur.cpuRequest or "-") if cur else "-",
                rec.cpuRequest if rec else "-",
                rec.cpuRequestCores if rec else None,
            )
            + _change_cell(
                (cur.memoryRequest or "-") if cur else "-",
                rec.memoryRequest if rec else "-",
                rec.memoryRequestBytes if rec else None,
            )
            + _cell(
                "-" if fit is None else str(fit.additionalReplicas),
                None if fit is None else fit.additionalReplicas,
            )
            + _cell(format_fit_nodes(fit, most=5), css="text")
            + (_gpu_advice_cell(e) if gpus else "")
            + _cell(why, css="notes")
            + "</tr>"
        )
    return head + "".join(rows) + "</tbody></table>"


def _gpu_advice_cell(e: ExpertView) -> str:
    advice = e.gpu
    if advice is None:
        return _cell("-", css="text")
    why = " | ".join(
        r
        for r in (
            advice.memoryReason,
            advice.replicasReason,
            advice.sharingReason,
            advice.migReason,
            advice.fitReason,
        )
        if r
    )
    return (
        f"<td{_attrs(class_='text', data_sort=advice.memoryNeededBytes, title=why)}>"
        f"{escape(format_gpu_advice(advice))}</td>"
    )


def _card(title: str, value: str, detail: str = "") -> str:
    return f'<div class="card">{escape(title)}<b>{escape(value)}</b>{escape(detail)}</div>'


def _gpu_card(report: ClusterReport) -> str:
    gpus = [n.gpu for n in report.nodes if n.gpu is not None]
    if not gpus:
        return ""
    requested = sum(g.requestedDevices for g in gpus)
    allocatable = sum(g.allocatableDevices for g in gpus)
    return _card("GPUs requested", f"{requested} / {allocatable}", f" on {len(gpus)} nodes")


def render_html(report: ClusterReport, *, source: str = "") -> str:
    """The whole page as one string (UTF-8 when written)."""
    s = report.summary
    read_at = report.readAt.isoformat(timespec="seconds")
    scope = []
    if report.nodeSelector:
        scope.append(f"nodes matching {report.nodeSelector}")
    if report.namespace:
        scope.append(f"experts in namespace {report.namespace}")
    cards = "".join(
        (
            _card("nodes", str(s.nodes), f" {s.staleNodes} stale"),
            _card(
                "CPU requested / used",
                f"{format_cores(s.requestedCpuCores)} / {format_cores(s.usedCpuCores)}",
                f" of {format_cores(s.allocatableCpuCores)} cores",
            ),
            _card(
                "memory requested / used",
                f"{format_bytes(s.requestedMemoryBytes)} / {format_bytes(s.usedMemoryBytes)}",
                f" of {format_bytes(s.allocatableMemoryBytes)}",
            ),
            _card("experts", str(s.experts), f" {s.expertsWithRecommendation} with advice"),
            _card("more replicas fit", str(s.additionalReplicas)),
            _gpu_card(report),
        )
    )
    experts = report.experts
    expert_charts = (
        _expert_chart(experts, "replicas", "Replicas: current vs recommended")
        + _expert_chart(experts, "cpu", "CPU request per replica: current vs recommended")
        + _expert_chart(experts, "memory", "Memory request per replica: current vs recommended")
        if experts
        else "<p>No CapacityRecommendations.</p>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Headroom report {escape(read_at)}</title><style>{_CSS}</style></head><body>"
        "<h1>Headroom report</h1>"
        f"<p class='meta'>Data read at <time id='read-at' datetime='{escape(read_at)}'>"
        f"{escape(read_at)}</time>"
        + (f" from {escape(source)}" if source else "")
        + (f" ({escape(', '.join(scope))})" if scope else "")
        + f".</p><div class='summary'>{cards}</div>"
        "<h2>Node headroom</h2>"
        + (_node_chart(report.nodes) if report.nodes else "<p>No nodes.</p>")
        + "<h2>Experts: current vs recommended</h2>"
        + expert_charts
        + "<h2>Nodes</h2>"
        + _nodes_table(report.nodes)
        + "<h2>Experts</h2>"
        + _experts_table(experts)
        + f"<script>{_JS}</script></body></html>\n"
    )
