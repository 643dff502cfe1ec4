"""The agent's one door to the API server: its own node's ResourceReport.

Thin on purpose (the integration suite drives it against a real API server):
create the report if missing, owned by the Node so it goes when the Node goes,
then replace ``/status`` with optimistic concurrency. A 409 means someone else
wrote in between; our figures are the node's truth, so we take the fresh
``resourceVersion`` and write them again.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from headroom.apiversion import API_VERSION
from headroom.collection.figures import ReportStatus
from headroom.kube.client import ApiError, KubeClient

__all__ = ["ApiReportStore", "ReportStore", "report_path"]

log = logging.getLogger(__name__)


def report_path(name: str = "") -> str:
    """REST path of the ResourceReport collection, or of one report."""
    base = f"/apis/{API_VERSION}/resourcereports"
    return f"{base}/{name}" if name else base


class ReportStore(Protocol):
    """Where the agent's figures go."""

    def write(self, status: ReportStatus) -> None:
        """Make ``status`` the report's status; raise ApiError when that failed."""
        ...


class ApiReportStore:
    """ReportStore backed by the Kubernetes API."""

    def __init__(self, client: KubeClient, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._report: dict[str, Any] | None = None

    def _create(self) -> dict[str, Any]:
        node = self.client.get(f"/api/v1/nodes/{self.node_name}")
        body = {
            "apiVersion": API_VERSION,
            "kind": "ResourceReport",
            "metadata": {
                "name": self.node_name,
                "labels": {"app.kubernetes.io/managed-by": "headroom-agent"},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.node_name,
                        "uid": node["metadata"]["uid"],
                    }
                ],
            },
            "spec": {"nodeName": self.node_name},
        }
        try:
            created = self.client.create(report_path(), body)
        except ApiError as error:
            if error.status != 409:
                raise
            return self.client.get(report_path(self.node_name))
        log.info("created ResourceReport %s", self.node_name)
        return created

    def _get_or_create(self) -> dict[str, Any]:
        try:
            return self.client.get(report_path(self.node_name))
        except ApiError as error:
            if error.status != 404:
                raise
        return self._create()

    def _put_status(self, report: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": "ResourceReport",
            "metadata": {
                "name": self.node_name,
                "resourceVersion": report["metadata"]["resourceVersion"],
            },
            "spec": report.get("spec", {"nodeName": self.node_name}),
            "status": status,
        }
        return self.client.replace(report_path(self.node_name) + "/status", body)

    def write(self, status: ReportStatus) -> None:
        """Replace the report's status; resolve one conflict or a vanished report."""
        wire = status.to_wire()
        if self._report is None:
            self._report = self._get_or_create()
        try:
            self._report = self._put_status(self._report, wire)
            return
        except ApiError as error:
            if error.status == 409:
                log.info("conflict writing %s; retrying with the fresh version", self.node_name)
                self._report = self.client.get(report_path(self.node_name))
            elif error.status == 404:
                log.warning("ResourceReport %s vanished; creating it again", self.node_name)
                self._report = self._get_or_create()
            else:
                self._report = None
                raise
        try:
            self._report = self._put_status(self._report, wire)
        except ApiError:
            self._report = None
            raise
