"""The agent's admin endpoint, one per node (aiohttp in a thread of its own).

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

Guarded paths answer 401 (with ``WWW-Authenticate: Bearer``) without a valid
token, 403 when RBAC does not allow the caller, 503 when the API server cannot
review the request (never fail open); see :mod:`headroom.agent.auth`.

The collection loop stays synchronous in the main thread. The server runs its
own event loop in a background thread and only reads the agent's ``latest``
status (one reference, replaced whole each cycle). Reviews block on the API
client, so they run in a small thread pool, off the event loop. aiohttp is
imported only here, and this module only when the endpoint is on (RSS, PR-002).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from headroom.agent.auth import Decision
from headroom.agent.resources import system_resources
from headroom.api import ResourceReportStatus

__all__ = ["AdminServer", "AdminSources", "RequestAuthorizer", "build_app"]

log = logging.getLogger(__name__)

RESOURCES_PATH = "/system/resources"
METRICS_PATH = "/metrics"
#: Reviews in flight at once; the API client sends one request at a time anyway.
REVIEW_THREADS = 2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestAuthorizer(Protocol):
    """Decides one request (``headroom.agent.auth.Authorizer``; blocking)."""

    def authorize(self, token: str, path: str) -> Decision: ...


@dataclass(frozen=True)
class AdminSources:
    """What the endpoint reads: all of it owned by the agent's main thread."""

    node_name: str
    latest: Callable[[], ResourceReportStatus | None]
    ready: Callable[[], bool]
    authorizer: RequestAuthorizer
    registry: CollectorRegistry


SOURCES = web.AppKey("sources", AdminSources)
REVIEWS = web.AppKey("reviews", ThreadPoolExecutor)


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _refusal(decision: Decision) -> web.Response:
    if decision is Decision.UNAUTHENTICATED:
        return web.json_response(
            {"error": "unauthorized: send a valid bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="headroom-agent"'},
        )
    if decision is Decision.FORBIDDEN:
        return web.json_response({"error": "forbidden"}, status=403)
    return web.json_response(
        {"error": "cannot review the request now; try again"},
        status=503,
        headers={"Retry-After": "5"},
    )


def _guarded(path: str, handler: Handler) -> Handler:
    """``handler`` behind TokenReview + SubjectAccessReview for ``get`` on ``path``."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = _bearer_token(request)
        if token is None:
            return _refusal(Decision.UNAUTHENTICATED)
        authorizer = request.app[SOURCES].authorizer
        loop = asyncio.get_running_loop()
        decision = await loop.run_in_executor(
            request.app[REVIEWS], authorizer.authorize, token, path
        )
        if decision is not Decision.ALLOWED:
            return _refusal(decision)
        return await handler(request)

    return guarded


async def _resources(request: web.Request) -> web.StreamResponse:
    sources = request.app[SOURCES]
    status = sources.latest()
    if status is None:
        return web.json_response({"error": "no collection yet"}, status=503)
    return web.json_response(system_resources(status, sources.node_name))


async def _metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(request.app[SOURCES].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.StreamResponse:
    if request.app[SOURCES].ready():
        return web.Response(text="ok\n")
    return web.Response(text="no recent collection\n", status=503)


async def _review_pool(app: web.Application) -> AsyncIterator[None]:
    pool = ThreadPoolExecutor(max_workers=REVIEW_THREADS, thread_name_prefix="headroom-review")
    app[REVIEWS] = pool
    yield
    pool.shutdown(wait=False, cancel_futures=True)


def build_app(sources: AdminSources) -> web.Application:
    """The aiohttp application (served by :class:`AdminServer`, or a test client)."""
    app = web.Application()
    app[SOURCES] = sources
    app.cleanup_ctx.append(_review_pool)
    app.router.add_get(RESOURCES_PATH, _guarded(RESOURCES_PATH, _resources))
    app.router.add_get(METRICS_PATH, _guarded(METRICS_PATH, _metrics))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


class AdminServer:
    """Serve an aiohttp app from a background thread with its own event loop.

    ``start()`` returns once the socket is bound (or raises the bind error);
    ``stop()`` closes the listener, lets requests in flight finish (up to
    ``shutdown_timeout``) and joins the thread. Port 0 picks a free port.
    """

    def __init__(
        self, app: web.Application, host: str, port: int, *, shutdown_timeout: float = 2.0
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raise OSError when the address cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="headroom-admin", daemon=True)
        self._thread.start()
        if not self._bound.wait(timeout):
            raise TimeoutError(f"admin endpoint not bound within {timeout}s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        log.info("admin endpoint on %s:%d", self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), or logged after it
            if not self._bound.is_set():
                self._error = error
                self._bound.set()
            else:
                log.exception("admin endpoint failed")

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # access_log=None: probes every few seconds would drown the agent's log;
        # refusals are logged by headroom.agent.auth instead.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            self._bound.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
