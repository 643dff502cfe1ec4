"""The project's own checks run as part of the test suite: ruff, mypy --strict, layers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "operator", "tests", "benchmarks", "tools"),
        ("ruff", "format", "--check", "operator", "tests", "benchmarks", "tools"),
        ("mypy", "--strict", "operator/headroom"),
        ("mypy", "--strict", "tools"),
        ("mypy", "--strict", "tests/node", "benchmarks"),
        ("lint-imports",),
    ],
    ids=[
        "ruff",
        "ruff-format",
        "mypy-strict",
        "mypy-strict-tools",
        "mypy-strict-node-tier-benchmarks",
        "import-layers",
    ],
)
def test_static_check_passes(command: tuple[str, ...]) -> None:
    result = run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
