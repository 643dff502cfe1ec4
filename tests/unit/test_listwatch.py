"""The controller's own list-watch: pages, events, an expired version, a server error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Hashable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from headroom.controller.watch import ListWatch
from headroom.kube.config import KubeConfig


def pod(uid: str, version: int) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "resourceVersion": str(version)}}


class FakeApi:
    """Answers LISTs in pages of two and WATCHes from a script of event batches."""

    def __init__(self, objects: list[dict[str, Any]], watches: list[list[dict[str, Any]]]):
        self.objects = objects
        self.watches = watches
        self.requests: list[dict[str, str]] = []
        self.closing = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append(query)
        if query.get("watch"):
            if not self.watches:
                await self.closing.wait()  # nothing more: hold the watch open
            events = self.watches.pop(0)
            if events and events[0].get("status") == 410:
                return web.Response(status=410, text="too old")
            response = web.StreamResponse()
            await response.prepare(request)
            for event in events:
                await response.write(json.dumps(event).encode() + b"\n")
            return response
        start = int(query.get("continue") or 0)
        page = self.objects[start : start + 2]
        more = start + 2 < len(self.objects)
        return web.json_response(
            {
                "items": page,
                "metadata": {
                    "resourceVersion": "100",
                    **({"continue": str(start + 2)} if more else {}),
                },
            }
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeApi, str]]:
    api = FakeApi([], [])
    app = web.Application()
    app.router.add_get("/api/v1/pods", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield api, f"http://127.0.0.1:{port}"
    api.closing.set()
    await runner.cleanup()


async def run_until(
    api: FakeApi, server: str, condition: Any, **options: Any
) -> tuple[list[tuple[str, str]], list[set[Hashable]]]:
    events: list[tuple[str, str]] = []
    listed: list[set[Hashable]] = []
    async with aiohttp.ClientSession() as session:
        watch = ListWatch(
            session,
            KubeConfig(server=server, token="t"),
            "/api/v1/pods",
            key=lambda body: body["metadata"]["uid"],
            on_event=lambda kind, body: events.append((kind, body["metadata"]["uid"])),
            on_listed=listed.append,
            **options,
        )
        task = asyncio.create_task(watch.run())
        for _ in range(200):
            if condition(events, listed):
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return events, listed


async def test_lists_in_pages_then_follows_the_watch(served: tuple[FakeApi, str]) -> None:
    api, server = served
    api.objects = [pod("a", 1), pod("b", 2), pod("c", 3)]
    api.watches = [
        [
            {"type": "MODIFIED", "object": pod("a", 101)},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
            {"type": "DELETED", "object": pod("b", 151)},
        ],
    ]
    events, listed = await run_until(
        api, server, lambda events, _: ("DELETED", "b") in events, label_selector="x=y"
    )
    assert events == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert listed == [{"a", "b", "c"}]
    assert api.requests[0] == {"limit": "500", "labelSelector": "x=y"}
    assert api.requests[1]["continue"] == "2"
    watches = [query for query in api.requests if query.get("watch")]
    assert watches[0]["resourceVersion"] == "100"
    assert watches[0]["allowWatchBookmarks"] == "true"


async def test_an_ended_watch_resumes_from_the_last_version(served: tuple[FakeApi, str]) -> None:
    api, server = served
    api.objects = [pod("a", 1)]
    api.watches = [
        [{"type": "MODIFIED", "object": pod("a", 120)}],
        [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "130"}}}],
    ]
    await run_until(api, server, lambda *_: len(api.requests) >= 4)
    versions = [query["resourceVersion"] for query in api.requests if query.get("watch")]
    assert versions[:3] == ["100", "120", "130"]


async def test_an_expired_version_lists_again(served: tuple[FakeApi, str]) -> None:
    api, server = served
    api.objects = [pod("a", 1), pod("b", 2)]
    api.watches = [[{"status": 410}]]
    _, listed = await run_until(api, server, lambda _, listed: len(listed) >= 2)
    assert listed == [{"a", "b"}, {"a", "b"}]


async def test_an_error_event_of_410_lists_again(served: tuple[FakeApi, str]) -> None:
    api, server = served
    api.objects = [pod("a", 1)]
    api.watches = [[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]]
    _, listed = await run_until(api, server, lambda _, listed: len(listed) >= 2)
    assert len(listed) == 2


@pytest.mark.requirement("CT-006")
async def test_an_odd_object_is_skipped_not_fatal(served: tuple[FakeApi, str]) -> None:
    api, server = served
    api.objects = [{"metadata": {"name": "no-uid", "resourceVersion": "1"}}, pod("a", 2)]
    seen: list[str] = []

    def strict(kind: str, body: dict[str, Any]) -> None:
        seen.append(body["metadata"]["uid"])  # KeyError for the odd one

    async with aiohttp.ClientSession() as session:
        watch = ListWatch(
            session,
            KubeConfig(server=server),
            "/api/v1/pods",
            key=lambda body: body["metadata"].get("uid", ""),
            on_event=strict,
            on_listed=lambda keys: None,
        )
        task = asyncio.create_task(watch.run())
        await asyncio.wait_for(watch.listed.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen == ["a"]


@pytest.mark.requirement("CT-006")
async def test_a_throttled_list_waits_for_retry_after() -> None:
    """A 429 on LIST: the next try comes no earlier than the server's Retry-After (2 s)."""
    import time

    seen: list[float] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "2"})
        if request.query.get("watch"):
            await asyncio.sleep(0.2)
            return web.Response(text="")
        return web.json_response({"items": [pod("a", 1)], "metadata": {"resourceVersion": "1"}})

    app = web.Application()
    app.router.add_get("/api/v1/pods", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        api = FakeApi([], [])
        events, _ = await run_until(api, f"http://127.0.0.1:{port}", lambda events, _: bool(events))
    finally:
        await runner.cleanup()
    assert events == [("ADDED", "a")]
    assert seen[1] - seen[0] >= 1.9
