"""Where more replicas of the recommended size fit right now, node by node.

A node's free room is the tighter of two views, per resource:

* the **scheduler's**: allocatable − the requests of the pods already bound
  to it — beyond that the scheduler will not place a pod, whatever it uses;
* the **agent's**: what the ResourceReport measured as unused — idle CPU
  (logical cores × (1 − utilisation)) and ``MemAvailable`` — which is tighter
  when pods use more than they request or processes outside Kubernetes run.

Replicas on a node = ⌊min(free CPU ÷ CPU request, free memory ÷ memory
request)⌋, limited by whichever resource gives the smaller quotient (CPU on a
tie). CPU is counted in whole millicores (the API server's precision) and
memory in whole KiB, requests rounded up and free room down, so
replicas × request ≤ free holds exactly, never by a rounding error.

Nodes left out of fit (stale report, cordoned, not ready, under pressure, no
report; CT: stale reports flagged and left out) are listed with their reason.
The total counts every node; the lists are capped (20 each by default, the
fullest nodes first and then by name; excluded ones by name) to keep the
status small, with the full counts beside them.

Neither VPA nor KRR answers "where does it fit": VPA leaves placement to the
scheduler (its admission controller may even size a pod beyond any node),
KRR looks at workloads only.

**Speed.** :func:`free_capacity` reduces the nodes once per cycle to flat
integer arrays; :meth:`FreeCapacity.fit` then costs one tight pass over them
per expert, and experts asking for the same (rounded) requests share it
through a cache. Nodes are listed per expert only where the answer is
non-zero. Placement constraints that differ per expert (node selectors,
affinity, taints) are not modelled: the caller may pass each expert its own
node list.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from operator import floordiv, ge

from headroom.api.capacityrecommendation import Fit
from headroom.api.resourcereport import CpuFigures

__all__ = [
    "MAX_LISTED",
    "FreeCapacity",
    "NodeCapacity",
    "compute_fit",
    "exclusion_reason",
    "free_capacity",
    "report_free_cpu_cores",
]

MAX_LISTED = 20
"""At most this many nodes are listed in ``fit.nodes`` and in ``fit.excludedNodes``."""
_KI = 1024
_NOISE = 1e-6  # millicores of float noise forgiven when converting cores


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """One node as the fit sees it; built by the caller from the Node, its pods and its report.

    ``requested_*`` is the sum of the requests of the pods bound to the node
    (all of them, this expert's own included). ``report_*`` is ``None`` when
    there is no usable report; ``exclusion`` is the reason to leave the node
    out (see :func:`exclusion_reason`), ``None`` to include it.
    """

    name: str
    allocatable_cpu_cores: float
    allocatable_memory_bytes: int
    requested_cpu_cores: float
    requested_memory_bytes: int
    report_free_cpu_cores: float | None = None
    report_available_memory_bytes: int | None = None
    exclusion: str | None = None


def report_free_cpu_cores(cpu: CpuFigures) -> float:
    """Idle CPU by the agent's measure: logical cores × (1 − utilisation %)."""
    return cpu.logicalCores * max(0.0, 1 - cpu.utilizationPercent / 100)


def exclusion_reason(
    *,
    now: datetime,
    report_collected_at: datetime | None,
    heartbeat_seconds: float | None,
    unschedulable: bool = False,
    ready: bool = True,
    pressures: Iterable[str] = (),
    stale_after_heartbeats: int = 3,
) -> str | None:
    """Why a node is left out of fit (all reasons, ``"; "``-joined), or ``None``.

    A report is stale when it is older than ``stale_after_heartbeats`` of the
    agent's heartbeats (CT: no heartbeat for 3 periods). ``pressures`` names
    the node conditions that are true (``MemoryPressure``, ``DiskPressure``,
    ``PIDPressure``).
    """
    reasons = []
    if report_collected_at is None:
        reasons.append("no ResourceReport")
    elif heartbeat_seconds is not None:
        age = (now - report_collected_at).total_seconds()
        limit = stale_after_heartbeats * heartbeat_seconds
        if age > limit:
            reasons.append(
                f"stale report: {age:.0f}s old, more than {stale_after_heartbeats} × "
                f"{heartbeat_seconds:g}s heartbeat"
            )
    if unschedulable:
        reasons.append("cordoned")
    if not ready:
        reasons.append("not Ready")
    pressing = sorted(pressures)
    if pressing:
        reasons.append("under " + ", ".join(pressing))
    return "; ".join(reasons) or None


def _free_millicores(node: NodeCapacity) -> int:
    scheduler = math.floor(node.allocatable_cpu_cores * 1000 + _NOISE) - math.ceil(
        node.requested_cpu_cores * 1000 - _NOISE
    )
    if node.report_free_cpu_cores is not None:
        scheduler = min(scheduler, math.floor(node.report_free_cpu_cores * 1000 + _NOISE))
    return max(0, scheduler)


def _free_kib(node: NodeCapacity) -> int:
    free = math.floor(node.allocatable_memory_bytes) - math.ceil(node.requested_memory_bytes)
    if node.report_available_memory_bytes is not None:
        free = min(free, math.floor(node.report_available_memory_bytes))
    return max(0, free) // _KI


class FreeCapacity:
    """The free room of every included node as flat arrays, and the excluded nodes.

    Build it once per cycle with :func:`free_capacity`, then call
    :meth:`fit` for each expert. Immutable once built; results are cached per
    (CPU millicores, memory KiB) request.
    """

    __slots__ = ("_cache", "cpu_millicores", "excluded", "memory_kib", "names")

    def __init__(
        self,
        names: tuple[str, ...],
        cpu_millicores: tuple[int, ...],
        memory_kib: tuple[int, ...],
        excluded: tuple[tuple[str, str], ...],
    ) -> None:
        self.names = names
        self.cpu_millicores = cpu_millicores
        self.memory_kib = memory_kib
        self.excluded = excluded
        self._cache: dict[
            tuple[int, int, int], tuple[int, int, tuple[tuple[str, int, bool], ...]]
        ] = {}

    def _solve(
        self, cpu_m: int, memory_k: int, max_listed: int
    ) -> tuple[int, int, tuple[tuple[str, int, bool], ...]]:
        """(total, nodes with room, listed (name, replicas, limited by CPU)) — the hot loop."""
        cpus, memories = self.cpu_millicores, self.memory_kib
        per_node = [
            c if c < m else m
            for c, m in zip(
                map(floordiv, cpus, repeat(cpu_m)),
                map(floordiv, memories, repeat(memory_k)),
                strict=True,
            )
        ]
        total = sum(per_node)
        if not total:
            return 0, 0, ()
        fitting = len(per_node) - per_node.count(0)
        if max_listed <= 0:
            return total, fitting, ()
        if fitting <= max_listed:
            chosen = list(compress(range(len(per_node)), per_node))
        else:
            lowest = heapq.nlargest(max_listed, per_node)[-1]
            chosen = list(compress(range(len(per_node)), map(ge, per_node, repeat(lowest))))
        # Stable sort: ties keep the arrays' order, which is by name.
        chosen.sort(key=per_node.__getitem__, reverse=True)
        listed = tuple(
            (self.names[i], per_node[i], cpus[i] // cpu_m <= memories[i] // memory_k)
            for i in chosen[:max_listed]
        )
        return total, fitting, listed

    def fit(
        self, cpu_request_cores: float, memory_request_bytes: int, *, max_listed: int = MAX_LISTED
    ) -> Fit:
        """How many more pods asking for these requests fit, and where (a fresh :class:`Fit`)."""
        if not cpu_request_cores > 0 or not memory_request_bytes > 0:
            raise ValueError(
                f"requests must be positive to fit, got {cpu_request_cores!r} cores, "
                f"{memory_request_bytes!r} bytes"
            )
        cpu_m = max(1, math.ceil(cpu_request_cores * 1000 - _NOISE))
        memory_k = -(-math.ceil(memory_request_bytes) // _KI)
        key = (cpu_m, memory_k, max_listed)
        solved = self._cache.get(key)
        if solved is None:
            solved = self._cache[key] = self._solve(cpu_m, memory_k, max_listed)
        total, fitting, listed = solved
        # One validation of plain data is the cheapest way to a fresh Fit.
        return Fit.model_validate(
            {
                "additionalReplicas": total,
                "nodes": [
                    {"node": name, "replicas": count, "limitedBy": "cpu" if by_cpu else "memory"}
                    for name, count, by_cpu in listed
                ],
                "fittingNodeCount": fitting,
                "excludedNodes": [
                    {"node": name, "reason": reason}
                    for name, reason in self.excluded[: max(0, max_listed)]
                ],
                "excludedNodeCount": len(self.excluded),
            }
        )


def free_capacity(nodes: Iterable[NodeCapacity]) -> FreeCapacity:
    """Reduce nodes to their free room (once per cycle); :class:`ValueError` on a repeated name."""
    ordered = sorted(nodes, key=lambda node: node.name)
    names = [node.name for node in ordered]
    if len(set(names)) != len(names):
        raise ValueError("node names must be unique")
    included = [node for node in ordered if node.exclusion is None]
    return FreeCapacity(
        names=tuple(node.name for node in included),
        cpu_millicores=tuple(_free_millicores(node) for node in included),
        memory_kib=tuple(_free_kib(node) for node in included),
        excluded=tuple(
            (node.name, node.exclusion) for node in ordered if node.exclusion is not None
        ),
    )


def compute_fit(
    nodes: Iterable[NodeCapacity],
    cpu_request_cores: float,
    memory_request_bytes: int,
    *,
    max_listed: int = MAX_LISTED,
) -> Fit:
    """The fit of one expert; for many, build :func:`free_capacity` once and call ``fit``."""
    return free_capacity(nodes).fit(cpu_request_cores, memory_request_bytes, max_listed=max_listed)
