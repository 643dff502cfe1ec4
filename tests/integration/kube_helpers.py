"""Small helpers shared by integration tests: Nodes, agents wired to the real API server."""

from __future__ import annotations

import uuid
from typing import Any

from headroom.agent.reports import ApiReportStore, report_path
from headroom.kube.client import KubeClient
from headroom.kube.config import from_kubeconfig
from tests.controlplane.cluster import ApiError, ControlPlane


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_node(
    cp: ControlPlane,
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    unschedulable: bool = False,
    conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Node object (no kubelet behind it) with the given allocatable capacity."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": unschedulable},
    }
    node = cp.api("POST", "/api/v1/nodes", body)
    status = {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "conditions": conditions or [{"type": "Ready", "status": "True"}],
    }
    node["status"] = status
    return cp.api("PUT", f"/api/v1/nodes/{name}/status", node)


def get_report(cp: ControlPlane, name: str) -> dict[str, Any] | None:
    """The ResourceReport named ``name``, or None."""
    try:
        return cp.api("GET", report_path(name))
    except ApiError as error:
        if error.status == 404:
            return None
        raise


class CountingClient(KubeClient):
    """A KubeClient that records every request it sends (method, path, outcome)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, int]] = []

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        try:
            result = super().request(method, path, body, **kw)
        except Exception as error:
            self.calls.append((method, path, int(getattr(error, "status", -1))))
            raise
        self.calls.append((method, path, 200))
        return result


def admin_client(cp: ControlPlane, *, timeout: float = 5.0) -> CountingClient:
    """A headroom KubeClient with the control plane's admin identity."""
    return CountingClient(from_kubeconfig(cp.kubeconfig), timeout=timeout)


def report_store(cp: ControlPlane, node: str) -> tuple[ApiReportStore, CountingClient]:
    """The agent's own adapter, pointed at the control plane."""
    client = admin_client(cp)
    return ApiReportStore(client, node), client
