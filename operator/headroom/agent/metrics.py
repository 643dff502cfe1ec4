"""Prometheus metrics of the agent, served on the admin endpoint's ``/metrics``.

Imported only when the endpoint is on (prometheus-client costs ~3 MB of RSS,
PR-002). The metrics live in their own registry, not the process-global one,
so each agent (and each test) has its own.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from headroom.collection.figures import ReportStatus

__all__ = ["AgentMetrics"]


class AgentMetrics:
    """The agent's counters; implements the loop's ``CycleMetrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # process_resident_memory_bytes, process_cpu_seconds_total: PR-002, PR-003.
        ProcessCollector(registry=self.registry)
        self.cycles = Counter(
            "headroom_agent_collection_cycles_total",
            "Collections of the node's figures",
            registry=self.registry,
        )
        self.cycle_seconds = Histogram(
            "headroom_agent_collection_duration_seconds",
            "Time one collection of the node's figures takes (PR-001)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.writes = Counter(
            "headroom_agent_report_writes_total",
            "Successful writes of the node's ResourceReport",
            registry=self.registry,
        )
        self.write_failures = Counter(
            "headroom_agent_report_write_failures_total",
            "Failed writes of the ResourceReport by HTTP status (0: API server unreachable)",
            ["status"],
            registry=self.registry,
        )
        self.last_write = Gauge(
            "headroom_agent_last_successful_write_timestamp_seconds",
            "Wall-clock time of the last successful report write (Unix seconds)",
            registry=self.registry,
        )
        self.pods = Gauge(
            "headroom_agent_pods",
            "Pods seen on the node in the latest collection",
            registry=self.registry,
        )

    def collected(self, status: ReportStatus, seconds: float) -> None:
        """One collection done in ``seconds``."""
        self.cycles.inc()
        self.cycle_seconds.observe(seconds)
        self.pods.set(status.podCount)

    def written(self, at: datetime) -> None:
        """The report was written at ``at``."""
        self.writes.inc()
        self.last_write.set(at.timestamp())

    def write_failed(self, status: int) -> None:
        """A write failed with HTTP ``status`` (0 when nothing answered)."""
        self.write_failures.labels(str(status)).inc()
