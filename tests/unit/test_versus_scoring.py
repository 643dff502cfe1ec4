"""How benchmarks/versus_vpa.py and tests/node/test_versus.py read both tools and score
them against the truth (tests/node/versus.py), on objects as each tool writes them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from benchmarks._proc import read_cpu_seconds, read_rss_bytes

from tests.node.burner import BURNER
from tests.node.versus import (
    WORKLOADS,
    MiB,
    as_set,
    error,
    headroom_advice,
    truth,
    vpa_advice,
    within,
)

#: status.recommendation as VPA's recommender 1.8.1 writes it (quantities as it prints them).
VPA = {
    "status": {
        "recommendation": {
            "containerRecommendations": [
                {
                    "containerName": "app",
                    "lowerBound": {"cpu": "25m", "memory": "262144k"},
                    "target": {"cpu": "182m", "memory": "297164212"},
                    "uncappedTarget": {"cpu": "182m", "memory": "297164212"},
                    "upperBound": {"cpu": "1", "memory": "2Gi"},
                }
            ]
        }
    }
}

CAPREC = {
    "status": {
        "recommended": {"bounds": {"factor": 2.0}},
        "containers": [
            {
                "name": "app",
                "memoryPeakBytes": 270 * MiB,
                "recommended": {
                    "cpuRequestCores": 0.175,
                    "memoryRequestBytes": 310 * MiB,
                    "memoryLimitBytes": 310 * MiB,
                },
            }
        ],
    }
}


def test_vpa_quantities_are_read_as_cores_and_bytes() -> None:
    advice = vpa_advice(VPA, "app")
    assert advice is not None
    assert advice.cpu == pytest.approx(0.182)
    assert advice.mem == 297164212 and advice.mem_limit == 297164212
    assert advice.cpu_lo == pytest.approx(0.025) and advice.cpu_hi == 1.0
    assert advice.mem_lo == 262144000 and advice.mem_hi == 2 * 1024**3
    assert vpa_advice(VPA, "sidecar") is None
    assert vpa_advice({"status": {}}, "app") is None


def test_headroom_bounds_follow_its_factor_and_never_go_below_the_peak() -> None:
    advice = headroom_advice(CAPREC, "app")
    assert advice is not None
    assert (advice.cpu_lo, advice.cpu_hi) == pytest.approx((0.0875, 0.35))
    assert advice.mem_lo == 270 * MiB  # 310 ÷ 2 would be under the peak already seen
    assert advice.mem_hi == 620 * MiB
    assert headroom_advice(None, "app") is None


def test_the_right_request_is_the_need_plus_the_margin_and_the_hpa_splits_it() -> None:
    by_name = {w.name: w for w in WORKLOADS}
    steady, hpa, oom = by_name["steady"], by_name["hpa"], by_name["oomkill"]
    t = truth(steady, steady.containers[0], 1, 10 * MiB)
    assert t.cpu_right == pytest.approx(0.15 * 1.15)
    assert t.mem_need == 266 * MiB and t.mem_right == int(266 * MiB * 1.15)
    assert truth(hpa, hpa.containers[0], 3, 0).cpu_need == pytest.approx(0.10)
    assert hpa.truth_replicas() == 3
    assert truth(oom, oom.containers[0], 1, 0).cpu_need is None  # killed before it works
    assert error(0.115, 0.1) == pytest.approx(0.15) and within(0.115, 0.1)
    assert not within(0.12, 0.1) and not within(None, 0.1) and error(1.0, None) is None


def test_as_set_says_which_limit_would_kill_and_which_request_is_short() -> None:
    by_name = {w.name: w for w in WORKLOADS}
    t = truth(by_name["steady"], by_name["steady"].containers[0], 1, 10 * MiB)
    vpa = vpa_advice(VPA, "app")
    assert as_set(vpa, t) == "ok"  # 283 MiB ≥ 266 MiB, 182m ≥ 150m
    low = vpa_advice(
        {
            "status": {
                "recommendation": {
                    "containerRecommendations": [
                        {"containerName": "app", "target": {"cpu": "100m", "memory": "200Mi"}}
                    ]
                }
            }
        },
        "app",
    )
    assert as_set(low, t) == "OOM, CPU short"
    assert as_set(None, t) == "-"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_burner_burns_its_share_and_holds_its_memory() -> None:
    """The load the truth rests on: 0.15 cores and 64 MiB, measured from /proc."""
    env = {**os.environ, "CPU_SHARE": "0.15", "MEMORY_MIB": "64"}
    proc = subprocess.Popen([sys.executable, "-c", BURNER], env=env)
    try:
        time.sleep(1.0)

        c0, t0 = read_cpu_seconds(proc.pid)[0], time.monotonic()
        time.sleep(4.0)
        share = (read_cpu_seconds(proc.pid)[0] - c0) / (time.monotonic() - t0)
        rss = read_rss_bytes(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    # On CPU time: it catches up when preempted (the machine may be busy).
    assert 0.10 < share < 0.20, share
    assert 64 * MiB <= rss <= 64 * MiB + 40 * MiB, rss
