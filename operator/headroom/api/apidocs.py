"""Generate the API reference (``docs/api.md``) from the pydantic models.

The reference is read off the same structural schema the CRDs carry
(:func:`headroom.api.crdgen.generate_crd`), so its types and bounds are the
ones the API server enforces; defaults come from the models themselves (the
CRDs leave them out). Units follow the field-naming rule of the API: a name
ending in ``Bytes``, ``Cores``, ``Percent`` or ``Seconds`` is in that unit.

Pure: no I/O. ``headroom docs api`` writes the text; a unit test fails when the
checked-in page differs from what the models generate.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from headroom.api.common import GROUP, VERSION
from headroom.api.crdgen import MODELS, generate_crd
from headroom.api.crdinfo import CrdInfo

__all__ = ["API_DOCS_PATH", "FieldRow", "field_rows", "render_api_docs", "unit_of"]

#: Where the page lives, relative to the repository root.
API_DOCS_PATH = "docs/api.md"

_UNITS: tuple[tuple[str, str], ...] = (
    ("Bytes", "bytes"),
    ("Cores", "CPU cores (1.0 = one logical CPU busy)"),
    ("Percent", "percent"),
    ("Seconds", "seconds"),
)


@dataclass(frozen=True)
class FieldRow:
    """One field of one object, as the reference lists it."""

    path: str
    name: str
    type: str
    required: bool
    bounds: str
    unit: str
    default: str
    description: str


def unit_of(name: str, schema: dict[str, Any]) -> str:
    """The unit a field is in, from its name (and ``date-time`` strings)."""
    if name.endswith("Cores") and schema.get("type") == "integer":
        return "cores (a count)"
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    if schema.get("format") == "date-time":
        return "RFC 3339 time"
    if "Kubernetes quantity" in schema.get("description", ""):
        return "Kubernetes quantity"
    return ""


def _prose(text: str) -> str:
    """Docstring reStructuredText to Markdown: ````x```` to ```x```."""
    return re.sub(r"``([^`]+)``", r"`\1`", text.strip())


def _cell(text: str) -> str:
    """One line of a Markdown table cell: the first paragraph of ``text``."""
    first = _prose(text).split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|") or "–"


def _type_of(schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "object"))
    if kind == "array":
        items = schema.get("items", {})
        inner = "objects" if "properties" in items else f"{_type_of(items)}s"
        return f"array of {inner}"
    values = schema.get("additionalProperties")
    if kind == "object" and isinstance(values, dict) and "properties" not in schema:
        return f"map of string to {_type_of(values)}"
    if kind == "string" and schema.get("format") == "date-time":
        return "string (date-time)"
    if kind == "integer":
        return "integer"
    return kind


def _number_bounds(schema: dict[str, Any]) -> list[str]:
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open, high_open = schema.get("exclusiveMinimum") is True, schema.get("exclusiveMaximum")
    if low is not None and high is not None and not low_open and high_open is not True:
        return [f"{low:g}–{high:g}"]
    out: list[str] = []
    if low is not None:
        out.append(f"{'>' if low_open else '≥'} {low:g}")
    if high is not None:
        out.append(f"{'<' if high_open is True else '≤'} {high:g}")
    return out


def _bounds_of(schema: dict[str, Any]) -> str:
    parts = _number_bounds(schema)
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None and high is not None:
        parts.append(f"length {low}–{high}")
    elif high is not None:
        parts.append(f"length ≤ {high}")
    elif low is not None:
        parts.append(f"length ≥ {low}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if schema.get("type") == "array":
        if "maxItems" in schema:
            parts.append(f"≤ {schema['maxItems']} items")
        keys = schema.get("x-kubernetes-list-map-keys")
        if keys:
            parts.append("one per " + ", ".join(f"`{k}`" for k in keys))
        items = schema.get("items", {})
        if "properties" not in items:
            inner = _bounds_of(items)
            if inner:
                parts.append(f"each {inner}")
    return "; ".join(parts)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None``, ``list[X]`` or ``Annotated[...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def _default_of(model: type[BaseModel] | None, name: str) -> str:
    if model is None or name not in model.model_fields:
        return ""
    info = model.model_fields[name]
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined or info.default is None:
        return ""
    else:
        value = info.default
    if value in ([], {}, ""):
        return "empty"
    return f"`{value}`"


def field_rows(
    schema: dict[str, Any], model: type[BaseModel] | None, path: str = ""
) -> list[tuple[str, str, list[FieldRow]]]:
    """Every object under ``schema``, depth first: (path, description, its fields)."""
    required = set(schema.get("required", []))
    rows: list[FieldRow] = []
    nested: list[tuple[str, str, list[FieldRow]]] = []
    for name, sub in schema.get("properties", {}).items():
        sub_path = f"{path}.{name}" if path else name
        sub_model = (
            _nested_model(model.model_fields[name].annotation)
            if model is not None and name in model.model_fields
            else None
        )
        rows.append(
            FieldRow(
                path=sub_path,
                name=name,
                type=_type_of(sub),
                required=name in required,
                bounds=_bounds_of(sub),
                unit=unit_of(name, sub),
                default=_default_of(model, name),
                description=sub.get("description", ""),
            )
        )
        target = sub.get("items", {}) if sub.get("type") == "array" else sub
        if "properties" in target:
            nested += field_rows(target, sub_model, sub_path + ("[]" if target is not sub else ""))
    return [(path, schema.get("description", ""), rows), *nested]


def _anchor(path: str) -> str:
    """The anchor mkdocs (and GitHub) give a heading ``### `path` ``."""
    return re.sub(r"[^a-z0-9_-]", "", path.lower())


def _object_table(rows: list[FieldRow], objects: set[str]) -> list[str]:
    lines = [
        "| field | type | required | bounds | unit | default | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        shape = row.type
        for candidate in (row.path, row.path + "[]"):
            if candidate in objects:
                shape = f"[{row.type}](#{_anchor(candidate)})"
        lines.append(
            f"| `{row.name}` | {shape} | {'yes' if row.required else 'no'} | "
            f"{_cell(row.bounds)} | {_cell(row.unit)} | {_cell(row.default)} | "
            f"{_cell(row.description)} |"
        )
    return lines


def _resource_section(model: type[BaseModel]) -> list[str]:
    info: CrdInfo = model.crd  # type: ignore[attr-defined]
    crd = generate_crd(model)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    lines = [
        f"## {info.kind}",
        "",
        _prose(model.__doc__ or ""),
        "",
        f"- API version: `{GROUP}/{VERSION}`; kind `{info.kind}`; "
        + ("cluster-scoped" if info.scope == "Cluster" else "namespaced"),
        f"- names: `{info.plural}` (plural), `{info.singular}`"
        + "".join(f", `{short}`" for short in info.short_names)
        + " (short); categories: "
        + ", ".join(f"`{c}`" for c in info.categories),
        "- subresources: `status`",
        "",
    ]
    module_doc = sys.modules[model.__module__].__doc__ or ""
    # The module's first line repeats the kind; its further paragraphs explain it.
    more = _prose(module_doc).partition("\n\n")[2]
    if more:
        lines += [" ".join(more.split()), ""]
    lines += [
        f"### `kubectl get {info.short_names[0] if info.short_names else info.plural}` columns",
        "",
        "| column | type | JSON path | description |",
        "|---|---|---|---|",
    ]
    for column in info.printer_columns:
        lines.append(
            f"| {column.name.upper()} | {column.type} | `{column.json_path}` | "
            f"{_cell(column.description)} |"
        )
    lines.append("")
    # Headings name the kind too (`ResourceReport.status.cpu`): both kinds have a
    # `spec` and a `status`, and a heading's anchor must be unique on the page.
    objects = field_rows(schema, model, info.kind)
    paths = {path for path, _, _ in objects}
    for path, description, rows in objects:
        if path == info.kind:
            lines += [f"### Fields of `{path}`", ""]
        else:
            lines += [f"### `{path}`", ""]
            if description:
                lines += [_prose(description), ""]
        lines += [*_object_table(rows, paths), ""]
    return lines


def render_api_docs() -> str:
    """The whole of ``docs/api.md``."""
    lines = [
        "<!-- Generated by `headroom docs api` from operator/headroom/api; do not edit. -->",
        "",
        "# API reference",
        "",
        f"Headroom's custom resources, group `{GROUP}`, version `{VERSION}`. This page is",
        "generated from the pydantic models in `operator/headroom/api/`, the same single",
        "source of truth as the CRDs in `crds/`: types and bounds are the ones the API",
        "server enforces. Regenerate it with `uv run headroom docs api`; a unit test fails",
        "when it is stale.",
        "",
        "Fields whose value is unknown are left out rather than sent as `null`. Optional",
        "fields have required `no`; lists marked “one per `key`” are list-maps that",
        "server-side apply merges by that key.",
        "",
    ]
    for model in MODELS:
        lines += _resource_section(model)
    return "\n".join(lines).rstrip() + "\n"
