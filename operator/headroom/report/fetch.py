"""Read the cluster for ``headroom report``: paged LISTs straight into a :class:`ReportBuilder`.

Every list asks for at most :data:`PAGE_SIZE` objects per request and follows
``continue`` tokens; each page is folded into the builder and dropped, so
150,000 Pods never sit in memory at once. Pods are filtered on the server to
bound, unfinished ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from headroom.api import API_VERSION
from headroom.kube.client import ApiError, KubeClient
from headroom.report.build import ReportBuilder
from headroom.report.view import ClusterReport

__all__ = ["PAGE_SIZE", "list_pages", "read_cluster"]

PAGE_SIZE = 500
"""Objects per LIST request (kubectl's own chunk size)."""

_BOUND_UNFINISHED_PODS = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"


def list_pages(
    client: KubeClient, path: str, params: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every object of a collection, one page of :data:`PAGE_SIZE` at a time."""
    token = ""
    while True:
        query = {**(params or {}), "limit": str(PAGE_SIZE)}
        if token:
            query["continue"] = token
        try:
            page = client.get(f"{path}?{urlencode(query)}")
        except ApiError as error:
            if error.status == 410:
                raise ApiError(
                    410, "Expired", f"the list of {path} took too long and expired; run again"
                ) from error
            raise
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


def read_cluster(
    client: KubeClient,
    *,
    nodes: bool = True,
    experts: bool = True,
    namespace: str | None = None,
    node_selector: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ClusterReport:
    """List Nodes, Pods and ResourceReports (``nodes``), CapacityRecommendations (``experts``)."""
    builder = ReportBuilder(
        now=now(),
        listed_nodes_only=bool(node_selector),
        node_selector=node_selector or None,
        namespace=namespace,
    )
    if nodes:
        selection = {"labelSelector": node_selector} if node_selector else {}
        for node in list_pages(client, "/api/v1/nodes", selection):
            builder.add_node(node)
        for pod in list_pages(client, "/api/v1/pods", {"fieldSelector": _BOUND_UNFINISHED_PODS}):
            builder.add_pod(pod)
        for report in list_pages(client, f"/apis/{API_VERSION}/resourcereports"):
            builder.add_report(report)
    if experts:
        scope = f"/namespaces/{namespace}" if namespace else ""
        for rec in list_pages(client, f"/apis/{API_VERSION}{scope}/capacityrecommendations"):
            builder.add_recommendation(rec)
    return builder.build()
