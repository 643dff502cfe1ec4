"""Figures as a person reads them in a reason string: ``188m``, ``423.5Mi``, ``3d 4h``."""

from __future__ import annotations

import math

from headroom.recommend.quantities import format_cpu

__all__ = ["describe_bytes", "describe_cores", "describe_duration"]

_BINARY = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def describe_cores(cores: float) -> str:
    """CPU in whole millicores, rounded up (``0.1875`` → ``"188m"``, ``2.0`` → ``"2"``)."""
    return format_cpu(cores)


def describe_bytes(memory_bytes: float) -> str:
    """Bytes in the largest binary unit, one decimal at most (``"423.5Mi"``, ``"1Gi"``)."""
    for suffix, unit in _BINARY:
        if memory_bytes >= unit:
            value = math.ceil(memory_bytes / unit * 10) / 10
            return f"{value:g}{suffix}"
    return f"{math.ceil(memory_bytes)}B"


def describe_duration(seconds: float) -> str:
    """A duration in its two largest units (``"3d 4h"``, ``"5h"``, ``"12m"``, ``"40s"``)."""
    whole = max(0, int(seconds))
    parts: list[str] = []
    for suffix, unit in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, unit)
        if count or (suffix == "s" and not parts):
            parts.append(f"{count}{suffix}")
        if len(parts) == 2 or (parts and not count):
            break
    return " ".join(parts)
