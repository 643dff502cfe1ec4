"""benchmarks.gpu_check is for a real NVIDIA machine: without one it says so and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from headroom.collection.gpu.library import nvml_library

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    nvml_library() is not None, reason="this machine has NVML: run the check itself"
)
def test_without_a_gpu_the_check_fails_clearly_and_checks_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "needs an NVIDIA GPU and driver; nothing was checked" in result.stderr
    assert result.stdout == ""
