"""ResourceReport: one per Node, written by that node's agent through ``/status``.

Figures are the node's (read through the host's procfs and filesystems), never
the agent container's; the agent's own cgroup limits sit apart in
``agentContainer`` (see REQUIREMENTS: "Node figures are the node's").
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from headroom.api.common import (
    ApiModel,
    Bytes,
    Condition,
    Cores,
    Count,
    ObjectMeta,
    Percent,
)
from headroom.api.crdinfo import CrdInfo, PrinterColumn
from headroom.api.gpu import MAX_GPUS, GpuFigures, GpuSummary, PodGpuUsage

__all__ = [
    "ContainerLimits",
    "ContainerUsage",
    "CpuFigures",
    "DiskFigures",
    "MemoryFigures",
    "PodUsage",
    "QosClass",
    "ResourceReport",
    "ResourceReportSpec",
    "ResourceReportStatus",
]

QosClass = Literal["Guaranteed", "Burstable", "BestEffort"]

#: Bounds the API server enforces so that nonsense is refused at the door (CT-006):
#: far above any real node, far below what would hurt the controller.
MAX_CORES = 16384
MAX_DISKS = 64
MAX_PODS = 2048
MAX_CONTAINERS = 64


class CpuFigures(ApiModel):
    """FR-001..FR-003: utilisation between two cycles, and the core counts."""

    utilizationPercent: Percent = Field(description="FR-001 busy share of all logical CPUs")
    physicalCores: Count | None = Field(
        default=None,
        le=MAX_CORES,
        description="FR-002 physical cores; absent where the OS cannot tell",
    )
    logicalCores: Count = Field(le=MAX_CORES, description="FR-003 logical CPUs")


class MemoryFigures(ApiModel):
    """FR-004: virtual memory as the node's kernel counts it (``/proc/meminfo``)."""

    totalBytes: Bytes = Field(description="`MemTotal`: the RAM the kernel manages")
    availableBytes: Bytes = Field(
        description="`MemAvailable`: what can be given to new work without swapping"
    )
    usedBytes: Bytes = Field(description="total minus available")
    usedPercent: Percent = Field(description="used as a share of total, to 1 decimal")


class DiskFigures(ApiModel):
    """FR-005 for one configured path; HR-003: a bad path carries ``error`` instead."""

    path: str = Field(
        min_length=1, max_length=4096, description="the path as configured (on the node)"
    )
    totalBytes: Bytes | None = Field(
        default=None,
        description="size of the filesystem holding the path (`statvfs`); absent with `error`",
    )
    usedBytes: Bytes | None = Field(
        default=None,
        description="total minus the free blocks, root's reserve counted as free; "
        "absent with `error`",
    )
    freeBytes: Bytes | None = Field(
        default=None,
        description="free to unprivileged users (`f_bavail`, root's reserve left out); "
        "absent with `error`",
    )
    usedPercent: Percent | None = Field(
        default=None,
        description="used ÷ (used + free), to 1 decimal: the Use% of `df`; absent with `error`",
    )
    error: str | None = Field(
        default=None, max_length=1024, description="why the path could not be measured"
    )


class ContainerUsage(ApiModel):
    """Usage of one container of a pod, from its cgroup below the pod's.

    ``id`` is the runtime's container ID cut to 12 characters (the controller
    finds the container's name through the Pod's ``containerStatuses``); the
    pod sandbox (pause) is listed too and dropped by the controller, whose
    Pod status never names it.
    """

    id: str = Field(
        min_length=1,
        max_length=64,
        description="the runtime's container ID, its first 12 characters (from the cgroup's name)",
    )
    cpuCores: Cores | None = Field(
        default=None, description="CPU between the last two cycles; absent on a container's first"
    )
    memoryBytes: Bytes = Field(description="working set: usage minus inactive file cache")


class PodUsage(ApiModel):
    """Usage of one pod on the node, from its cgroup (summed over its containers)."""

    uid: str = Field(
        min_length=1, max_length=64, description="the Pod's `metadata.uid`, from its cgroup's name"
    )
    qosClass: QosClass = Field(
        description="the Pod's QoS class, from the kubepods cgroup its cgroup sits under"
    )
    cpuCores: Cores | None = Field(
        default=None, description="CPU between the last two cycles; absent on a pod's first"
    )
    memoryBytes: Bytes = Field(description="working set: usage minus inactive file cache")
    containers: list[ContainerUsage] | None = Field(
        default=None,
        max_length=MAX_CONTAINERS,
        description="each container cgroup below the pod's (absent where none is found)",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
    )
    gpu: PodGpuUsage | None = Field(default=None, description="GP-002; only pods using a GPU")


class ContainerLimits(ApiModel):
    """The agent container's own cgroup limits, kept apart from node figures."""

    cgroupVersion: Literal["v1", "v2"] | None = Field(
        default=None, description="of the agent's own cgroup; absent when it was not found"
    )
    cpuLimitCores: Cores | None = Field(default=None, description="absent when unlimited")
    memoryLimitBytes: Bytes | None = Field(default=None, description="absent when unlimited")


class ResourceReportSpec(ApiModel):
    """Set once by the agent when it creates the report."""

    nodeName: str = Field(
        min_length=1, max_length=253, description="the Node measured (also the report's name)"
    )


class ResourceReportStatus(ApiModel):
    """Everything the agent measured in its latest write."""

    collectedAt: datetime = Field(description="when the agent read these figures (its clock)")
    agentVersion: str = Field(max_length=128, description="Headroom version of the agent")
    heartbeatSeconds: int = Field(
        ge=1, le=86400, description="the agent's heartbeat; stale after 3 of them"
    )
    cpu: CpuFigures
    memory: MemoryFigures
    disks: list[DiskFigures] = Field(
        default_factory=list,
        max_length=MAX_DISKS,
        description="FR-005: one entry per configured path, in the configured order",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]},
    )
    diskMaxUsedPercent: Percent | None = Field(
        default=None, description="the fullest measured path (for kubectl get)"
    )
    podCount: Count = Field(default=0, description="the number of entries in `pods`")
    pods: list[PodUsage] = Field(
        default_factory=list,
        max_length=MAX_PODS,
        description="each pod with a cgroup under the node's kubepods cgroup, by UID",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
    )
    agentContainer: ContainerLimits | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="`Stale`: False on every agent write, True once the controller "
        "saw no heartbeat for 3 periods",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    gpus: list[GpuFigures] | None = Field(
        default=None,
        max_length=MAX_GPUS,
        description="GP-001: one entry per GPU; absent on nodes without NVML",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["index"],
        },
    )
    gpuSummary: GpuSummary | None = None


class ResourceReport(ApiModel):
    """A node's figures (cluster-scoped, named after its Node)."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="ResourceReport",
        plural="resourcereports",
        singular="resourcereport",
        scope="Cluster",
        short_names=("rr",),
        printer_columns=(
            PrinterColumn("CPU%", "number", ".status.cpu.utilizationPercent", "FR-001"),
            PrinterColumn("Cores", "integer", ".status.cpu.logicalCores", "FR-003"),
            PrinterColumn("Mem%", "number", ".status.memory.usedPercent", "FR-004"),
            PrinterColumn("Disk%", "number", ".status.diskMaxUsedPercent", "fullest path"),
            PrinterColumn("Pods", "integer", ".status.podCount"),
            PrinterColumn("Last Report", "date", ".status.collectedAt"),
            PrinterColumn(
                "Stale",
                "string",
                '.status.conditions[?(@.type=="Stale")].status',
                "True once the controller saw no heartbeat for 3 periods",
            ),
            PrinterColumn("GPUs", "integer", ".status.gpuSummary.count", "GP-001"),
            PrinterColumn(
                "GPU-Mem%", "number", ".status.gpuSummary.memoryMaxUsedPercent", "fullest GPU"
            ),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ),
    )

    apiVersion: Literal["headroom.dev/v1alpha1"] = "headroom.dev/v1alpha1"
    kind: Literal["ResourceReport"] = "ResourceReport"
    metadata: ObjectMeta
    spec: ResourceReportSpec
    status: ResourceReportStatus | None = None
