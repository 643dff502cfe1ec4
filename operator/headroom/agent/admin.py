"""The agent's admin endpoint, one per node (the standard library's HTTP server, in threads).

==========================  ==========================================  =================
path                        answer                                      access
==========================  ==========================================  =================
``GET /system/resources``   the node's latest figures, JSON in the      bearer token +
                            experts' old psutil shape                   RBAC (``get`` on
                            (:mod:`headroom.agent.resources`);          the URL)
                            503 before the first collection
``GET /metrics``            Prometheus metrics of the agent             bearer token +
                                                                        RBAC
``GET /healthz``            200 while the process serves                open (probes)
``GET /readyz``             200 once collected, and not more than 3     open (probes)
                            intervals ago; 503 otherwise
==========================  ==========================================  =================

The endpoint serves TLS unless told to serve plain HTTP
(:mod:`headroom.agent.tls`). A client that speaks plain HTTP to the TLS port
gets ``400`` saying so, before anything of its request is read as a request:
its token is never checked, let alone answered with figures.

Guarded paths answer 401 (with ``WWW-Authenticate: Bearer``) without a valid
token, 403 when RBAC does not allow the caller, 503 when the API server cannot
review the request (never fail open); see :mod:`headroom.agent.auth`.

The collection loop stays synchronous in the main thread. The server accepts
in a background thread and answers each connection in a thread of its own
(``ThreadingHTTPServer``); handlers only read the agent's ``latest`` status
(one reference, replaced whole each cycle). Reviews block on the API client;
at most ``REVIEW_THREADS`` run at once. The standard library rather than
aiohttp: four GET routes do not need a web framework, and aiohttp.web cost the
agent 13 MB of RSS, close to half its 30 MB budget (PR-002, measured).
prometheus-client is imported only here, and this module only when the
endpoint is on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from headroom.agent.auth import Decision
from headroom.agent.resources import system_resources
from headroom.agent.tls import TlsSource
from headroom.collection.figures import ReportStatus

__all__ = ["AdminServer", "AdminSources", "RequestAuthorizer"]

log = logging.getLogger(__name__)

RESOURCES_PATH = "/system/resources"
METRICS_PATH = "/metrics"
PROBES = ("/healthz", "/readyz")
#: Reviews in flight at once; the API client sends one request at a time anyway.
REVIEW_THREADS = 2
#: An idle keep-alive connection is closed after this long (it holds a thread).
IDLE_SECONDS = 30.0
#: A TLS client has this long to finish its handshake.
HANDSHAKE_SECONDS = 10.0
#: The first byte of a TLS connection (a handshake record).
_TLS_HANDSHAKE = 0x16
_PLAIN_TO_TLS = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 49\r\n\r\n"
    b"This port serves TLS only: use https:// instead.\n"
)
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"


class RequestAuthorizer(Protocol):
    """Decides one request (``headroom.agent.auth.Authorizer``; blocking)."""

    def authorize(self, token: str, path: str) -> Decision: ...


@dataclass(frozen=True)
class AdminSources:
    """What the endpoint reads: all of it owned by the agent's main thread."""

    node_name: str
    latest: Callable[[], ReportStatus | None]
    ready: Callable[[], bool]
    authorizer: RequestAuthorizer
    registry: CollectorRegistry


@dataclass(frozen=True)
class Answer:
    """One response: status, body and its content type, extra headers."""

    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, document: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(document).encode(), _JSON, headers)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _refusal(decision: Decision) -> Answer:
    if decision is Decision.UNAUTHENTICATED:
        return _json(
            401,
            {"error": "unauthorized: send a valid bearer token"},
            (("WWW-Authenticate", 'Bearer realm="headroom-agent"'),),
        )
    if decision is Decision.FORBIDDEN:
        return _json(403, {"error": "forbidden"})
    return _json(
        503, {"error": "cannot review the request now; try again"}, (("Retry-After", "5"),)
    )


class AdminRoutes:
    """The endpoint's answers, apart from HTTP plumbing (one call per request)."""

    def __init__(self, sources: AdminSources) -> None:
        self.sources = sources
        self._reviews = threading.BoundedSemaphore(REVIEW_THREADS)

    def get(self, path: str, authorization: str | None) -> Answer:
        """The answer to ``GET path``."""
        if path == "/healthz":
            return Answer(200, b"ok\n")
        if path == "/readyz":
            if self.sources.ready():
                return Answer(200, b"ok\n")
            return Answer(503, b"no recent collection\n")
        if path not in (RESOURCES_PATH, METRICS_PATH):
            return _json(404, {"error": "not found"})
        token = bearer_token(authorization)
        if token is None:
            return _refusal(Decision.UNAUTHENTICATED)
        with self._reviews:
            decision = self.sources.authorizer.authorize(token, path)
        if decision is not Decision.ALLOWED:
            return _refusal(decision)
        if path == METRICS_PATH:
            return Answer(200, generate_latest(self.sources.registry), CONTENT_TYPE_LATEST)
        status = self.sources.latest()
        if status is None:
            return _json(503, {"error": "no collection yet"})
        return _json(200, system_resources(status, self.sources.node_name))

    @staticmethod
    def refuse_method(path: str) -> Answer:
        """Anything but GET: 405 on a known path, 404 elsewhere."""
        if path in (RESOURCES_PATH, METRICS_PATH, *PROBES):
            return Answer(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        return _json(404, {"error": "not found"})


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every answer has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "headroom-agent"
    sys_version = ""
    timeout = IDLE_SECONDS
    routes: AdminRoutes  # set on the subclass made per server
    tls: TlsSource | None = None  # likewise; None serves plain HTTP

    def setup(self) -> None:
        """With TLS: refuse a plain-HTTP client, else handshake (in this connection's thread)."""
        # Small answers in several writes (TLS records, headers then body): without
        # this, Nagle's algorithm and delayed ACKs add ~40 ms to a TLS request (measured).
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = self.tls
        if tls is not None:
            raw: socket.socket = self.request
            raw.settimeout(HANDSHAKE_SECONDS)
            first = raw.recv(1, socket.MSG_PEEK)
            if not first or first[0] != _TLS_HANDSHAKE:
                if first:
                    with contextlib.suppress(OSError):
                        raw.recv(1 << 16)  # what came, so that closing does not reset the answer
                        raw.sendall(_PLAIN_TO_TLS)
                        raw.shutdown(socket.SHUT_WR)
                raise ConnectionAbortedError("plain HTTP (or nothing) on the TLS port")
            self.request = tls.context().wrap_socket(raw, server_side=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.close()

    def _path(self) -> str:
        return self.path.partition("?")[0]

    def _send(self, answer: Answer, *, body: bool = True) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(answer.body)

    def do_GET(self) -> None:
        """Route a GET."""
        self._send(self.routes.get(self._path(), self.headers.get("Authorization")))

    def do_HEAD(self) -> None:
        """A GET without the body."""
        self._send(self.routes.get(self._path(), self.headers.get("Authorization")), body=False)

    def _refuse(self) -> None:
        # Drain a body so the connection stays usable, then refuse.
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        elif length:
            self.close_connection = True
        self._send(AdminRoutes.refuse_method(self._path()))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: probes every few seconds would drown the agent's log;
        refusals are logged by :mod:`headroom.agent.auth` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Refused plain HTTP, failed handshakes, clients gone: the client's problem.
        log.debug("admin endpoint: connection from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class AdminServer:
    """Serve the admin endpoint from a background thread.

    ``start()`` binds (raising OSError when the address is taken) and returns;
    ``stop()`` closes the listener and joins the accepting thread. Port 0
    picks a free port, readable as ``port`` after ``start()``. ``tls`` None
    serves plain HTTP (only when the operator asked for it).
    """

    def __init__(
        self, sources: AdminSources, host: str, port: int, tls: TlsSource | None = None
    ) -> None:
        self.routes = AdminRoutes(sources)
        self.host = host
        self.port = port
        self.tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        """Bind and start serving; raise OSError when the address cannot be bound."""
        handler = type("AdminHandler", (_Handler,), {"routes": self.routes, "tls": self.tls})
        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, self.port), handler)
        self.port = int(self._server.server_address[1])
        self._stopping = False
        self._thread = threading.Thread(
            target=self._accept, args=(self._server,), name="headroom-admin", daemon=True
        )
        self._thread.start()
        scheme = "https" if self.tls is not None else "http (plain: tokens travel in clear)"
        log.info("admin endpoint on %s:%d, %s", self.host, self.port, scheme)

    def _accept(self, server: _Server) -> None:
        """Accept until stopped, sleeping in ``select`` without a timeout.

        Not ``serve_forever``: it wakes every ``poll_interval`` to look for a
        shutdown request, thousands of wake-ups an hour for nothing (PR-003).
        ``stop()`` shuts the listening socket down instead, which wakes this.
        """
        server.timeout = None
        while not self._stopping:
            server.handle_request()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the accepting thread; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            self._stopping = True
            with contextlib.suppress(OSError):
                server.socket.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)
        if server is not None:
            server.server_close()
