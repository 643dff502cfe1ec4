"""The agent's admin endpoint over HTTP with a fake authorizer: status codes, shape, probes."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

from headroom.agent.admin import AdminServer, AdminSources, build_app
from headroom.agent.auth import Decision
from headroom.agent.metrics import AgentMetrics
from headroom.agent.resources import system_resources
from headroom.api import ResourceReportStatus
from tests.unit.test_agent_resources import known_status

GUARDED = ["/system/resources", "/metrics"]


@dataclass
class FakeAuthorizer:
    decisions: dict[str, Decision] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def authorize(self, token: str, path: str) -> Decision:
        self.asked.append((token, path))
        return self.decisions.get(token, Decision.UNAUTHENTICATED)


@dataclass
class World:
    authorizer: FakeAuthorizer = field(default_factory=FakeAuthorizer)
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    latest: ResourceReportStatus | None = None
    ready: bool = False

    def sources(self) -> AdminSources:
        return AdminSources(
            node_name="worker-1",
            latest=lambda: self.latest,
            ready=lambda: self.ready,
            authorizer=self.authorizer,
            registry=self.metrics.registry,
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.authorizer.decisions = {
        "reader": Decision.ALLOWED,
        "nobody": Decision.FORBIDDEN,
        "when-api-down": Decision.UNAVAILABLE,
    }
    return w


@pytest.fixture
async def client(world: World) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(build_app(world.sources()))) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic cmVhZGVyOng="}, {"Authorization": "Bearer "}],
    ids=["none", "basic", "empty"],
)
async def test_no_bearer_token_is_401_without_asking_anyone(
    client: TestClient[object, object], world: World, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.authorizer.asked == []


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    ("token", "status"), [("forged", 401), ("nobody", 403), ("when-api-down", 503)]
)
async def test_refusals_map_to_status_codes(
    client: TestClient[object, object], world: World, path: str, token: str, status: int
) -> None:
    world.latest = known_status()
    response = await client.get(path, headers=bearer(token))
    assert response.status == status
    assert world.authorizer.asked == [(token, path)], "the exact URL is what RBAC is asked about"
    body = await response.text()
    assert "cpu_percent" not in body and "headroom_agent" not in body


@pytest.mark.requirement("SR-003")
async def test_allowed_reader_gets_the_latest_figures(
    client: TestClient[object, object], world: World
) -> None:
    world.latest = known_status()
    response = await client.get("/system/resources", headers=bearer("reader"))
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == system_resources(known_status(), "worker-1")


async def test_resources_before_the_first_collection_is_503(
    client: TestClient[object, object], world: World
) -> None:
    response = await client.get("/system/resources", headers=bearer("reader"))
    assert response.status == 503


async def test_metrics_are_prometheus_text(
    client: TestClient[object, object], world: World
) -> None:
    world.metrics.collected(known_status(), 0.02)
    world.metrics.write_failed(503)
    response = await client.get("/metrics", headers=bearer("reader"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    assert "headroom_agent_collection_cycles_total 1.0" in text
    assert 'headroom_agent_report_write_failures_total{status="503"} 1.0' in text
    assert "process_resident_memory_bytes" in text


async def test_probes_are_open(client: TestClient[object, object], world: World) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    world.ready = True
    assert (await client.get("/readyz")).status == 200
    assert world.authorizer.asked == []


@pytest.mark.requirement("SR-003")
async def test_unknown_paths_are_404_and_writes_405(
    client: TestClient[object, object], world: World
) -> None:
    assert (await client.get("/system/other", headers=bearer("reader"))).status == 404
    assert (await client.post("/system/resources", headers=bearer("reader"))).status == 405


def http_get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_server_thread_serves_and_stops(world: World) -> None:
    server = AdminServer(build_app(world.sources()), "127.0.0.1", 0)
    server.start()
    try:
        assert server.port != 0
        assert http_get(server.port, "/healthz") == 200
        assert http_get(server.port, "/system/resources") == 401
    finally:
        server.stop()
    assert server._thread is not None and not server._thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        http_get(server.port, "/healthz")
    server.stop()  # twice is fine


def test_server_reports_a_port_in_use(world: World) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = AdminServer(build_app(world.sources()), "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            server.start()
