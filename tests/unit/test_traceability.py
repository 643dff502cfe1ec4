"""The README's traceability matrix names tests that exist (it cannot rot silently)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def matrix_rows() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Traceability", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| requirement") and "---" not in line:
            requirement, tests = line.strip("|").split("|", 1)
            rows.append((requirement.strip(), re.findall(r"`([^`]+)`", tests)))
    return rows


def test_every_requirement_has_a_test_or_benchmark() -> None:
    rows = matrix_rows()
    ids = " ".join(requirement for requirement, _ in rows)
    for expected in [
        "FR-001",
        "FR-002",
        "FR-003",
        "FR-004",
        "FR-005",
        "PR-001",
        "PR-002",
        "PR-003",
        "PR-004",
        "HR-001",
        "HR-002",
        "HR-003",
        "SR-001",
        "AG",
        "CT",
        "PK",
        "SC",
    ]:
        assert expected in ids, f"{expected} is missing from the traceability matrix"
    assert all(tests for _, tests in rows)


def test_every_named_test_exists() -> None:
    for requirement, references in matrix_rows():
        for reference in references:
            path, _, name = reference.partition("::")
            file = ROOT / path.split(" ")[0]
            assert file.exists(), f"{requirement}: {file} does not exist"
            if name:
                tree = ast.parse(file.read_text())
                defined = {
                    n.name
                    for n in ast.walk(tree)
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                }
                assert name in defined, f"{requirement}: {path}::{name} does not exist"
