"""The CapacityRecommendation grows compatibly: new fields optional, printer columns resolvable."""

from __future__ import annotations

from typing import Any

from headroom.api import CapacityRecommendationStatus
from headroom.api.capacityrecommendation import CapacityRecommendation
from headroom.api.crdgen import generate_crd
from headroom.recommend.gpu import GpuHistory

#: A status as the controller wrote it before bounds, HPA advice, load and confidence existed.
OLD_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "policy": {"targetUtilizationPercent": 70, "minReplicas": 1, "maxReplicas": 100},
    "current": {"replicas": 2, "cpuRequestCores": 0.5, "cpuRequest": "500m"},
    "recommended": {
        "replicas": 3,
        "replicasReason": "total CPU 400m / (250m × 70% target) = 2.29 → 3",
        "cpuRequestCores": 0.25,
        "cpuRequest": "250m",
        "cpuReason": "p95 …",
        "memoryRequestBytes": 754974720,
        "memoryRequest": "720Mi",
        "memoryReason": "peak …",
    },
    "evidence": {
        "windowSeconds": 604800,
        "samples": 2,
        "cpuPercentile": 95,
        "memoryPercentile": 100,
    },
    "history": {
        "cpu": {
            "firstBucketSize": 0.01,
            "growthRatio": 1.05,
            "halfLifeSeconds": 86400,
            "referenceTime": "2026-11-01T00:00:00Z",
        },
        "memory": {
            "firstBucketSize": 1048576,
            "growthRatio": 1.05,
            "halfLifeSeconds": 86400,
            "referenceTime": "2026-11-01T00:00:00Z",
        },
    },
    "conditions": [{"type": "Ready", "status": "True"}],
}


#: A GPU expert's history as the controller wrote it before the total GPU use was kept.
OLD_GPU_HISTORY: dict[str, Any] = {
    "memory": {
        "firstBucketSize": 1048576,
        "growthRatio": 1.05,
        "halfLifeSeconds": 86400,
        "referenceTime": "2026-11-01T00:00:00Z",
        "buckets": [142],
        "weights": [1.0],
    },
    "utilization": {
        "firstBucketSize": 0.01,
        "growthRatio": 1.05,
        "halfLifeSeconds": 86400,
        "referenceTime": "2026-11-01T00:00:00Z",
        "buckets": [34],
        "weights": [1.0],
    },
    "samples": 1,
    "utilizationSamples": 1,
    "firstSampleAt": "2026-11-01T00:00:00Z",
    "lastSampleAt": "2026-11-01T00:00:00Z",
}


def _schema() -> dict[str, Any]:
    crd = generate_crd(CapacityRecommendation)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_a_status_written_before_the_new_fields_still_reads() -> None:
    status = CapacityRecommendationStatus.model_validate(OLD_STATUS)
    assert status.recommended is not None and status.recommended.hpa is None
    assert status.recommended.bounds is None and status.confidence is None
    assert status.history is not None and status.history.totalCpu is None


def test_a_gpu_history_written_before_the_total_gpu_use_still_reads() -> None:
    status = CapacityRecommendationStatus.model_validate(
        {**OLD_STATUS, "history": {**OLD_STATUS["history"], "gpu": OLD_GPU_HISTORY}}
    )
    assert status.history is not None and status.history.gpu is not None
    model = status.history.gpu
    assert model.totalGpu is None and model.totalGpuSamples == 0 and model.lastTotalGpuAt is None
    history = GpuHistory.from_model(model)
    assert (history.samples, history.total, history.total_samples) == (1, None, 0)
    gpu = _schema()["properties"]["status"]["properties"]["history"]["properties"]["gpu"]
    assert not {"totalGpu", "totalGpuSamples", "lastTotalGpuAt"} & set(gpu.get("required", []))


def test_the_new_fields_are_optional_in_the_schema() -> None:
    status = _schema()["properties"]["status"]["properties"]
    recommended = status["recommended"]
    assert not {"bounds", "hpa"} & set(recommended.get("required", []))
    assert not {"load", "pdb"} & set(status["evidence"].get("required", []))
    assert not {"totalCpu", "totalCpuSamples", "lastTotalCpuAt"} & set(
        status["history"].get("required", [])
    )
    assert not {"confidence", "columns"} & set(
        _schema()["properties"]["status"].get("required", [])
    )
    assert set(recommended["properties"]["hpa"]["required"]) >= {"minReplicas", "maxReplicas"}


def test_every_printer_column_points_at_a_field_of_its_type() -> None:
    crd = generate_crd(CapacityRecommendation)
    schema = _schema()
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        node: dict[str, Any] = schema
        for part in column["jsonPath"].strip(".").split("."):
            if part == "metadata":
                node = {"type": "object", "properties": {"creationTimestamp": {"type": "string"}}}
                continue
            node = node["properties"][part]
        expected = "string" if column["type"] == "date" else column["type"]
        assert node["type"] == expected, column
