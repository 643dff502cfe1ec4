"""A minimal JSON client for the Kubernetes REST API over ``http.client``."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from headroom.kube.config import KubeConfig

__all__ = ["ApiError", "ApiUnavailable", "KubeClient"]

RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def retryable(self) -> bool:
        """Worth trying again later: conflicts, throttling, server trouble."""
        return self.status in RETRYABLE_STATUSES


class ApiUnavailable(ApiError):
    """The API server could not be reached at all (connection refused, timeout, TLS)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Unavailable", message)

    @property
    def retryable(self) -> bool:
        return True


class KubeClient:
    """One keep-alive connection to the API server; JSON in, JSON out."""

    def __init__(self, config: KubeConfig, *, timeout: float = 10.0, user_agent: str = "headroom"):
        parts = urlsplit(config.server)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"API server URL must be https://host[:port], got {config.server!r}")
        self.config = config
        self._host = parts.hostname
        self._port = parts.port or 443
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._user_agent = user_agent
        self._ssl: ssl.SSLContext = config.ssl_context()
        self._conn: http.client.HTTPSConnection | None = None
        # One connection, one request at a time: callers may share a client across threads.
        self._lock = threading.Lock()

    def close(self) -> None:
        """Drop the connection (a new one is opened on the next request)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request; raise :class:`ApiError` for an error status."""
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        with self._lock:
            status, reason, raw = self._send(method, path, payload, headers)
        data: dict[str, Any] = {}
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"message": raw[:200].decode(errors="replace")}
        if status >= 400:
            raise ApiError(status, str(data.get("reason", reason)), str(data.get("message")))
        return data

    def _send(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._ssl
                )
            self._conn.request(method, self._prefix + path, body=payload, headers=headers)
            response = self._conn.getresponse()
            return response.status, response.reason, response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise ApiUnavailable(f"{method} {path}: {error!r}") from error

    def get(self, path: str) -> dict[str, Any]:
        """GET an object or list."""
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new object to a collection path."""
        return self.request("POST", path, body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT a whole object (optimistic concurrency through its resourceVersion)."""
        return self.request("PUT", path, body)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH with a JSON merge patch (RFC 7386)."""
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str) -> dict[str, Any]:
        """DELETE one object."""
        return self.request("DELETE", path)
