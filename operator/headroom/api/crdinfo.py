"""Names and printer columns of a custom resource, declared beside its model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CrdInfo", "PrinterColumn"]


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry (what ``kubectl get`` shows)."""

    name: str
    type: Literal["integer", "number", "string", "boolean", "date"]
    json_path: str
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CrdInfo:
    """What a CRD needs beyond the schema: names, scope and columns."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Namespaced", "Cluster"]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("headroom",)
    printer_columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
