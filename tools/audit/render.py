"""Markdown for the auditor: the traceability matrix and the SOUP list."""

from __future__ import annotations

from collections import Counter

from tools.audit.matrix import Matrix
from tools.audit.soup import SoupRow

__all__ = ["soup_markdown", "traceability_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def traceability_markdown(matrix: Matrix, results_path: str) -> str:
    run = matrix.run
    outcomes = Counter(t["outcome"] for t in run["tests"])
    results = Counter(row.result for row in matrix.rows)
    scope = "full run" if run["full_run"] else f"partial run ({' '.join(run['args'])})"
    lines = [
        "# Traceability matrix",
        "",
        f"From `{results_path}`: {scope}, {run['started']} – {run['finished']},",
        f"Python {run['python']}, pytest exit status {run['exitstatus']}; "
        + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        + f" of {len(run['tests'])} tests.",
        "",
        f"**{len(matrix.rows)} requirements: "
        + ", ".join(f"{n} {r}" for r, n in sorted(results.items()))
        + ".**",
        "",
        "| ID | requirement | result | tests | figures |",
        "|---|---|---|---|---|",
    ]
    for row in matrix.rows:
        counts = Counter(t.outcome for t in row.tests)
        tests = f"{len(row.tests)} (" + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        tests = tests + ")" if row.tests else "0"
        figures = ", ".join(f"[`{f}`](../../{f})" for f in row.figures)
        lines.append(f"| {row.id} | {_cell(row.text)} | {row.result} | {tests} | {figures} |")
    if matrix.unknown_ids:
        lines += ["", "## Unknown IDs named by tests", ""]
        lines += [f"- {i}: {', '.join(t)}" for i, t in sorted(matrix.unknown_ids.items())]
    lines += ["", "## Tests per requirement"]
    for row in matrix.rows:
        lines += ["", f"### {row.id} — {row.text}", ""]
        if row.figures:
            lines.append(
                f"- figures: {', '.join(f'`{f}`' for f in row.figures)} (docs/performance.md)"
            )
        lines += [f"- {t.describe()}: `{t.test}`" for t in row.tests] or ["- **no test**"]
    return "\n".join(lines) + "\n"


def _soup_table(rows: list[SoupRow]) -> list[str]:
    lines = [
        "| package | version | licence | role | purpose | locked hashes | only when |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.name, r.version, r.licence, r.role, r.purpose, r.hashes, r.markers]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def soup_markdown(runtime: list[SoupRow], dev: list[SoupRow], requires_python: str) -> str:
    lines = [
        "# SOUP: software of unknown provenance",
        "",
        f"Every version is pinned by `uv.lock` (Python {requires_python}) and every artifact",
        "carries a sha256 hash; `uv sync --locked` refuses anything else. Licences are as the",
        "installed distributions declare them. Roles: `agent`, `controller`, `both`, `cli`",
        "(`headroom report`, `agent --once`), `dev` (never in the image).",
        "",
        f"## Runtime dependencies ({len(runtime)}) — in the image",
        "",
        *_soup_table(runtime),
        "",
        f"## Development and test tools ({len(dev)}) — not in the image",
        "",
        *_soup_table(dev),
    ]
    return "\n".join(lines) + "\n"
