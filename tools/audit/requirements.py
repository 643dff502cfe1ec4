"""The requirement IDs and their text, read from ``docs/requirements.md``."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["FIGURES", "ID_PATTERN", "read_requirements"]

ID_PATTERN = re.compile(r"^[A-Z]{2}-\d{3}$")

# Performance requirements are measured by the benchmarks, not asserted by a timed test
# (a shared 2-core CI machine cannot time a millisecond honestly). Their tests check the
# mechanisms; the matrix points at the scripts whose figures docs/performance.md reports.
FIGURES: dict[str, tuple[str, ...]] = {
    "PR-001": ("benchmarks/agent_overhead.py",),
    "PR-002": ("benchmarks/agent_overhead.py",),
    "PR-003": ("benchmarks/agent_overhead.py",),
}

_ROW = re.compile(r"^\|\s*([A-Z]{2}-\d{3})\s*\|\s*(.+?)\s*\|\s*$")


def read_requirements(path: Path) -> dict[str, str]:
    """ID → requirement text, in the document's order; a repeated ID is an error."""
    requirements: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        identifier, text = match.groups()
        if identifier in requirements:
            raise ValueError(f"{path}: {identifier} is listed twice")
        requirements[identifier] = text
    if not requirements:
        raise ValueError(f"{path}: no requirement table found")
    return requirements
