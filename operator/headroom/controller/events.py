"""Kubernetes Events the controller posts: what it decided, where users look (pure builders)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

__all__ = ["build_event", "event_path"]

COMPONENT = "headroom-controller"


def event_path(namespace: str) -> str:
    """Where core/v1 Events of a namespace are created."""
    return f"/api/v1/namespaces/{namespace}/events"


def build_event(
    *,
    involved: dict[str, str],
    reason: str,
    message: str,
    now: datetime,
    identity: str,
    kind: Literal["Normal", "Warning"] = "Normal",
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (apiVersion, kind, name, uid, namespace?)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    namespace = involved.get("namespace") or "default"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:1024],
        "type": kind,
        "source": {"component": COMPONENT},
        "reportingComponent": f"headroom.dev/{COMPONENT}",
        "reportingInstance": identity[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
