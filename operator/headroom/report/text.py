"""How figures read in the terminal table and the HTML page (one spelling for both)."""

from __future__ import annotations

from headroom.api.capacityrecommendation import Fit
from headroom.api.gpu import GpuAdvice
from headroom.render import format_bytes

__all__ = [
    "format_age",
    "format_bytes",
    "format_cores",
    "format_fit_nodes",
    "format_gpu_advice",
    "format_share",
]


def format_cores(cores: float | None) -> str:
    """Cores with two decimals (``1.25``); ``-`` when unknown."""
    return "-" if cores is None else f"{cores:.2f}"


def format_share(part: float | None, whole: float | None) -> str:
    """``part`` as a whole percentage of ``whole`` (``25%``); empty when either is unknown."""
    if part is None or not whole:
        return ""
    return f"{part / whole * 100:.0f}%"


def format_age(seconds: float | None) -> str:
    """An age as kubectl prints one: ``45s``, ``12m``, ``3h``, ``2d``."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole}s"
    if whole < 2 * 3600:
        return f"{whole // 60}m"
    if whole < 2 * 86400:
        return f"{whole // 3600}h"
    return f"{whole // 86400}d"


def format_fit_nodes(fit: Fit | None, most: int = 3) -> str:
    """Where more replicas fit: ``node-a=3, node-b=1 (+4 nodes)``."""
    if fit is None:
        return "-"
    if not fit.nodes:
        return "nowhere"
    listed = ", ".join(f"{n.node}={n.replicas}" for n in fit.nodes[:most])
    more = fit.fittingNodeCount - min(most, len(fit.nodes))
    return listed + (f" (+{more} nodes)" if more > 0 else "")


def format_gpu_advice(advice: GpuAdvice | None) -> str:
    """One line of GPU advice: ``1 nvidia.com/gpu, 24.1Gi, p95 36%, 2 replicas, +4 fit, MIG 3g.40gb``."""
    if advice is None:
        return "-"
    parts = [f"{advice.requestPerReplica} {advice.resource}"]
    if advice.memoryNeededBytes is not None:
        parts.append(f"{format_bytes(advice.memoryNeededBytes)} GPU mem")
    if advice.utilizationPercent is not None:
        parts.append(f"p{advice.utilizationPercentile or 95:g} {advice.utilizationPercent:.0f}%")
    if advice.replicas is not None:
        parts.append(f"{advice.replicas} replicas")
    if advice.additionalReplicas is not None:
        parts.append(f"+{advice.additionalReplicas} fit")
    if advice.replicasPerSharedGpu is not None:
        parts.append(f"{advice.replicasPerSharedGpu}/shared GPU")
    if advice.smallestMigProfile:
        parts.append(f"MIG {advice.smallestMigProfile}")
    return ", ".join(parts)
