"""One batch: every expert's recommendation from the in-memory state (pure).

Free capacity is reduced once per batch (:func:`~headroom.recommend.fit.free_capacity`)
and reused for every expert, so a batch costs one pass over the nodes plus
one cheap step per expert, not nodes × experts look-ups through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from headroom.api import CapacityRecommendationStatus, Condition
from headroom.api.capacityrecommendation import CurrentSizing, Fit
from headroom.controller.state import ClusterState, ExpertInfo, ExpertKey
from headroom.recommend.fit import FreeCapacity, NodeCapacity, exclusion_reason, free_capacity
from headroom.recommend.policy import SizingDefaults, policy_from_annotations
from headroom.recommend.quantities import format_cpu, format_memory
from headroom.recommend.sizing import recommend

__all__ = ["BatchResult", "compute_batch", "node_capacities"]


@dataclass
class BatchResult:
    """What a batch decided: a status per expert, and which reports are stale."""

    statuses: dict[ExpertKey, tuple[ExpertInfo, CapacityRecommendationStatus]] = field(
        default_factory=dict
    )
    stale_reports: dict[str, str] = field(default_factory=dict)
    fresh_reports: int = 0


def node_capacities(
    state: ClusterState, now: datetime, stale_heartbeats: int
) -> tuple[list[NodeCapacity], dict[str, str]]:
    """Every Node as fit sees it, and the stale reports with their reasons."""
    capacities, stale = [], {}
    for name, node in state.nodes.items():
        report = state.reports.get(name)
        reason = exclusion_reason(
            now=now,
            report_collected_at=report.collected_at if report else None,
            heartbeat_seconds=report.heartbeat_seconds if report else None,
            unschedulable=node.unschedulable,
            ready="NotReady" not in node.problems,
            pressures=[p for p in node.problems if p != "NotReady"],
            stale_after_heartbeats=stale_heartbeats,
        )
        if report is not None and reason and "stale report" in reason:
            stale[name] = next(r for r in reason.split("; ") if r.startswith("stale report"))
        requested = state.node_requests.get(name, (0.0, 0.0))
        capacities.append(
            NodeCapacity(
                name=name,
                allocatable_cpu_cores=node.allocatable_cpu,
                allocatable_memory_bytes=node.allocatable_memory,
                requested_cpu_cores=max(0.0, requested[0]),
                requested_memory_bytes=max(0, int(requested[1])),
                report_free_cpu_cores=report.free_cpu if report else None,
                report_available_memory_bytes=report.available_memory if report else None,
                exclusion=reason,
            )
        )
    return capacities, stale


def _conditions(now: datetime, problems: list[str], samples: int) -> list[Condition]:
    conditions = [
        Condition(
            type="PolicyValid",
            status="False" if problems else "True",
            reason="BadAnnotations" if problems else "AnnotationsValid",
            message="; ".join(problems),
            lastTransitionTime=now,
        ),
        Condition(
            type="Ready",
            status="True" if samples else "False",
            reason="Recommended" if samples else "NoUsageYet",
            message="" if samples else "no usage samples yet: requests kept as they are",
            lastTransitionTime=now,
        ),
    ]
    return conditions


def _current(expert: ExpertInfo) -> CurrentSizing:
    return CurrentSizing(
        replicas=expert.replicas,
        cpuRequestCores=expert.cpu_request,
        cpuRequest=None if expert.cpu_request is None else format_cpu(expert.cpu_request),
        memoryRequestBytes=expert.memory_request,
        memoryRequest=None
        if expert.memory_request is None
        else format_memory(expert.memory_request),
    )


def recommend_one(
    state: ClusterState,
    expert: ExpertInfo,
    free: FreeCapacity,
    defaults: SizingDefaults,
    fresh_nodes: set[str],
    now: datetime,
) -> CapacityRecommendationStatus:
    """The status of one expert's recommendation."""
    key = (expert.namespace, expert.name)
    policy, problems = policy_from_annotations(defaults, expert.annotations)
    history = state.history(key, now)
    history.prune(now, defaults.window_seconds)
    per_node = state.usage.get(key, {})
    fresh = [usage for node, usage in per_node.items() if node in fresh_nodes]
    total_cpu = sum(u[0] for u in fresh) if fresh else None
    total_memory = sum(u[1] for u in fresh) if fresh else None
    current = _current(expert)
    recommended, evidence = recommend(
        history,
        policy,
        current,
        total_cpu,
        now,
        defaults=defaults,
        total_memory_usage_bytes=total_memory,
    )
    fit: Fit = free.fit(recommended.cpuRequestCores, recommended.memoryRequestBytes)
    return CapacityRecommendationStatus(
        observedGeneration=expert.generation,
        policy=policy,
        current=current,
        recommended=recommended,
        fit=fit,
        evidence=evidence,
        history=history.to_model(),
        conditions=_conditions(now, problems, history.samples),
    )


def compute_batch(
    state: ClusterState, defaults: SizingDefaults, now: datetime, stale_heartbeats: int = 3
) -> BatchResult:
    """Recompute every expert's recommendation from the state as it is now."""
    capacities, stale = node_capacities(state, now, stale_heartbeats)
    free = free_capacity(capacities)
    fresh_nodes = {name for name in state.reports if name not in stale}
    result = BatchResult(stale_reports=stale, fresh_reports=len(fresh_nodes))
    for key, expert in state.experts.items():
        result.statuses[key] = (
            expert,
            recommend_one(state, expert, free, defaults, fresh_nodes, now),
        )
    return result
