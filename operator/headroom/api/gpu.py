"""GPU parts of the API: a node's GPUs, a pod's GPU use, and GPU advice (GP-001..GP-005).

Kept apart from the CPU and memory models so each can grow on its own: the
ResourceReport carries ``status.gpus`` (one entry per physical GPU, MIG
devices inside), ``status.gpuSummary`` (for ``kubectl get rr``) and
``status.pods[].gpu``; the CapacityRecommendation carries ``status.gpu``
(:class:`GpuAdvice`) for experts that request ``nvidia.com/gpu`` or a MIG
resource. Every field is optional: nodes and experts without GPUs carry none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from headroom.api.common import ApiModel, Bytes, Count, Percent
from headroom.api.histogram import DecayingHistogram

__all__ = [
    "GpuAdvice",
    "GpuFigures",
    "GpuNodeFit",
    "GpuSummary",
    "GpuUsageHistory",
    "MigDeviceFigures",
    "PodGpuDevice",
    "PodGpuUsage",
]

MAX_GPUS = 64
MAX_MIG_DEVICES = 56
"""7 MIG devices per GPU is the most any profile set gives; 8x that is plenty."""


class MigDeviceFigures(ApiModel):
    """One MIG device of a GPU in MIG mode."""

    index: Count = Field(le=MAX_MIG_DEVICES, description="its position on the GPU")
    uuid: str | None = Field(default=None, max_length=128, description="MIG-...")
    profile: str | None = Field(
        default=None,
        max_length=64,
        description="e.g. 1g.10gb (the resource nvidia.com/mig-1g.10gb)",
    )
    gpuInstanceId: Count | None = Field(
        default=None, description="NVML's GPU instance ID; absent where NVML has none"
    )
    computeInstanceId: Count | None = Field(
        default=None, description="NVML's compute instance ID; absent where NVML has none"
    )
    memoryTotalBytes: Bytes | None = Field(
        default=None, description="the device's own memory; absent where NVML has none"
    )
    memoryUsedBytes: Bytes | None = Field(
        default=None, description="of which in use; absent where NVML has none"
    )
    error: str | None = Field(
        default=None,
        max_length=1024,
        description="the NVML call that failed and its error; then only `index` is set",
    )


class GpuFigures(ApiModel):
    """One physical GPU, from NVML (GP-001); a failing GPU carries ``error``."""

    index: Count = Field(le=MAX_GPUS, description="NVML index")
    uuid: str | None = Field(default=None, max_length=128, description="GPU-...")
    name: str | None = Field(default=None, max_length=256, description="product name")
    memoryTotalBytes: Bytes | None = Field(
        default=None, description="NVML's total memory; absent where NVML has none"
    )
    memoryUsedBytes: Bytes | None = Field(
        default=None, description="of which in use; absent where NVML has none"
    )
    memoryUsedPercent: Percent | None = Field(
        default=None,
        description="used ÷ total, to 1 decimal; absent without both (or with a total of 0)",
    )
    utilizationPercent: Percent | None = Field(
        default=None,
        description="kernels running, mean of NVML's samples since the last cycle; absent in MIG mode",
    )
    memoryUtilizationPercent: Percent | None = Field(
        default=None, description="memory controller busy, likewise"
    )
    migMode: Literal["Enabled", "Disabled"] | None = Field(
        default=None, description="the current MIG mode; absent where NVML has none (no MIG)"
    )
    migDevices: list[MigDeviceFigures] | None = Field(
        default=None, max_length=MAX_MIG_DEVICES, description="in MIG mode only: each MIG device"
    )
    processCount: Count | None = Field(default=None, description="compute processes")
    xids: list[Count] | None = Field(
        default=None, max_length=64, description="Xid critical errors since the last cycle"
    )
    error: str | None = Field(
        default=None, max_length=1024, description="why this GPU could not be read (in full)"
    )


class GpuSummary(ApiModel):
    """The node's GPUs in a few figures (for ``kubectl get rr``)."""

    count: Count = Field(le=MAX_GPUS, description="GPUs NVML counts, those in error included")
    memoryMaxUsedPercent: Percent | None = Field(default=None, description="the fullest GPU")
    utilizationMaxPercent: Percent | None = Field(default=None, description="the busiest GPU")
    errors: Count = Field(default=0, description="GPUs that could not be read")


class PodGpuDevice(ApiModel):
    """A pod's use of one GPU or MIG device."""

    uuid: str = Field(min_length=1, max_length=128, description="the GPU's or MIG device's")
    gpuIndex: Count = Field(
        le=MAX_GPUS, description="NVML index of the GPU (for a MIG device, of its GPU)"
    )
    migProfile: str | None = Field(
        default=None, max_length=64, description="the MIG device's profile; absent for a whole GPU"
    )
    memoryBytes: Bytes | None = Field(
        default=None, description="its processes' GPU memory; absent where NVML cannot tell"
    )
    utilizationPercent: Percent | None = Field(
        default=None, description="its processes' SM share since the last cycle (not in MIG mode)"
    )
    processes: Count = Field(default=1, description="the pod's compute processes on it")


class PodGpuUsage(ApiModel):
    """A pod's GPU use (GP-002), from NVML's processes mapped to the pod by cgroup."""

    memoryBytes: Bytes | None = Field(default=None, description="over all its devices")
    devices: list[PodGpuDevice] = Field(
        default_factory=list,
        max_length=MAX_GPUS,
        description="each GPU or MIG device its compute processes run on",
    )


class GpuNodeFit(ApiModel):
    """How many more replicas' GPUs one node has free."""

    node: str = Field(description="the Node's name")
    replicas: Count = Field(description="more replicas of the recommended size that fit on it")
    freeGpus: Count = Field(description="allocatable minus requested, of the resource asked for")
    limitedBy: Literal["gpu", "cpu", "memory", "gpu-memory"] = Field(
        description="what runs out first: free devices, CPU, memory, or a shared GPU's memory"
    )


class GpuAdvice(ApiModel):
    """GPU sizing of an expert that requests GPUs (GP-004, GP-005); each figure with its reason."""

    resource: str = Field(description="nvidia.com/gpu or nvidia.com/mig-<profile>")
    requestPerReplica: Count = Field(description="devices each replica requests today")
    memoryPeakBytes: Bytes | None = Field(
        default=None, description="per-replica GPU memory peak in the window"
    )
    memoryNeededBytes: Bytes | None = Field(default=None, description="peak plus margin")
    memoryReason: str = Field(
        default="", description="how the memory figures (and the GPU use) were reached"
    )
    utilizationPercent: Percent | None = Field(
        default=None, description="per-replica GPU utilisation at the percentile"
    )
    utilizationPercentile: Percent | None = Field(
        default=None, description="the percentile `utilizationPercent` is taken at"
    )
    targetUtilizationPercent: Percent | None = Field(
        default=None,
        description="the GPU use per replica that `replicas` aims at, in percent of its "
        "devices (`headroom.dev/gpu-target-utilization`)",
    )
    replicas: Count | None = Field(
        default=None,
        description="from the p95 of all replicas' total GPU use over the window against "
        "the target",
    )
    replicasReason: str = Field(default="", description="how `replicas` was reached, or why not")
    replicasPerSharedGpu: Count | None = Field(
        default=None, description="replicas whose peak (+ margin) fit in one GPU's memory"
    )
    sharingReason: str = Field(
        default="", description="how `replicasPerSharedGpu` was reached, or why not"
    )
    smallestMigProfile: str | None = Field(
        default=None, description="the smallest MIG profile on the nodes that holds the peak"
    )
    migReason: str = Field(
        default="", description="how `smallestMigProfile` was chosen, or why none"
    )
    additionalReplicas: Count | None = Field(
        default=None, description="more replicas that fit, counting free GPUs, CPU and memory"
    )
    fitReason: str = Field(default="", description="how `additionalReplicas` was counted")
    nodes: list[GpuNodeFit] = Field(
        default_factory=list,
        max_length=20,
        description="where more replicas fit, most first (at most 20 listed)",
    )
    samples: Count = Field(
        default=0,
        description="per-pod GPU observations since the history began "
        "(pruning old ones does not lower it)",
    )


class GpuUsageHistory(ApiModel):
    """Persisted GPU samples of one expert: per-pod memory for its peak, per-pod use for its
    percentile, and the total use of all replicas for the replica count."""

    memory: DecayingHistogram = Field(description="per-pod GPU memory, bytes")
    utilization: DecayingHistogram = Field(description="per-pod GPU use, in GPUs (1.0 = one busy)")
    samples: Count = Field(default=0, description="per-pod observations (memory)")
    utilizationSamples: Count = Field(default=0, description="of which with GPU use")
    firstSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the first observation"
    )
    lastSampleAt: datetime | None = Field(
        default=None, description="collection time of the report with the latest observation"
    )
    totalGpu: DecayingHistogram | None = Field(
        default=None,
        description="the expert's total GPU use (all replicas, in GPUs), sampled at a fixed "
        "cadence: what `status.gpu.replicas` follows",
    )
    totalGpuSamples: Count = Field(default=0, description="samples added to `totalGpu`")
    lastTotalGpuAt: datetime | None = Field(
        default=None, description="when the controller last added one (its clock)"
    )
