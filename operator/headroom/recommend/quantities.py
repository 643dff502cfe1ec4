"""Kubernetes quantities: parse them, print them, round requests to readable steps,
and add up what a pod asks for.

Parsing follows the API server's grammar (``resource.Quantity``): a signed
decimal number, then either a binary suffix (``Ki Mi Gi Ti Pi Ei``), a decimal
suffix (``n u m k M G T P E``, case sensitive: ``m`` is milli, ``M`` mega) or a
decimal exponent (``e3``, ``E-2``). The arithmetic is exact (:class:`Decimal`);
bytes are rounded *up* to a whole byte, as the API server's ``Value()`` does.

Recommendations are rounded *up* to steps so that a figure does not move with
every cycle's noise and reads like something a person would have written:

* CPU: a multiple of 10m up to 1 core, of 50m above (at most +10 % at 100m,
  at most +5 % from 1 core on);
* memory: a multiple of 16Mi up to 1Gi, of 64Mi above (at most +6.25 % from
  256Mi on and from 1Gi on).

VPA's recommender can round up to one fixed multiple
(``--round-cpu-millicores``, ``--round-memory-bytes``; off by default), the
same step for 50m as for 50 cores; here the step grows with the figure so the
rounding stays a small share of it. KRR does not round.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CPU_FINE_STEP_MILLICORES",
    "CPU_STEP_MILLICORES",
    "MEMORY_FINE_STEP_BYTES",
    "MEMORY_STEP_BYTES",
    "format_cpu",
    "format_memory",
    "parse_cpu_cores",
    "parse_memory_bytes",
    "parse_quantity",
    "pod_level_requests",
    "pod_requests",
    "round_up_cpu_cores",
    "round_up_memory_bytes",
    "sum_container_requests",
]

KI = 1024
MI = 1024**2
GI = 1024**3

CPU_FINE_STEP_MILLICORES = 10
"""CPU requests up to 1 core are rounded up to a multiple of this (10m)."""
CPU_STEP_MILLICORES = 50
"""CPU requests above 1 core are rounded up to a multiple of this (50m)."""
MEMORY_FINE_STEP_BYTES = 16 * MI
"""Memory requests up to 1Gi are rounded up to a multiple of this (16Mi)."""
MEMORY_STEP_BYTES = 64 * MI
"""Memory requests above 1Gi are rounded up to a multiple of this (64Mi)."""

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exponent>[eE][+-]?[0-9]{1,3})|(?P<suffix>[KMGTPE]i|[numkMGTPE])?)"
)
_LARGEST = Decimal(2**63 - 1)  # the API server's int64 bound
_BINARY_UNITS = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", GI), ("Mi", MI), ("Ki", KI))


def parse_quantity(quantity: str | int | float) -> Decimal:
    """The exact value of a Kubernetes quantity (``"250m"`` → ``Decimal("0.250")``).

    ``int`` and ``float`` are accepted too (a hand-written manifest may say
    ``cpu: 2``). Raises :class:`ValueError` for anything else, for values
    beyond the API server's int64 bound, and for NaN or infinity.
    """
    if isinstance(quantity, bool):
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    if isinstance(quantity, int | float):
        if not math.isfinite(quantity):
            raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
        value = Decimal(str(quantity))
    elif isinstance(quantity, str):
        match = _QUANTITY.fullmatch(quantity)
        if match is None:
            raise ValueError(
                f"not a Kubernetes quantity: {quantity!r} "
                "(expected a number with an optional suffix, e.g. '250m', '1.5', '512Mi', '1e3')"
            )
        try:
            value = Decimal(match["number"])
            if match["exponent"]:
                value = value.scaleb(int(match["exponent"][1:]))
            else:
                value *= _SUFFIXES[match["suffix"] or ""]
        except InvalidOperation as error:  # pragma: no cover - the pattern admits none
            raise ValueError(f"not a Kubernetes quantity: {quantity!r}") from error
    else:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    if abs(value) > _LARGEST:
        raise ValueError(f"quantity out of range: {quantity!r}")
    return value


def parse_cpu_cores(quantity: str | int | float) -> float:
    """CPU in cores: ``"250m"`` → 0.25, ``"2"`` → 2.0. Negative values are refused."""
    value = parse_quantity(quantity)
    if value < 0:
        raise ValueError(f"CPU cannot be negative: {quantity!r}")
    return float(value)


def parse_memory_bytes(quantity: str | int | float) -> int:
    """Memory in bytes, rounded up to a whole byte: ``"1Gi"`` → 1073741824, ``"129e6"`` → 129000000."""
    value = parse_quantity(quantity)
    if value < 0:
        raise ValueError(f"memory cannot be negative: {quantity!r}")
    return math.ceil(value)


def _millicores_up(cores: float) -> int:
    """Cores in whole millicores, rounded up; 1e-6 m of float noise is forgiven (0.29 → 290)."""
    if not math.isfinite(cores) or cores < 0:
        raise ValueError(f"CPU must be a finite, non-negative number of cores: {cores!r}")
    return max(0, math.ceil(cores * 1000 - 1e-6))


def format_cpu(cores: float) -> str:
    """Cores as the API server would print them: ``"250m"``, ``"1"``, ``"1500m"``.

    Whole cores print without a suffix; anything else in millicores (rounded up
    to a whole millicore, the finest CPU the API server keeps).
    """
    millicores = _millicores_up(cores)
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(memory_bytes: int | float) -> str:
    """Bytes as a binary quantity with the largest exact suffix: ``"512Mi"``, ``"1Gi"``, ``"1536Mi"``.

    A fractional byte count is rounded up; a count that is not a multiple of
    1Ki is printed as plain bytes.
    """
    if not math.isfinite(memory_bytes) or memory_bytes < 0:
        raise ValueError(f"memory must be a finite, non-negative number of bytes: {memory_bytes!r}")
    whole = math.ceil(memory_bytes)
    for suffix, unit in _BINARY_UNITS:
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)


def round_up_cpu_cores(cores: float) -> float:
    """Round a CPU request up: to 10m up to 1 core, to 50m above (0.207 → 0.21, 1.01 → 1.05)."""
    millicores = _millicores_up(cores)
    step = CPU_FINE_STEP_MILLICORES if millicores <= 1000 else CPU_STEP_MILLICORES
    return -(-millicores // step) * step / 1000


def round_up_memory_bytes(memory_bytes: float) -> int:
    """Round a memory request up: to 16Mi up to 1Gi, to 64Mi above (500Mi → 512Mi, 1.1Gi → 1152Mi)."""
    if not math.isfinite(memory_bytes) or memory_bytes < 0:
        raise ValueError(f"memory must be a finite, non-negative number of bytes: {memory_bytes!r}")
    whole = math.ceil(memory_bytes)
    step = MEMORY_FINE_STEP_BYTES if whole <= GI else MEMORY_STEP_BYTES
    return -(-whole // step) * step


def _request(container: Mapping[str, Any], resource: str) -> Decimal | None:
    """A container's request for one resource; its limit when only the limit is set.

    The API server defaults a missing request to the limit when it creates the
    pod, so a template with only limits schedules as if it asked for them.
    """
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        value = (resources.get(kind) or {}).get(resource)
        if value is not None:
            found = parse_quantity(value)
            if found < 0:
                raise ValueError(f"{resource} {kind} cannot be negative: {value!r}")
            return found
    return None


def _effective(
    containers: Sequence[Mapping[str, Any]],
    init_containers: Sequence[Mapping[str, Any]],
    resource: str,
) -> Decimal | None:
    found = False
    regular = Decimal(0)
    for container in containers:
        value = _request(container, resource)
        if value is not None:
            found = True
            regular += value
    sidecars = Decimal(0)
    init_peak = Decimal(0)
    for container in init_containers:
        value = _request(container, resource)
        found = found or value is not None
        value = value or Decimal(0)
        if container.get("restartPolicy") == "Always":
            sidecars += value
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, value + sidecars)
    return max(regular + sidecars, init_peak) if found else None


def sum_container_requests(
    containers: Sequence[Mapping[str, Any]],
    init_containers: Sequence[Mapping[str, Any]] = (),
) -> tuple[float | None, int | None]:
    """What one pod asks the scheduler for: ``(cpu cores, memory bytes)``.

    Computed as the scheduler does (``resource.PodRequests``): init containers
    run one after another before the regular ones, so the pod needs
    ``max(sum of the regular containers, the largest init container)`` of each
    resource, not their sum. Sidecars (init containers with
    ``restartPolicy: Always``) keep running, so they add to the regular
    containers and to every init container that starts after them.

    A container without a request counts as 0 (its limit stands in when only
    the limit is set, as the API server defaults it). A resource that no
    container names at all is ``None``: "not requested" differs from "0".
    Raises :class:`ValueError` for a quantity that does not parse.
    """
    cpu = _effective(containers, init_containers, "cpu")
    memory = _effective(containers, init_containers, "memory")
    return (
        None if cpu is None else float(cpu),
        None if memory is None else math.ceil(memory),
    )


def pod_level_requests(pod_spec: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """The pod-level ``spec.resources`` requests (PodLevelResources): ``(cpu, memory)``.

    A resource with only a pod-level limit counts as requesting that limit
    (the API server defaults the pod-level request to it). ``None`` for a
    resource the pod level does not name.
    """
    resources = pod_spec.get("resources")
    if not resources:
        return None, None
    cpu = _request({"resources": resources}, "cpu")
    memory = _request({"resources": resources}, "memory")
    return (
        None if cpu is None else float(cpu),
        None if memory is None else math.ceil(memory),
    )


def pod_requests(pod_spec: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """What a pod (template) asks the scheduler for, as ``resource.PodRequests`` counts it.

    Pod-level ``spec.resources`` (PodLevelResources, on by default in
    Kubernetes 1.37) stand for the whole pod: a resource they name is counted
    at that figure, whatever the containers ask; the others are
    :func:`sum_container_requests`. The pod overhead a RuntimeClass sets
    (``spec.overhead``) is added to either, as the scheduler adds it.
    """
    cpu, memory = sum_container_requests(
        pod_spec.get("containers") or [], pod_spec.get("initContainers") or []
    )
    pod_cpu, pod_memory = pod_level_requests(pod_spec)
    if pod_cpu is not None:
        cpu = pod_cpu
    if pod_memory is not None:
        memory = pod_memory
    overhead = pod_spec.get("overhead") or {}
    if "cpu" in overhead:
        cpu = (cpu or 0.0) + parse_cpu_cores(overhead["cpu"])
    if "memory" in overhead:
        memory = (memory or 0) + parse_memory_bytes(overhead["memory"])
    return cpu, memory
