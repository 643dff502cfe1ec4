"""``headroom report experts -o patch`` / ``-o csv`` and the containers in the table.

The status is the controller's own (``test_controller_containers``: app
250m / 720Mi with a 200m CPU limit raised to 250m, sidecar ``proxy`` 70m /
128Mi); whether the API server takes the patch is for
``tests/integration/test_export_patch.py``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from headroom.controller.compute import compute_batch
from headroom.recommend.policy import SizingDefaults
from headroom.report.build import ReportBuilder
from headroom.report.command import export
from headroom.report.export import CSV_COLUMNS, deployment_patch
from headroom.report.terminal import render_tables
from tests.unit.test_controller_containers import KEY, learnt_state
from tests.unit.test_controller_state import T0


def status(kill: str | None = None):  # type: ignore[no-untyped-def]
    state = learnt_state(kill=kill)
    return compute_batch(state, SizingDefaults(), T0 + timedelta(minutes=3)).statuses[KEY][1]


def report_with(kill: str | None = None):  # type: ignore[no-untyped-def]
    builder = ReportBuilder(now=datetime(2026, 11, 1, 12, 5, tzinfo=UTC))
    builder.add_recommendation(
        {
            "apiVersion": "headroom.dev/v1alpha1",
            "kind": "CapacityRecommendation",
            "metadata": {"name": "expert-a", "namespace": "team"},
            "spec": {"targetRef": {"name": "expert-a"}},
            "status": status(kill).to_wire(),
        }
    )
    return builder.build()


@pytest.mark.requirement("FR-007")
def test_the_patch_sets_each_containers_resources_by_name() -> None:
    patch = deployment_patch("team", "expert-a", status())
    assert patch == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "expert-a", "namespace": "team"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "720Mi"},
                                "limits": {"memory": "720Mi", "cpu": "250m"},
                            },
                        }
                    ],
                    "initContainers": [
                        {
                            "name": "proxy",
                            "resources": {
                                "requests": {"cpu": "70m", "memory": "128Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                        }
                    ],
                }
            }
        },
    }


def test_o_patch_prints_one_yaml_document_per_deployment_with_advice() -> None:
    text = export(report_with(), "patch")
    (document,) = list(yaml.safe_load_all(text))
    assert document == deployment_patch("team", "expert-a", status())


def test_o_csv_has_a_row_per_pod_total_and_per_container() -> None:
    rows = list(csv.DictReader(io.StringIO(export(report_with("2026-11-01T11:58:00Z"), "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["container"] for r in rows] == ["", "app", "proxy"]
    total, app, proxy = rows
    # the pod asks max(app 500m + proxy 100m, init-model 2 before the proxy starts) = 2
    assert (total["replicas"], total["cpuRequest"]) == ("2", "2")
    assert (app["memoryLimit"], app["recommendedMemoryLimit"]) == ("1Gi", "1280Mi")
    assert (app["oomKills"], app["lastOomKill"]) == ("1", "2026-11-01T11:58:00+00:00")
    assert (proxy["sidecar"], proxy["recommendedCpuRequest"]) == ("true", "70m")


def test_the_experts_table_shows_each_container() -> None:
    text = render_tables(report_with("2026-11-01T11:58:00Z"), nodes=False)
    assert "└ app" in text and "└ proxy" in text
    assert "1Gi → 1280Mi" in text and "OOM-killed ×1" in text
    assert "sidecar" in text


@pytest.mark.requirement("FR-007")
def test_an_hpa_gets_its_min_and_max_and_the_deployment_no_replica_count() -> None:
    from headroom.api.capacityrecommendation import HpaAdvice
    from headroom.report.export import hpa_patch

    base = status()
    assert base.recommended is not None
    assert hpa_patch("team", base) is None
    advice = HpaAdvice(
        name="expert-a-hpa",
        currentMinReplicas=1,
        currentMaxReplicas=10,
        minReplicas=2,
        maxReplicas=7,
        minReplicasReason="p10 of the total CPU",
        maxReplicasReason="the peak of the total CPU",
    )
    with_hpa = base.model_copy(
        update={"recommended": base.recommended.model_copy(update={"hpa": advice})}
    )
    assert hpa_patch("team", with_hpa) == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "expert-a-hpa", "namespace": "team"},
        "spec": {"minReplicas": 2, "maxReplicas": 7},
    }
    patch = deployment_patch("team", "expert-a", with_hpa)
    assert patch is not None and "replicas" not in patch["spec"]
