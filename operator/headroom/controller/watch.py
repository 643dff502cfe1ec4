"""List, then watch, one high-volume resource straight into the model (Pods, ReplicaSets).

kopf keeps a record (``ResourceMemory``) for every object it has ever seen and
starts a worker task for each object with pending events; for 150,000 Pods
that is some 150 MB that never goes away and minutes of CPU when the
controller starts, though the controller only folds each Pod into a few
figures (STYLE habit 5). So Pods and ReplicaSets come through here instead:
a paginated LIST (``limit``/``continue``, one page in memory at a time), then a
WATCH from the list's ``resourceVersion`` with bookmarks; every object goes to
a callback and is dropped. A watch that ends is resumed from the last version
seen; an expired version (410 Gone) or an error means a fresh LIST, after which
the callback learns the full set of keys listed, to forget what vanished in
between. Failures back off exponentially with jitter (1 s doubling to 30 s);
a 429 waits at least as long as its ``Retry-After`` asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Hashable
from typing import Any

import aiohttp

from headroom.kube.client import retry_after_seconds
from headroom.kube.config import KubeConfig

__all__ = ["ListWatch", "WatchError"]

log = logging.getLogger(__name__)

Body = dict[str, Any]

_BACKOFF_INITIAL = 1.0
_BACKOFF_MAX = 30.0


class WatchError(Exception):
    """The API server refused a LIST or WATCH, or sent an ERROR event."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message[:300]}")
        self.status = status
        self.retry_after = retry_after


class _Expired(Exception):
    """The resourceVersion (or continue token) is too old: list again."""


class ListWatch:
    """Keeps one resource's objects flowing into callbacks; :meth:`run` until cancelled.

    ``on_event(type, body)`` gets ``ADDED``, ``MODIFIED`` and ``DELETED`` (a
    LIST delivers every object as ``ADDED``); ``on_listed(keys)`` gets the
    ``key`` of every object of a complete LIST. Both run on the event loop.
    With ``label_selector`` the server sends only matching objects, and an
    object that stops matching arrives as ``DELETED``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: KubeConfig,
        path: str,
        *,
        key: Callable[[Body], Hashable],
        on_event: Callable[[str, Body], None],
        on_listed: Callable[[set[Hashable]], None],
        label_selector: str = "",
        chunk_size: int = 500,
        timeout_seconds: int = 300,
    ) -> None:
        self.session = session
        self.selection = {"labelSelector": label_selector} if label_selector else {}
        self.config = config
        self.url = config.server.rstrip("/") + path
        self.key = key
        self.on_event = on_event
        self.on_listed = on_listed
        self.chunk_size = chunk_size
        self.timeout_seconds = timeout_seconds
        self.listed = asyncio.Event()
        """Set once the first complete LIST has been delivered."""
        self.events = 0
        self.version: str | None = None
        """The last resourceVersion seen (None: the next round lists)."""

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "headroom-controller"}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def run(self) -> None:
        """LIST, WATCH, and again, forever; only cancellation ends it."""
        delay = _BACKOFF_INITIAL
        while True:
            try:
                if self.version is None:
                    self.version = await self._list()
                    self.listed.set()
                await self._watch(self.version)
                delay = _BACKOFF_INITIAL
            except _Expired:
                self.version = None
            except (aiohttp.ClientError, TimeoutError, WatchError, ValueError) as error:
                pause = delay * (0.5 + 0.5 * random.random())
                if isinstance(error, WatchError) and error.retry_after is not None:
                    pause = max(pause, error.retry_after)
                log.warning("watching %s failed (%s); again in %.1fs", self.url, error, pause)
                if isinstance(error, WatchError):
                    self.version = None
                await asyncio.sleep(pause)
                delay = min(delay * 2, _BACKOFF_MAX)

    async def _get(self, params: dict[str, str]) -> aiohttp.ClientResponse:
        response = await self.session.get(
            self.url, params={**params, **self.selection}, headers=self._headers()
        )
        if response.status == 410:
            response.release()
            raise _Expired()
        if response.status >= 400:
            text = await response.text()
            response.release()
            retry_after = None
            if response.status == 429:
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise WatchError(response.status, text, retry_after=retry_after)
        return response

    async def _list(self) -> str:
        """Every object, page by page; returns the list's resourceVersion."""
        keys: set[Hashable] = set()
        params = {"limit": str(self.chunk_size)}
        while True:
            response = await self._get(params)
            try:
                page = json.loads(await response.read())
            finally:
                response.release()
            for item in page.get("items") or ():
                self._deliver("ADDED", item)
                keys.add(self.key(item))
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                self.on_listed(keys)
                return str(metadata.get("resourceVersion", ""))
            params = {"limit": str(self.chunk_size), "continue": token}
            await asyncio.sleep(0)  # let the loop breathe between pages

    async def _watch(self, version: str) -> None:
        """Events from ``version`` until the server ends the watch (``version`` follows)."""
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.timeout_seconds),
        }
        response = await self._get(params)
        try:
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._event(json.loads(line))
        finally:
            response.release()

    def _event(self, event: Body) -> None:
        kind, body = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if body.get("code") == 410:
                raise _Expired()
            raise WatchError(int(body.get("code") or 500), str(body.get("message")))
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version:
            self.version = str(version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._deliver(kind, body)

    def _deliver(self, kind: str, body: Body) -> None:
        self.events += 1
        try:
            self.on_event(kind, body)
        except (KeyError, TypeError, ValueError) as error:  # one odd object, not the stream
            meta = body.get("metadata") or {}
            log.warning(
                "ignoring %s %s/%s: %r", kind, meta.get("namespace"), meta.get("name"), error
            )
