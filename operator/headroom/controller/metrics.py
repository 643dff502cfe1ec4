"""Prometheus metrics of the controller (prometheus-client)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "API_ERRORS",
    "IS_LEADER",
    "RECOMMENDATIONS_WRITTEN",
    "RECOMPUTE_SECONDS",
    "REPORTS",
    "REPORTS_IGNORED",
    "REPORT_TO_RECOMMENDATION_SECONDS",
]

RECOMPUTE_SECONDS = Histogram(
    "headroom_recompute_duration_seconds",
    "Time to recompute every recommendation in one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REPORTS = Gauge("headroom_reports", "ResourceReports by freshness", ["freshness"])
RECOMMENDATIONS_WRITTEN = Counter(
    "headroom_recommendations_written_total", "CapacityRecommendation writes", ["operation"]
)
REPORTS_IGNORED = Counter(
    "headroom_reports_ignored_total", "ResourceReport writes ignored as malformed (CT-006)"
)
API_ERRORS = Counter("headroom_api_errors_total", "Failed API requests", ["operation", "status"])
IS_LEADER = Gauge("headroom_leader", "1 while this replica holds the lease and writes")
REPORT_TO_RECOMMENDATION_SECONDS = Histogram(
    "headroom_report_to_recommendation_seconds",
    "From a report's arrival to the recommendation written from it",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
