"""Generate CustomResourceDefinitions from the pydantic models.

kopf does not generate CRDs (kopf issue #524), and pydantic's JSON Schema is
not what the API server accepts, so this module turns one into the other:

* every ``$ref`` is inlined (a structural schema has no references);
* ``Optional[X]`` becomes ``X`` left out of ``required`` (the agent and the
  controller never send ``null``: :meth:`ApiModel.to_wire` drops it);
* draft 2020-12 numeric ``exclusiveMinimum``/``exclusiveMaximum`` become the
  OpenAPI v3.0 boolean form the API server validates with;
* ``additionalProperties: false`` is dropped (unknown fields are pruned);
* ``title``, ``default`` on nested objects and other keys the API server
  rejects or ignores are removed; ``x-kubernetes-*`` extensions are kept.

The output is deterministic, so ``crds/`` can be checked in and compared.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from headroom.api.capacityrecommendation import CapacityRecommendation
from headroom.api.common import GROUP, VERSION
from headroom.api.crdinfo import CrdInfo
from headroom.api.resourcereport import ResourceReport

__all__ = ["MODELS", "crd_filename", "generate_crd", "render_all", "write_all"]

MODELS: tuple[type[BaseModel], ...] = (ResourceReport, CapacityRecommendation)

_KEEP_KEYS = {
    "type",
    "format",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "additionalProperties",
}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref`` and collapse ``anyOf [X, null]`` to ``X``."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = copy.deepcopy(defs[name])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        choices = [c for c in node["anyOf"] if c.get("type") != "null"]
        if len(choices) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node['anyOf']}")
        merged = {**choices[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _resolve(merged, defs)
    return {key: _resolve(value, defs) for key, value in node.items()}


def _to_openapi(node: Any) -> Any:
    """Translate one resolved JSON Schema node into Kubernetes' OpenAPI v3 subset."""
    if isinstance(node, list):
        return [_to_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: _to_openapi(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _to_openapi(value)
        elif key == "additionalProperties":
            # ``extra="forbid"`` gives ``false``; the API server prunes unknown
            # fields instead and refuses ``additionalProperties`` beside ``properties``.
            continue
        elif key in _KEEP_KEYS:
            out[key] = value
    if "enum" in out and "type" not in out:
        kinds = {type(v) for v in out["enum"]}
        if kinds == {str}:
            out["type"] = "string"
    if out.get("type") == "integer" and "format" not in out:
        out["format"] = "int64"
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.pop("$defs", {})
    resolved = _resolve(raw, defs)
    schema: dict[str, Any] = _to_openapi(resolved)
    properties = schema["properties"]
    # The API server owns metadata's schema; apiVersion/kind are plain strings.
    properties["metadata"] = {"type": "object"}
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    schema["required"] = sorted(set(schema.get("required", [])) - {"metadata", "apiVersion"})
    schema.pop("description", None)
    schema["description"] = (model.__doc__ or "").strip().splitlines()[0]
    return schema


def generate_crd(model: type[BaseModel]) -> dict[str, Any]:
    """Build the CustomResourceDefinition for one API model."""
    info: CrdInfo = model.crd  # type: ignore[attr-defined]
    columns = [
        {
            "name": col.name,
            "type": col.type,
            "jsonPath": col.json_path,
            **({"description": col.description} if col.description else {}),
            **({"priority": col.priority} if col.priority else {}),
        }
        for col in info.printer_columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "headroom"},
        },
        "spec": {
            "group": GROUP,
            "scope": info.scope,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": _schema_of(model)},
                }
            ],
        },
    }


def crd_filename(model: type[BaseModel]) -> str:
    """``<group>_<plural>.yaml``, the kubebuilder naming."""
    info: CrdInfo = model.crd  # type: ignore[attr-defined]
    return f"{GROUP}_{info.plural}.yaml"


def render_all() -> dict[str, str]:
    """Every CRD as YAML text, keyed by file name."""
    header = "# Generated by `headroom crds` from operator/headroom/api; do not edit.\n"
    return {
        crd_filename(model): header + yaml.safe_dump(generate_crd(model), sort_keys=False)
        for model in MODELS
    }


def write_all(*directories: Path) -> list[Path]:
    """Write every CRD into each directory; returns the files written."""
    written: list[Path] = []
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in render_all().items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
