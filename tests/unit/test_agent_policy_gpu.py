"""When GPU figures make the agent write before the heartbeat (AG-001 with GP-001)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from headroom.agent.policy import moved_beyond
from headroom.collection.gpu.figures import GpuFigures
from tests.unit.test_agent_policy import status


def with_gpu(memory_percent: float, util: float = 50.0, error: str | None = None):  # type: ignore[no-untyped-def]
    return replace(
        status(),
        gpus=[
            GpuFigures(
                index=0, memoryUsedPercent=memory_percent, utilizationPercent=util, error=error
            )
        ],
    )


@pytest.mark.requirement("AG-001", "GP-001")
def test_gpu_memory_moves_write_early_gpu_utilisation_waits_for_the_heartbeat() -> None:
    assert "gpu:0 moved 20.0% -> 45.0%" in (moved_beyond(with_gpu(20), with_gpu(45), 5.0) or "")
    assert moved_beyond(with_gpu(20, util=10), with_gpu(22, util=95), 5.0) is None
    lost = moved_beyond(with_gpu(20), with_gpu(20, error="NVML_ERROR_GPU_IS_LOST"), 5.0)
    assert lost == "GPU error changed"
    assert moved_beyond(status(), with_gpu(20), 5.0) == "gpu:0 appeared or disappeared"
    assert moved_beyond(status(), status(), 5.0) is None  # no GPUs: as before
