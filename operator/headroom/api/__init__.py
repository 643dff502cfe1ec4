"""The Headroom API (group ``headroom.dev``, version ``v1alpha1``) as pydantic v2 models.

These models are the single source of truth: the CRD YAML in ``crds/`` and the
Helm chart's copy are generated from them (``headroom crds``), and a test fails
when the checked-in files drift.
"""

from headroom.api.capacityrecommendation import (
    CapacityRecommendation,
    CapacityRecommendationSpec,
    CapacityRecommendationStatus,
)
from headroom.api.common import API_VERSION, GROUP, VERSION, Condition, ObjectMeta
from headroom.api.gpu import (
    GpuAdvice,
    GpuFigures,
    GpuSummary,
    MigDeviceFigures,
    PodGpuDevice,
    PodGpuUsage,
)
from headroom.api.resourcereport import (
    ContainerLimits,
    ContainerUsage,
    CpuFigures,
    DiskFigures,
    MemoryFigures,
    PodUsage,
    ResourceReport,
    ResourceReportSpec,
    ResourceReportStatus,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CapacityRecommendation",
    "CapacityRecommendationSpec",
    "CapacityRecommendationStatus",
    "Condition",
    "ContainerLimits",
    "ContainerUsage",
    "CpuFigures",
    "DiskFigures",
    "GpuAdvice",
    "GpuFigures",
    "GpuSummary",
    "MemoryFigures",
    "MigDeviceFigures",
    "ObjectMeta",
    "PodGpuDevice",
    "PodGpuUsage",
    "PodUsage",
    "ResourceReport",
    "ResourceReportSpec",
    "ResourceReportStatus",
]
