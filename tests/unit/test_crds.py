"""The CRDs are generated from the pydantic models and the checked-in copies match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from headroom.api.crdgen import MODELS, crd_filename, generate_crd, render_all

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.requirement("PK-001")
@pytest.mark.parametrize("directory", ["crds", "charts/headroom/crds"])
def test_checked_in_crds_match_the_models(directory: str) -> None:
    expected = render_all()
    present = {p.name for p in (ROOT / directory).glob("*.yaml")}
    assert present == set(expected), f"{directory}: run `headroom crds` to regenerate"
    for name, text in expected.items():
        assert (ROOT / directory / name).read_text() == text, (
            f"{directory}/{name} is stale: run `uv run headroom crds`"
        )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found += _walk(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            found += _walk(node["items"], f"{path}[]")
    return found


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_schema_is_structural(model: type) -> None:
    crd = generate_crd(model)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    assert "$ref" not in text and "anyOf" not in text and "title" not in text
    for path, node in _walk(schema):
        assert "type" in node, f"{path} has no type"
        assert node.get("additionalProperties") is not False, path
    assert version["subresources"] == {"status": {}}
    names = crd["spec"]["names"]
    assert names["categories"] == ["headroom"]
    assert crd_filename(model).startswith("headroom.dev_")


def test_short_names_and_columns() -> None:
    by_kind = {generate_crd(m)["spec"]["names"]["kind"]: generate_crd(m) for m in MODELS}
    rr = by_kind["ResourceReport"]["spec"]
    assert rr["names"]["shortNames"] == ["rr"] and rr["scope"] == "Cluster"
    columns = [c["name"] for c in rr["versions"][0]["additionalPrinterColumns"]]
    assert columns == [
        "CPU%",
        "Cores",
        "Mem%",
        "Disk%",
        "Pods",
        "Last Report",
        "Stale",
        "GPUs",
        "GPU-Mem%",
        "Age",
    ]
    caprec = by_kind["CapacityRecommendation"]["spec"]
    assert caprec["names"]["shortNames"] == ["caprec"] and caprec["scope"] == "Namespaced"
    columns = [c["name"] for c in caprec["versions"][0]["additionalPrinterColumns"]]
    assert "Fits" in columns and "Rec-Replicas" in columns


@pytest.mark.requirement("CT-006")
def test_percentages_and_counts_are_bounded() -> None:
    schema = generate_crd(MODELS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cpu = schema["properties"]["status"]["properties"]["cpu"]["properties"]
    assert cpu["utilizationPercent"]["minimum"] == 0
    assert cpu["utilizationPercent"]["maximum"] == 100
    assert cpu["logicalCores"]["minimum"] == 0 and cpu["logicalCores"]["type"] == "integer"


def test_a_heartbeat_of_zero_seconds_is_refused_by_the_schema_as_by_the_model() -> None:
    """The API server refuses what the model refuses: the bounds of the field win over
    those of its type (a ``Count`` alias once made the schema say ``minimum: 0``)."""
    from headroom.api import ResourceReportStatus

    schema = generate_crd(MODELS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    heartbeat = schema["properties"]["status"]["properties"]["heartbeatSeconds"]
    field = ResourceReportStatus.model_json_schema()["properties"]["heartbeatSeconds"]
    assert (heartbeat["minimum"], heartbeat["maximum"]) == (1, 86400)
    assert (field["minimum"], field["maximum"]) == (1, 86400)


#: The fields every object has whose meaning is Kubernetes' to explain, not ours.
KUBERNETES_OWN_FIELDS = {"apiVersion", "kind", "metadata"}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_says_what_it_means(model: type) -> None:
    """``kubectl explain`` and docs/api.md read each field's description off the schema."""
    schema = generate_crd(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing = [
        f"{path}.{name}"
        for path, node in _walk(schema)
        for name, field in node.get("properties", {}).items()
        if not str(field.get("description", "")).strip()
        and not (path == "" and name in KUBERNETES_OWN_FIELDS)
    ]
    assert not missing, f"fields without a description: {', '.join(missing)}"
