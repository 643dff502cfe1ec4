"""A minimal JSON client for the Kubernetes REST API over ``http.client``.

Throttling is honoured here, once for every caller: a 429 answer ("too many
requests", from API Priority and Fairness or ``--max-requests-inflight``)
means the request was not processed, so it is sent again after the server's
``Retry-After`` (clamped to ``[0.1 s, 10 s]``; 1 s when absent), at most
``throttle_retries`` times; then the 429 reaches the caller with
``retry_after`` set, for its own backoff. Other statuses are never retried
here: a 409 needs the caller's fresh read, and connection failures are the
caller's backoff to pace (AG-002).

Idle connections: the API server closes a keep-alive connection that has been
idle for 90 s (Go's ``IdleTimeout`` in its secure serving), sooner behind some
load balancers. Before each request on a kept connection the client looks
whether the server has closed it (readable with nothing to read: FIN or TLS
close_notify) and opens a new one if so. When the server closes it in the
moment the request is sent (a race the look cannot see), the request fails with
a reset or an empty answer before any status; it is then sent again once on a
new connection, **only where sending twice is harmless**: reads (GET), reviews
(TokenReview, SubjectAccessReview: nothing is stored), and writes guarded by a
``metadata.resourceVersion`` (a second PUT of the same version gets 409, never
a double write). Anything else reaches the caller as :class:`ApiUnavailable`.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from headroom.kube.config import KubeConfig

__all__ = ["ApiError", "ApiUnavailable", "KubeClient", "resend_is_safe", "retry_after_seconds"]

RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
#: Bounds of a server-given Retry-After: never hammer, never stall a cycle for long.
RETRY_AFTER_MIN_SECONDS = 0.1
RETRY_AFTER_MAX_SECONDS = 10.0
#: When a 429 carries no (readable) Retry-After.
RETRY_AFTER_DEFAULT_SECONDS = 1.0


#: Collections whose POST stores nothing: asking twice gives the same answer.
_REVIEWS = (
    "/tokenreviews",
    "/subjectaccessreviews",
    "/selfsubjectaccessreviews",
    "/localsubjectaccessreviews",
    "/selfsubjectrulesreviews",
    "/selfsubjectreviews",
)
#: What a connection the server closed while idle fails with when reused.
_CLOSED_BY_SERVER = (
    ConnectionResetError,  # http.client.RemoteDisconnected is one
    BrokenPipeError,
    ConnectionAbortedError,
    http.client.BadStatusLine,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


def resend_is_safe(method: str, path: str, body: dict[str, Any] | None) -> bool:
    """Whether sending this request a second time cannot do anything the first did not."""
    if method in ("GET", "HEAD"):
        return True
    if method == "POST":
        return path.partition("?")[0].endswith(_REVIEWS)
    if method in ("PUT", "PATCH"):
        metadata = (body or {}).get("metadata")
        return isinstance(metadata, dict) and bool(metadata.get("resourceVersion"))
    return False


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle kept connection that is readable has been closed by the server (or is broken)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def retry_after_seconds(header: str | None) -> float:
    """The pause a 429's ``Retry-After`` asks for, clamped (delta-seconds form only).

    Kubernetes always sends whole seconds; an HTTP date or garbage gets the default.
    """
    try:
        seconds = float(header) if header is not None else RETRY_AFTER_DEFAULT_SECONDS
    except ValueError:
        seconds = RETRY_AFTER_DEFAULT_SECONDS
    if seconds != seconds:  # NaN
        seconds = RETRY_AFTER_DEFAULT_SECONDS
    return min(max(seconds, RETRY_AFTER_MIN_SECONDS), RETRY_AFTER_MAX_SECONDS)


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(
        self, status: int, reason: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        """For a 429: the seconds the server asked us to wait (clamped), else None."""

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

    def __init__(
        self,
        config: KubeConfig,
        *,
        timeout: float = 10.0,
        user_agent: str = "headroom",
        throttle_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(config.server)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"API server URL must be https://host[:port], got {config.server!r}")
        self.config = config
        self._host = parts.hostname
        self._port = parts.port or 443
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._user_agent = user_agent
        self.throttle_retries = throttle_retries
        self._sleep = sleep
        self.throttled = 0
        """429 answers received so far (each one waited for, or handed to the caller)."""
        self.reconnects = 0
        """Kept connections found closed by the server before a request (a new one was opened)."""
        self.resent = 0
        """Requests sent again on a new connection after the kept one failed under them."""
        self._ssl: ssl.SSLContext = config.ssl_context()
        self._conn: http.client.HTTPSConnection | None = None
        # One connection, one request at a time: callers may share a client across threads.
        self._lock = threading.Lock()

    def fork(self) -> KubeClient:
        """A client with the same settings and its own connection (for another thread)."""
        return KubeClient(
            self.config,
            timeout=self._timeout,
            user_agent=self._user_agent,
            throttle_retries=self.throttle_retries,
            sleep=self._sleep,
        )

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
        payload = None
        extra = {}
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            extra["Content-Type"] = content_type
        safe = resend_is_safe(method, path, body)
        _, raw = self._exchange(method, path, payload, "application/json", extra, resend=safe)
        data: dict[str, Any] = {}
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"message": raw[:200].decode(errors="replace")}
        return data

    def get_encoded(self, path: str, accept: str) -> tuple[str, bytes]:
        """GET with ``accept`` as the Accept header: (the answer's content type, its bytes).

        For encodings other than JSON (``application/vnd.kubernetes.protobuf``
        for built-in kinds); the server may still answer JSON (custom
        resources, aggregated APIs), so the content type decides how to read it.
        """
        return self._exchange("GET", path, None, accept, {}, resend=True)

    def _exchange(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        accept: str,
        extra: dict[str, str],
        *,
        resend: bool,
    ) -> tuple[str, bytes]:
        """One request, sent again on 429 (see the module); the answer's content type and body."""
        headers = {"Accept": accept, "User-Agent": self._user_agent, **extra}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(self.throttle_retries + 1):
            with self._lock:
                status, reason, raw, retry_after, answered = self._send(
                    method, path, payload, headers, resend=resend
                )
            if status != 429:
                break
            self.throttled += 1
            pause = retry_after_seconds(retry_after)
            if attempt == self.throttle_retries:
                break
            self._sleep(pause)
        if status >= 400:
            error_reason, message = _error_text(raw, answered, reason)
            raise ApiError(
                status,
                error_reason,
                message,
                retry_after=retry_after_seconds(retry_after) if status == 429 else None,
            )
        return answered, raw

    def _send(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        headers: dict[str, str],
        *,
        resend: bool,
    ) -> tuple[int, str, bytes, str | None, str]:
        if self._conn is not None and _closed_by_peer(self._conn):
            self.close()
            self.reconnects += 1
        reused = self._conn is not None
        try:
            return self._send_once(method, path, payload, headers)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            if not (reused and resend and isinstance(error, _CLOSED_BY_SERVER)):
                raise ApiUnavailable(f"{method} {path}: {error!r}") from error
        # The kept connection died under the request: once more, on a new one.
        self.resent += 1
        try:
            return self._send_once(method, path, payload, headers)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise ApiUnavailable(f"{method} {path}: {error!r}") from error

    def _send_once(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes, str | None, str]:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._ssl
            )
        self._conn.request(method, self._prefix + path, body=payload, headers=headers)
        response = self._conn.getresponse()
        body = response.read()
        if response.will_close:
            self.close()
        return (
            response.status,
            response.reason,
            body,
            response.getheader("Retry-After"),
            response.getheader("Content-Type") or "",
        )

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


def _error_text(raw: bytes, content_type: str, reason: str) -> tuple[str, str]:
    """An error answer's (reason, message): from its Status, JSON or protobuf, else its text."""
    if content_type.startswith("application/vnd.kubernetes.protobuf"):
        found = _protobuf_status(raw)
        if found is not None:
            return found[0] or reason, found[1]
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"message": raw[:200].decode(errors="replace")}
    if not isinstance(data, dict):
        data = {}
    return str(data.get("reason", reason)), str(data.get("message"))


def _protobuf_status(raw: bytes) -> tuple[str, str] | None:
    """(reason, message) of a protobuf ``metav1.Status``, or None if ``raw`` is not one.

    The envelope is ``k8s\x00`` then ``runtime.Unknown`` (raw = field 2); in
    ``Status``, message is field 3 and reason field 4. Read by hand: the
    agent shares this client and must not load a protobuf library.
    """
    if not raw.startswith(b"k8s\x00"):
        return None
    try:
        status = _fields(raw[4:]).get(2)
        if not isinstance(status, bytes):
            return None
        fields = _fields(status)
    except (IndexError, ValueError):
        return None
    message, reason = fields.get(3, b""), fields.get(4, b"")
    if not isinstance(message, bytes) or not isinstance(reason, bytes):
        return None
    return reason.decode(errors="replace"), message.decode(errors="replace")


def _fields(buffer: bytes) -> dict[int, bytes | int]:
    """The top-level fields of a protobuf message (the last of a repeated one)."""
    found: dict[int, bytes | int] = {}
    at = 0
    while at < len(buffer):
        key, at = _varint(buffer, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            found[number], at = _varint(buffer, at)
        elif wire == 2:
            length, at = _varint(buffer, at)
            if at + length > len(buffer):
                raise ValueError("truncated field")
            found[number], at = buffer[at : at + length], at + length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
    return found


def _varint(buffer: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buffer[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
