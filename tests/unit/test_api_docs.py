"""docs/api.md is generated from the pydantic models, lists every field, and is not stale."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from headroom.api.apidocs import API_DOCS_PATH, render_api_docs, unit_of
from headroom.api.crdgen import MODELS, generate_crd
from headroom.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_api_reference_matches_the_models() -> None:
    assert (ROOT / API_DOCS_PATH).read_text(encoding="utf-8") == render_api_docs(), (
        f"{API_DOCS_PATH} is stale: run `uv run headroom docs api`"
    )


def _leaves(node: dict[str, Any], path: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(object path, field name, field schema) for every field under ``node``."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    for name, sub in node.get("properties", {}).items():
        found.append((path, name, sub))
        target = sub.get("items", {}) if sub.get("type") == "array" else sub
        suffix = "[]" if target is not sub else ""
        found += _leaves(target, f"{path}.{name}{suffix}")
    return found


def _sections(text: str) -> dict[str, str]:
    """Heading path (``ResourceReport.status.cpu``) → the text below it."""
    parts = re.split(r"^### (?:Fields of )?`([^`]+)`.*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_of_the_schema_has_a_row_in_its_objects_section(model: type) -> None:
    schema = generate_crd(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    sections = _sections(render_api_docs())
    kind = model.__name__
    missing = []
    for path, name, _ in _leaves(schema, kind):
        if not re.search(rf"^\| `{re.escape(name)}` \|", sections.get(path, ""), re.MULTILINE):
            missing.append(f"{path}.{name}")
    assert not missing


def _row(path: str, name: str) -> list[str]:
    section = _sections(render_api_docs())[path]
    line = next(x for x in section.splitlines() if x.startswith(f"| `{name}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_rows_carry_type_bounds_unit_and_description() -> None:
    _name, kind, required, bounds, unit, default, description = _row(
        "ResourceReport.status.cpu", "utilizationPercent"
    )
    assert (kind, required, bounds, unit, default) == ("number", "yes", "0–100", "percent", "–")
    assert "busy share" in description
    assert _row("ResourceReport.status", "disks")[3] == "≤ 64 items; one per `path`"
    memory = _row("ResourceReport.status.pods[]", "memoryBytes")
    assert memory[1:5] == ["integer", "yes", "≥ 0", "bytes"]
    policy = _row("CapacityRecommendation.status.policy", "targetUtilizationPercent")
    assert policy[3] == "> 0; ≤ 100"
    assert _row("CapacityRecommendation.status.policy", "cpuMarginPercent")[5] == "`15.0`"
    assert _row("ResourceReport.status.pods[]", "qosClass")[3] == (
        "one of `Guaranteed`, `Burstable`, `BestEffort`"
    )


def test_nested_objects_link_to_their_own_section() -> None:
    text = render_api_docs()
    anchors = {re.sub(r"[^a-z0-9_-]", "", path.lower()) for path in _sections(text) if "." in path}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors
    assert "capacityrecommendationstatusfitnodes" in links


def test_a_map_field_says_what_it_maps_to() -> None:
    from headroom.api.apidocs import _type_of

    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert _type_of(schema) == "map of string to integer"


@pytest.mark.parametrize(
    ("name", "schema", "unit"),
    [
        ("memoryBytes", {"type": "integer"}, "bytes"),
        ("cpuCores", {"type": "number"}, "CPU cores (1.0 = one logical CPU busy)"),
        ("windowSeconds", {"type": "integer"}, "seconds"),
        ("collectedAt", {"type": "string", "format": "date-time"}, "RFC 3339 time"),
        (
            "cpuRequest",
            {"type": "string", "description": "as a Kubernetes quantity"},
            "Kubernetes quantity",
        ),
        ("logicalCores", {"type": "integer"}, "cores (a count)"),
        ("replicas", {"type": "integer"}, ""),
    ],
)
def test_units_follow_the_field_names(name: str, schema: dict[str, Any], unit: str) -> None:
    assert unit_of(name, schema) == unit


def test_docs_command_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "api.md"
    assert main(["docs", "api", "--check", "--output", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["docs", "api", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == render_api_docs()
    assert main(["docs", "api", "--check", "--output", str(page)]) == 0
    page.write_text(page.read_text(encoding="utf-8").replace("bytes", "octets"), encoding="utf-8")
    assert main(["docs", "api", "--check", "--output", str(page)]) == 1
