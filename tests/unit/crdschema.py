"""Validate objects with the schema of the checked-in CRD (not a copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _no_unknown_fields(node: Any) -> Any:
    """The API server prunes unknown fields silently; here they are errors instead."""
    if isinstance(node, dict):
        out = {key: _no_unknown_fields(value) for key, value in node.items()}
        if "properties" in node:
            out["properties"] = {k: _no_unknown_fields(v) for k, v in node["properties"].items()}
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_no_unknown_fields(item) for item in node]
    return node


def crd_validator(plural: str) -> jsonschema.Draft4Validator:
    """A validator for the openAPIV3Schema in ``crds/headroom.dev_<plural>.yaml``.

    Kubernetes' OpenAPI v3.0 subset uses draft-4 semantics (boolean
    ``exclusiveMinimum``), so Draft4Validator reads it as the API server does.
    Fields the schema does not know are refused, so nothing we send is pruned.
    """
    crd: dict[str, Any] = yaml.safe_load(
        (ROOT / "crds" / f"headroom.dev_{plural}.yaml").read_text()
    )
    schema = _no_unknown_fields(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
