"""Which tests name which requirement IDs, found in the test sources without running them.

Static on purpose: CI must fail when an ID has no test even if that test would be skipped
or deselected in the run at hand. Every ``pytest.mark.requirement(...)`` call counts,
whether on a function, a class, a ``pytestmark`` or a ``pytest.param(marks=...)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MarkedTest", "find_marked_tests"]


@dataclass(frozen=True)
class MarkedTest:
    """A test function (or class, or module) and the IDs its marker names."""

    node: str  # "tests/unit/test_x.py::test_y", "...::TestZ::test_y" or just the path
    ids: tuple[str, ...]
    line: int


def _is_requirement_mark(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "requirement"
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "mark"
    )


def _ids(call: ast.Call, where: str) -> tuple[str, ...]:
    ids = []
    for argument in call.args:
        if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
            raise ValueError(f"{where}: requirement IDs must be string literals")
        ids.append(argument.value)
    if not ids or call.keywords:
        raise ValueError(f"{where}: write requirement('FR-001', ...) with IDs only")
    return tuple(ids)


def _walk(tree: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
    """Every node with the test node ID of the function or class that encloses it."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}::{child.name}"
            yield name, child
            for decorator in child.decorator_list:
                yield from ((name, n) for n in ast.walk(decorator))
            yield from _walk(ast.Module(body=child.body, type_ignores=[]), name)
        else:
            yield from ((prefix, n) for n in ast.walk(child))


def find_marked_tests(root: Path, tests_dir: str = "tests") -> list[MarkedTest]:
    """Every requirement marker under ``tests_dir``, with the test it belongs to."""
    found: list[MarkedTest] = []
    for file in sorted((root / tests_dir).rglob("*.py")):
        relative = file.relative_to(root).as_posix()
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=relative)
        for node_id, node in _walk(tree, relative):
            if isinstance(node, ast.Call) and _is_requirement_mark(node):
                where = f"{relative}:{node.lineno}"
                found.append(MarkedTest(node_id, _ids(node, where), node.lineno))
    return found
