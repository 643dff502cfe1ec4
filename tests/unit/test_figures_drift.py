"""The agent's plain status dataclasses never drift from the API's pydantic models.

The agent builds its ResourceReport status without pydantic (PR-002, PR-003;
see ``headroom.collection.figures``). These tests keep that honest: the same
fields as the models, and every status the agent can build from any readings
is one the models accept, serialised exactly as the models would, and valid
under the generated CRD schema the API server enforces.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from headroom import api
from headroom.api.resourcereport import QosClass as ApiQosClass
from headroom.collection import figures
from headroom.collection.derive import derive_status
from headroom.collection.gpu import figures as gpu_figures
from headroom.collection.sample import ContainerCounters, CpuTimes, PodCounters, RawSample
from tests.unit.crdschema import crd_validator

PAIRS: list[tuple[type[Any], type[BaseModel]]] = [
    (figures.CpuFigures, api.CpuFigures),
    (figures.MemoryFigures, api.MemoryFigures),
    (figures.DiskFigures, api.DiskFigures),
    (figures.PodUsage, api.PodUsage),
    (figures.ContainerUsage, api.ContainerUsage),
    (figures.ContainerLimits, api.ContainerLimits),
    (figures.Condition, api.Condition),
    (figures.ReportStatus, api.ResourceReportStatus),
    (gpu_figures.GpuFigures, api.GpuFigures),
    (gpu_figures.MigDeviceFigures, api.MigDeviceFigures),
    (gpu_figures.GpuSummary, api.GpuSummary),
    (gpu_figures.PodGpuDevice, api.PodGpuDevice),
    (gpu_figures.PodGpuUsage, api.PodGpuUsage),
]


@pytest.mark.requirement("PR-002")
@pytest.mark.parametrize(("plain", "model"), PAIRS, ids=lambda pair: getattr(pair, "__name__", ""))
def test_same_fields_and_the_same_required_ones(plain: type[Any], model: type[BaseModel]) -> None:
    fields = {f.name: f for f in dataclasses.fields(plain)}
    assert set(fields) == set(model.model_fields)
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required == {name for name, f in model.model_fields.items() if f.is_required()}


def test_qos_classes_are_the_apis() -> None:
    assert typing.get_args(figures.QosClass) == typing.get_args(ApiQosClass)


percent = st.floats(min_value=-50, max_value=150) | st.sampled_from([float("inf"), -float("inf")])
size = st.integers(min_value=0, max_value=2**62)
counter = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
uid = st.uuids().map(str)
disk = st.one_of(
    st.builds(
        figures.DiskFigures,
        path=st.sampled_from(["/", "/var/lib", "/data"]),
        totalBytes=size,
        usedBytes=size,
        freeBytes=size,
        usedPercent=percent,
    ),
    st.builds(
        figures.DiskFigures,
        path=st.sampled_from(["/gone", "/file"]),
        error=st.sampled_from(["No such file or directory", "not a directory"]),
    ),
)
limits = st.none() | st.builds(
    figures.ContainerLimits,
    cgroupVersion=st.none() | st.sampled_from(["v1", "v2"]),
    cpuLimitCores=st.none() | st.floats(min_value=0, max_value=512),
    memoryLimitBytes=st.none() | size,
)


small_percent = st.none() | st.floats(min_value=0, max_value=100)
mig_device = st.builds(
    gpu_figures.MigDeviceFigures,
    index=st.integers(min_value=0, max_value=6),
    uuid=st.none() | st.just("MIG-11111111-2222-5333-8444-555555555555"),
    profile=st.none() | st.sampled_from(["1g.10gb", "3g.40gb", "7g.80gb"]),
    gpuInstanceId=st.none() | st.integers(min_value=0, max_value=14),
    computeInstanceId=st.none() | st.integers(min_value=0, max_value=7),
    memoryTotalBytes=st.none() | size,
    memoryUsedBytes=st.none() | size,
    error=st.none() | st.just("nvmlDeviceGetMemoryInfo: NVML_ERROR_GPU_IS_LOST"),
)
gpu = st.builds(
    gpu_figures.GpuFigures,
    index=st.integers(min_value=0, max_value=7),
    uuid=st.none() | st.just("GPU-5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
    name=st.none() | st.just("NVIDIA H100 80GB HBM3"),
    memoryTotalBytes=st.none() | size,
    memoryUsedBytes=st.none() | size,
    memoryUsedPercent=small_percent,
    utilizationPercent=small_percent,
    memoryUtilizationPercent=small_percent,
    migMode=st.none() | st.sampled_from(["Enabled", "Disabled"]),
    migDevices=st.none() | st.lists(mig_device, max_size=3),
    processCount=st.none() | st.integers(min_value=0, max_value=64),
    xids=st.none() | st.lists(st.sampled_from([13, 31, 48, 79]), min_size=1, max_size=3),
    error=st.none() | st.just("nvmlDeviceGetUUID: NVML_ERROR_UNKNOWN"),
)
pod_gpu = st.builds(
    gpu_figures.PodGpuUsage,
    memoryBytes=st.none() | size,
    devices=st.lists(
        st.builds(
            gpu_figures.PodGpuDevice,
            uuid=st.just("GPU-5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
            gpuIndex=st.integers(min_value=0, max_value=7),
            migProfile=st.none() | st.just("1g.10gb"),
            memoryBytes=st.none() | size,
            utilizationPercent=small_percent,
            processes=st.integers(min_value=1, max_value=8),
        ),
        max_size=2,
    ),
)


@st.composite
def gpu_snapshots(draw: st.DrawFn, uids: list[str]) -> gpu_figures.GpuSnapshot | None:
    """What a GPU reader can give: nothing, or GPUs by distinct index and some pods' use."""
    if draw(st.booleans()):
        return None
    gpus = {g.index: g for g in draw(st.lists(gpu, max_size=3))}
    pods = {u: draw(pod_gpu) for u in uids if draw(st.booleans())}
    return gpu_figures.GpuSnapshot(tuple(gpus.values()), pods)


@st.composite
def readings(draw: st.DrawFn) -> RawSample:
    """One reading as any reader can give it (counters may go backwards: restarts)."""
    used_percent = draw(st.floats(min_value=0, max_value=100))
    containers = st.dictionaries(
        st.text("0123456789abcdef", min_size=12, max_size=12), st.tuples(counter, size), max_size=3
    ).map(lambda found: tuple(ContainerCounters(i, c, m) for i, (c, m) in sorted(found.items())))
    pods = draw(
        st.dictionaries(
            uid,
            st.tuples(
                st.sampled_from(typing.get_args(figures.QosClass)), counter, size, containers
            ),
        )
    )
    return RawSample(
        monotonic=draw(st.floats(min_value=0, max_value=1e9)),
        cpu_times=CpuTimes(busy=draw(counter), total=draw(counter)),
        logical_cores=draw(st.integers(min_value=1, max_value=1024)),
        physical_cores=draw(st.none() | st.integers(min_value=1, max_value=512)),
        memory=figures.MemoryFigures(
            totalBytes=draw(size),
            availableBytes=draw(size),
            usedBytes=draw(size),
            usedPercent=used_percent,
        ),
        disks=tuple({d.path: d for d in draw(st.lists(disk, min_size=1, max_size=4))}.values()),
        pods=tuple(PodCounters(u, q, c, m, k) for u, (q, c, m, k) in pods.items()),
        agent_container=draw(limits),
        gpus=draw(gpu_snapshots(list(pods))),
    )


REPORTS = crd_validator("resourcereports")
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@pytest.mark.requirement("PR-002", "PR-003", "FR-005", "HR-003")
@settings(max_examples=60, deadline=None)
@given(previous=st.none() | readings(), current=readings(), at=moments)
def test_every_status_the_agent_builds_is_what_the_api_models_write(
    previous: RawSample | None, current: RawSample, at: datetime
) -> None:
    status = derive_status(
        previous, current, collected_at=at, agent_version="0.1.0", heartbeat_seconds=60
    )
    status.conditions = [
        figures.Condition(
            type="Stale", status="False", reason="AgentReporting", lastTransitionTime=at
        )
    ]
    wire = status.to_wire()

    model = api.ResourceReportStatus.model_validate(dataclasses.asdict(status))
    assert model.to_wire() == wire
    assert api.ResourceReportStatus.model_validate(wire).to_wire() == wire

    report = {
        "apiVersion": api.API_VERSION,
        "kind": "ResourceReport",
        "metadata": {"name": "node-1"},
        "spec": {"nodeName": "node-1"},
        "status": wire,
    }
    assert [error.message for error in REPORTS.iter_errors(report)] == []
