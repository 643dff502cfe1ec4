"""GPU advice (GP-004, GP-005): each figure checked against a value worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.recommend.gpu import (
    GpuFitArrays,
    GpuHistory,
    GpuNodeRoom,
    GpuPolicy,
    NodeGpus,
    fit_gpu_replicas,
    gpu_advice,
    gpu_policy,
    gpu_requests,
    node_gpus,
    pod_gpu_observations,
    recommend_gpu_replicas,
    record_total_gpu,
    replicas_per_shared_gpu,
    smallest_mig_profile,
)

GIB = 1 << 30
MIB = 1 << 20
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
A100_MIG = {
    "1g.10gb": 9728 * MIB,
    "2g.20gb": 19968 * MIB,
    "3g.40gb": 40192 * MIB,
    "7g.80gb": 81408 * MIB,
}


def test_gpu_requests_as_the_scheduler_counts_them() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}}},  # limit implies request
            {"resources": {"requests": {"cpu": "100m"}}},  # a sidecar
        ],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": 2}}}],
    }
    assert gpu_requests(spec) == {"nvidia.com/gpu": 2}  # max(1 summed, 2 of one init)
    mig = {"containers": [{"resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]}
    assert gpu_requests(mig) == {"nvidia.com/mig-1g.10gb": 1}
    assert gpu_requests({"containers": [{"resources": {"limits": {"cpu": "1"}}}]}) == {}


def test_node_gpus_reads_allocatable_and_the_feature_discovery_labels() -> None:
    gpus = node_gpus(
        {
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/gpu.memory": "81559",
            "nvidia.com/gpu.count": "1",
            "nvidia.com/gpu.replicas": "4",
            "nvidia.com/gpu.sharing-strategy": "time-slicing",
            "nvidia.com/mig-1g.10gb.memory": "9728",
        },
        {"cpu": "32", "nvidia.com/gpu": "4"},
    )
    assert gpus is not None
    assert (gpus.product, gpus.memory_bytes, gpus.count) == (
        "NVIDIA-H100-80GB-HBM3",
        81559 * MIB,
        1,
    )
    assert (gpus.replicas, gpus.sharing, gpus.shared) == (4, "time-slicing", True)
    assert gpus.allocatable == {"nvidia.com/gpu": 4}
    assert gpus.mig_memory == {"1g.10gb": 9728 * MIB}
    assert node_gpus({}, {"cpu": "32", "nvidia.com/gpu": "0"}) is None
    assert node_gpus(None, {"cpu": "32"}) is None


def test_gpu_policy_from_annotations_with_problems_named() -> None:
    policy, problems = gpu_policy(
        {"headroom.dev/gpu-target-utilization": "60%", "headroom.dev/gpu-memory-margin": "lots"}
    )
    assert policy == GpuPolicy(target_utilization_percent=60.0, memory_margin_percent=15.0)
    assert problems == [
        "headroom.dev/gpu-memory-margin='lots' is not a percentage in [0, 1000]; "
        "using the default 15"
    ]
    assert (
        gpu_policy({"headroom.dev/gpu-target-utilization": "0"})[0].target_utilization_percent == 70
    )


@pytest.mark.requirement("GP-004")
def test_pod_gpu_use_is_its_sm_share_or_a_gpu_it_has_alone() -> None:
    status = {
        "gpus": [
            {"index": 0, "uuid": "GPU-shared", "utilizationPercent": 90.0},
            {"index": 1, "uuid": "GPU-alone", "utilizationPercent": 64.0},
        ],
        "pods": [
            {
                "uid": "a",
                "gpu": {
                    "memoryBytes": 6 * GIB,
                    "devices": [
                        {
                            "uuid": "GPU-shared",
                            "gpuIndex": 0,
                            "memoryBytes": 6 * GIB,
                            "utilizationPercent": 35.0,
                        }
                    ],
                },
            },
            {
                "uid": "b",
                "gpu": {
                    "memoryBytes": 4 * GIB,
                    "devices": [{"uuid": "GPU-shared", "gpuIndex": 0, "memoryBytes": 4 * GIB}],
                },
            },
            {
                "uid": "c",
                "gpu": {
                    "memoryBytes": 20 * GIB,
                    "devices": [{"uuid": "GPU-alone", "gpuIndex": 1, "memoryBytes": 20 * GIB}],
                },
            },
            {
                "uid": "d",
                "gpu": {
                    "memoryBytes": 5 * GIB,
                    "devices": [
                        {
                            "uuid": "MIG-x",
                            "gpuIndex": 2,
                            "migProfile": "1g.10gb",
                            "memoryBytes": 5 * GIB,
                        }
                    ],
                },
            },
            {"uid": "e"},
        ],
    }
    assert pod_gpu_observations(status) == {
        "a": (6 * GIB, 0.35),  # its own SM share
        "b": (4 * GIB, None),  # shares GPU-shared without a share: unknown, not the GPU's 90 %
        "c": (20 * GIB, 0.64),  # GPU-alone is its own: the GPU's utilisation
        "d": (5 * GIB, None),  # NVML has no utilisation in MIG mode
    }


@pytest.mark.requirement("GP-004")
@pytest.mark.parametrize(
    ("total", "bounds", "replicas", "words"),
    [
        (2.1, (1, 10), 3, "2.10 GPU / (1 GPU × 70% target) = 3.00 → 3"),
        (2.2, (1, 3), 3, "= 3.14 → 4, capped at maxReplicas 3"),
        (0.2, (2, 10), 2, "= 0.29 → 1, raised to minReplicas 2"),
    ],
)
def test_replicas_from_gpu_use_against_the_target(
    total: float, bounds: tuple[int, int], replicas: int, words: str
) -> None:
    got, reason = recommend_gpu_replicas(1, total, 70.0, 3, bounds)
    assert got == replicas and words in reason


def test_no_gpu_use_keeps_the_replicas_and_says_why() -> None:
    got, reason = recommend_gpu_replicas(1, None, 70.0, 3, (1, 10))
    assert got is None and "keeping the current 3 replicas" in reason


DAY = 86_400.0
WEEK = 7 * DAY


def a_steady_day(last_total: float) -> tuple[GpuHistory, datetime]:
    """A day and a minute of per-minute reports from 2 replicas using 1.3 GPU in all; the very
    last minute at ``last_total`` (a burst, a lull, or the same)."""
    start = NOW - timedelta(days=1)
    history = GpuHistory.new(DAY, start)
    for minute in range(1441):
        at = start + timedelta(minutes=minute)
        total = last_total if minute == 1440 else 1.3
        for _ in range(2):
            history.add_observation(20 * GIB, total / 2, at)
        assert record_total_gpu(history, total, at, 60)
    history.prune(NOW, WEEK)
    return history, NOW


def _replicas_advice(history: GpuHistory, total_gpus_used: float | None) -> tuple[int | None, str]:
    advice = gpu_advice(
        requests={"nvidia.com/gpu": 1},
        history=history,
        policy=GpuPolicy(),
        now=NOW,
        window_seconds=WEEK,
        percentile=95.0,
        load_percentile=95.0,
        current_replicas=3,
        replica_bounds=(1, 100),
        total_gpus_used=total_gpus_used,
        nodes=[],
        cpu_request_cores=4.0,
        memory_request_bytes=32 * GIB,
    )
    return advice.replicas, advice.replicasReason


@pytest.mark.requirement("GP-004", "CT-001")
@pytest.mark.parametrize("last_total", [0.3, 1.3, 4.0])
def test_gpu_replicas_follow_the_days_load_not_its_last_minute(last_total: float) -> None:
    history, _ = a_steady_day(last_total)
    replicas, reason = _replicas_advice(history, last_total)
    # 1.3 GPU lies in bucket 41 of 0.2·(1.05ⁱ − 1); p95 is its upper bound 0.2·(1.05⁴² − 1)
    # = 1.35 GPU / 0.7 = 1.93 → 2, whatever the last minute was; the rule of the moment would
    # have said ⌈0.3 / 0.7⌉ = 1, 2 or ⌈4.0 / 0.7⌉ = 6, and the window's peak 6 after the burst.
    assert replicas == 2
    assert reason == (
        "p95 of 1,441 total-GPU samples over 1d = 1.35 GPU / (1 GPU × 70% target) = 1.93 → 2"
        f"; all replicas use {last_total:.2f} GPU now"
    )


@pytest.mark.requirement("GP-004", "CT-001")
def test_before_the_first_total_gpu_sample_the_moment_stands_in_and_says_so() -> None:
    history = _history()  # per-pod samples only, as a history written before totals were kept
    replicas, reason = _replicas_advice(history, 0.96)
    assert replicas == 2  # 0.96 / 0.7 = 1.37 → 2
    assert reason == "GPU use of all replicas now 0.96 GPU / (1 GPU × 70% target) = 1.37 → 2"


def test_the_total_gpu_use_is_sampled_at_a_fixed_cadence_and_kept_to_the_window() -> None:
    history = GpuHistory.new(DAY, NOW)
    assert record_total_gpu(history, 1.0, NOW, 60)
    assert not record_total_gpu(history, 9.0, NOW + timedelta(seconds=59), 60)  # not due
    assert not record_total_gpu(history, None, NOW + timedelta(seconds=90), 60)  # unknown
    assert not record_total_gpu(history, math.nan, NOW + timedelta(seconds=90), 60)
    assert record_total_gpu(history, 2.0, NOW + timedelta(seconds=60), 60)
    assert history.total_samples == 2 and history.last_total_at == NOW + timedelta(seconds=60)
    later = NOW + timedelta(days=8)
    history.prune(later, WEEK)
    assert history.total is not None and history.total.is_empty()
    assert history.window_load(later, WEEK, 95).at_percentile is None


@pytest.mark.requirement("GP-004")
def test_replicas_per_shared_gpu_is_memory_over_need() -> None:
    # 81559 MiB / 25600 MiB = 3.19 → 3
    count, reason = replicas_per_shared_gpu(25 * GIB, 81559 * MIB, "NVIDIA-H100-80GB-HBM3")
    assert count == 3
    assert reason == (
        "one NVIDIA-H100-80GB-HBM3 has 79.7Gi: 79.7Gi / 25Gi per replica = 3 replicas if it were shared"
    )
    assert replicas_per_shared_gpu(25 * GIB, None, None)[0] is None


@pytest.mark.requirement("GP-004")
def test_smallest_mig_profile_that_holds_the_need() -> None:
    profile, reason = smallest_mig_profile(12 * GIB, A100_MIG, gpus_used=0.5)
    assert profile == "2g.20gb"  # 1g.10gb has 9.5Gi < 12Gi; 2g.20gb has 19.5Gi
    assert reason.startswith(
        "12Gi per replica fits 2g.20gb (19.5Gi), the smallest of 1g.10gb (9.5Gi)"
    )
    assert "2/7 of a GPU's compute and a replica uses 0.50 GPU" in reason
    assert smallest_mig_profile(9 * GIB, A100_MIG, gpus_used=0.1) == (
        "1g.10gb",
        "9Gi per replica fits 1g.10gb (9.5Gi), the smallest of 1g.10gb (9.5Gi), "
        "2g.20gb (19.5Gi), 3g.40gb (39.3Gi), 7g.80gb (79.5Gi) that holds it",
    )
    assert smallest_mig_profile(100 * GIB, A100_MIG)[0] is None
    assert smallest_mig_profile(1 * GIB, {}) == (None, "no node offers MIG devices")


def _room(
    name: str,
    gpus: NodeGpus,
    requested: int,
    cpu_m: int,
    memory_gib: int,
    free_gpu_memory: tuple[int, ...] = (),
) -> GpuNodeRoom:
    return GpuNodeRoom(
        name=name,
        gpus=gpus,
        requested={"nvidia.com/gpu": requested},
        free_cpu_millicores=cpu_m,
        free_memory_kib=memory_gib * GIB // 1024,
        free_gpu_memory=free_gpu_memory,
    )


@pytest.mark.requirement("GP-005")
def test_fit_counts_free_gpus_cpu_memory_and_shared_gpu_memory() -> None:
    whole = NodeGpus(allocatable={"nvidia.com/gpu": 8})
    sliced = NodeGpus(
        allocatable={"nvidia.com/gpu": 4}, memory_bytes=80 * GIB, replicas=4, sharing="time-slicing"
    )
    mps = NodeGpus(
        allocatable={"nvidia.com/gpu": 2}, memory_bytes=23034 * MIB, replicas=2, sharing="mps"
    )
    nodes = [
        _room("a", whole, 6, 16_000, 64),  # 2 GPUs free; CPU 16/4 = 4, memory 64/16 = 4 → 2 (gpu)
        _room("b", sliced, 1, 16_000, 64, (50 * GIB,)),  # 3 slices free, 50Gi / 25Gi = 2 → 2
        _room("c", mps, 0, 16_000, 64),  # a slice has 11.2Gi < 25Gi → 0
        _room("d", whole, 0, 2_000, 64),  # CPU 2/4 → 0
        _room(
            "e", NodeGpus(allocatable={"nvidia.com/mig-1g.10gb": 7}), 0, 64_000, 256
        ),  # other resource
    ]
    total, fits, reason = fit_gpu_replicas("nvidia.com/gpu", 1, 25 * GIB, 4.0, 16 * GIB, nodes)
    assert total == 4
    assert [(f.node, f.replicas, f.freeGpus, f.limitedBy) for f in fits] == [
        ("a", 2, 2, "gpu"),
        ("b", 2, 3, "gpu-memory"),
    ]
    assert "c: an MPS slice has 11.3Gi, a replica needs 25Gi" in reason
    assert reason.startswith(
        "4 more replicas on 2 nodes: per node the least of free nvidia.com/gpu ÷ 1"
    )


@pytest.mark.requirement("GP-005")
def test_fit_of_a_mig_expert_counts_its_profile_only() -> None:
    node = GpuNodeRoom(
        name="m",
        gpus=NodeGpus(allocatable={"nvidia.com/mig-1g.10gb": 7, "nvidia.com/mig-3g.40gb": 1}),
        requested={"nvidia.com/mig-1g.10gb": 4},
        free_cpu_millicores=30_000,
        free_memory_kib=200 * GIB // 1024,
    )
    total, fits, _ = fit_gpu_replicas("nvidia.com/mig-1g.10gb", 1, 5 * GIB, 2.0, 8 * GIB, [node])
    assert total == 3 and fits[0].limitedBy == "gpu"  # 7 − 4 = 3; CPU 15, memory 25


def _history() -> GpuHistory:
    history = GpuHistory.new(24 * 3600, NOW - timedelta(hours=2))
    at = NOW - timedelta(hours=1)
    for gib, use in ((18, 0.30), (20, 0.32), (22, 0.34)):
        history.add_observation(gib * GIB, use, at)
    return history


@pytest.mark.requirement("GP-004", "GP-005")
def test_gpu_advice_end_to_end() -> None:
    history = _history()
    nodes = [
        GpuNodeRoom(
            name="gpu-1",
            gpus=NodeGpus(
                allocatable={"nvidia.com/gpu": 8},
                product="NVIDIA-A100-SXM4-80GB",
                memory_bytes=81920 * MIB,
                mig_memory=A100_MIG,
            ),
            requested={"nvidia.com/gpu": 3},
            free_cpu_millicores=40_000,
            free_memory_kib=500 * GIB // 1024,
        )
    ]
    advice = gpu_advice(
        requests={"nvidia.com/gpu": 1},
        history=history,
        policy=GpuPolicy(),
        now=NOW,
        window_seconds=7 * 86400,
        percentile=95.0,
        current_replicas=3,
        replica_bounds=(1, 100),
        total_gpus_used=0.96,
        nodes=nodes,
        cpu_request_cores=4.0,
        memory_request_bytes=32 * GIB,
    )
    # 22Gi = 22528Mi lies in bucket 144 (20Mi·(1.05ⁱ − 1)); its upper bound is the peak
    peak = 20 * MIB * (1.05**145 - 1)
    assert advice.memoryPeakBytes == pytest.approx(peak, rel=1e-9)
    assert advice.memoryNeededBytes == math.ceil(advice.memoryPeakBytes * 1.15)  # ≈ 26.5Gi
    assert advice.memoryReason.startswith(
        "peak GPU memory within 7d (3 samples over 0s) = 23.1Gi, +15% margin = 26.6Gi"
    )
    # 0.34 GPU lies in bucket 20 of 0.2·(1.05ⁱ − 1) (1.05ⁱ = 2.7 → i = 20.4); p95 is its
    # upper bound 0.2·(1.05²¹ − 1) = 0.357 GPU, 35.7 % of the one GPU a replica requests
    used = 0.2 * (1.05**21 - 1)
    assert advice.utilizationPercent == round(100 * used, 1)
    # 0.96 GPU / (1 × 70%) = 1.37 → 2
    assert (advice.replicas, advice.resource, advice.requestPerReplica) == (2, "nvidia.com/gpu", 1)
    # 80Gi / 26.6Gi = 3.01 → 3 per shared A100; the smallest MIG profile holding 26.6Gi: 3g.40gb
    assert advice.replicasPerSharedGpu == 3
    assert advice.smallestMigProfile == "3g.40gb"
    assert "expect it slower" not in advice.migReason  # 0.357 GPU ≤ 3/7
    # 5 GPUs free; CPU 40/4 = 10; memory 500/32 = 15 → 5, by GPUs
    assert advice.additionalReplicas == 5
    assert [(n.node, n.replicas, n.limitedBy) for n in advice.nodes] == [("gpu-1", 5, "gpu")]


def test_gpu_history_round_trips_through_its_model() -> None:
    history = _history()
    again = GpuHistory.from_model(history.to_model())
    assert again.memory.peak(NOW, 86400) == history.memory.peak(NOW, 86400)
    assert again.utilization.percentile(95) == history.utilization.percentile(95)
    assert (again.samples, again.utilization_samples) == (3, 3)
    assert again.total is None and again.total_samples == 0


def test_the_total_gpu_history_round_trips_through_its_model_and_the_wire() -> None:
    history, now = a_steady_day(4.0)
    model = history.to_model()
    wire = model.model_dump(mode="json", exclude_none=True)
    assert {"totalGpu", "totalGpuSamples", "lastTotalGpuAt"} <= set(wire)
    again = GpuHistory.from_model(type(model).model_validate(wire))
    assert (again.total_samples, again.last_total_at) == (1441, now)
    assert again.window_load(now, WEEK, 95) == history.window_load(now, WEEK, 95)
    assert _replicas_advice(again, 4.0) == _replicas_advice(history, 4.0)


room_strategy = st.builds(
    lambda name, alloc, req, cpu, mem, replicas, sharing, memory, free_memory, mig: GpuNodeRoom(
        name=name,
        gpus=NodeGpus(
            allocatable={"nvidia.com/gpu": alloc, "nvidia.com/mig-1g.10gb": mig},
            memory_bytes=memory,
            replicas=replicas,
            sharing=sharing,
        ),
        requested={"nvidia.com/gpu": req, "nvidia.com/mig-1g.10gb": mig // 2},
        free_cpu_millicores=cpu,
        free_memory_kib=mem,
        free_gpu_memory=free_memory,
    ),
    name=st.text("abcdef", min_size=1, max_size=4),
    alloc=st.integers(0, 16),
    req=st.integers(0, 20),
    cpu=st.integers(0, 64_000),
    mem=st.integers(0, 512 * GIB // 1024),
    replicas=st.integers(1, 8),
    sharing=st.sampled_from(["none", "time-slicing", "mps"]),
    memory=st.none() | st.integers(1 * GIB, 141 * GIB),
    free_memory=st.lists(st.integers(0, 141 * GIB), max_size=8).map(tuple),
    mig=st.integers(0, 7),
)


@pytest.mark.requirement("GP-005")
@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(room_strategy, max_size=25, unique_by=lambda r: r.name),
    resource=st.sampled_from(["nvidia.com/gpu", "nvidia.com/mig-1g.10gb"]),
    per_replica=st.integers(1, 4),
    needed=st.none() | st.integers(1 * GIB, 100 * GIB),
    cpu=st.floats(0.01, 32.0),
    memory=st.integers(1 << 20, 256 * GIB),
    listed=st.integers(1, 30),
)
def test_the_vectorised_fit_gives_the_plain_fits_answers(
    nodes: list[GpuNodeRoom],
    resource: str,
    per_replica: int,
    needed: int | None,
    cpu: float,
    memory: int,
    listed: int,
) -> None:
    plain = fit_gpu_replicas(resource, per_replica, needed, cpu, memory, nodes, max_listed=listed)
    fast = GpuFitArrays(resource, nodes).solve(per_replica, needed, cpu, memory, max_listed=listed)
    assert fast == plain
