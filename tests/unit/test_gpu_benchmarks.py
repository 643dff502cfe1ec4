"""The GPU benchmarks run and print their figures (small runs; the figures are in docs/gpu.md)."""

from __future__ import annotations

import pytest
from benchmarks import gpu_recompute, gpu_rss


@pytest.mark.requirement("GP-003", "PR-002")
def test_gpu_rss_prints_each_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_rss.main(["--cycles", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for mode in gpu_rss.MODES:
        assert mode in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["no-gpu"][-2:] == ["no", "no"]  # no pynvml, no GPU reader without NVML
    assert rows["recorded"][4] == "1"  # one GPU read from the recording


def test_gpu_recompute_advises_every_gpu_expert(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_recompute.main(["--nodes", "20", "--experts", "5", "--batches", "1"]) == 0
    assert "20 GPU nodes: batch" in capsys.readouterr().out
