"""Which ResourceReports the controller learns from: what the CRD schema cannot refuse (CT-006).

The API server refuses most malformed reports at the door (types, ranges,
missing fields, list sizes; unknown fields are pruned). What a structural
schema cannot say is checked here, on every report the watch delivers, before
it reaches the model: a ``collectedAt`` in the future (it would outrank every
honest report of that node until then), pod UIDs that are not UIDs (they
would be looked up forever) and figures that contradict each other. A
report that fails is ignored whole — the node's last good report stays — and
the runtime logs it and raises a Warning Event on it; every other node and
expert is served as before. Pure: no Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from headroom.api import ResourceReportStatus

__all__ = ["MAX_CLOCK_SKEW", "POD_UID", "report_problem"]

#: How far a node's clock may run ahead of the controller's before its reports are refused.
MAX_CLOCK_SKEW = timedelta(minutes=2)
#: A pod UID as the kubelet writes it: a UUID, or 32 hex digits (static pods' hash).
POD_UID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$"
)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "status"
    return f"status.{where}: {first['msg']}"


def report_problem(body: Mapping[str, Any], now: datetime) -> str | None:
    """Why the controller must not learn from this report, or None when it may.

    A report without a status (just created) is not a problem: there is nothing to learn.
    """
    status = body.get("status")
    if not status:
        return None
    if not isinstance(status, Mapping):
        return "status is not an object"
    try:
        parsed = ResourceReportStatus.model_validate(
            {key: value for key, value in status.items() if key != "conditions"}
        )
    except ValidationError as error:
        return _first_error(error)
    collected = parsed.collectedAt
    if collected.tzinfo is None:
        return f"status.collectedAt {collected.isoformat()} has no time zone"
    if collected - now > MAX_CLOCK_SKEW:
        ahead = (collected - now).total_seconds()
        return (
            f"status.collectedAt {collected.isoformat()} is {ahead:.0f}s in the future"
            f" (more than {MAX_CLOCK_SKEW.total_seconds():.0f}s of clock skew)"
        )
    if parsed.heartbeatSeconds < 1:
        return "status.heartbeatSeconds must be at least 1"
    memory = parsed.memory
    if memory.availableBytes > memory.totalBytes or memory.usedBytes > memory.totalBytes:
        return "status.memory: available or used bytes exceed the total"
    for pod in parsed.pods:
        if not POD_UID.match(pod.uid):
            return f"status.pods: {pod.uid[:64]!r} is not a pod UID"
    return None
