"""The agent's admin endpoint over HTTP with a fake authorizer: status codes, shape, probes."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from headroom.agent.admin import AdminServer, AdminSources
from headroom.agent.auth import Decision
from headroom.agent.metrics import AgentMetrics
from headroom.agent.resources import system_resources
from headroom.collection.figures import ReportStatus
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
    latest: ReportStatus | None = None
    ready: bool = False

    def sources(self) -> AdminSources:
        return AdminSources(
            node_name="worker-1",
            latest=lambda: self.latest,
            ready=lambda: self.ready,
            authorizer=self.authorizer,
            registry=self.metrics.registry,
        )


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def text(self) -> str:
        return self.body.decode()


class Client:
    """One keep-alive connection to a served endpoint, as a scraper would hold."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
        self.connection.request(method, path, headers=headers or {})
        answer = self.connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, headers)


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
def client(world: World) -> Iterator[Client]:
    server = AdminServer(world.sources(), "127.0.0.1", 0)
    server.start()
    try:
        yield Client(server.port)
    finally:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic cmVhZGVyOng="}, {"Authorization": "Bearer "}],
    ids=["none", "basic", "empty"],
)
def test_no_bearer_token_is_401_without_asking_anyone(
    client: Client, world: World, path: str, headers: dict[str, str]
) -> None:
    response = client.get(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.authorizer.asked == []


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    ("token", "status"), [("forged", 401), ("nobody", 403), ("when-api-down", 503)]
)
def test_refusals_map_to_status_codes(
    client: Client, world: World, path: str, token: str, status: int
) -> None:
    world.latest = known_status()
    response = client.get(path, headers=bearer(token))
    assert response.status == status
    assert world.authorizer.asked == [(token, path)], "the exact URL is what RBAC is asked about"
    body = response.text()
    assert "cpu_percent" not in body and "headroom_agent" not in body


@pytest.mark.requirement("SR-003")
def test_allowed_reader_gets_the_latest_figures(client: Client, world: World) -> None:
    world.latest = known_status()
    response = client.get("/system/resources", headers=bearer("reader"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == system_resources(known_status(), "worker-1")


def test_resources_before_the_first_collection_is_503(client: Client, world: World) -> None:
    response = client.get("/system/resources", headers=bearer("reader"))
    assert response.status == 503


def test_metrics_are_prometheus_text(client: Client, world: World) -> None:
    world.metrics.collected(known_status(), 0.02)
    world.metrics.write_failed(503)
    response = client.get("/metrics", headers=bearer("reader"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.text()
    assert "headroom_agent_collection_cycles_total 1.0" in text
    assert 'headroom_agent_report_write_failures_total{status="503"} 1.0' in text
    assert "process_resident_memory_bytes" in text


def test_probes_are_open(client: Client, world: World) -> None:
    assert (client.get("/healthz")).status == 200
    assert (client.get("/readyz")).status == 503
    world.ready = True
    assert (client.get("/readyz")).status == 200
    assert world.authorizer.asked == []


@pytest.mark.requirement("SR-003")
def test_unknown_paths_are_404_and_writes_405(client: Client, world: World) -> None:
    assert (client.get("/system/other", headers=bearer("reader"))).status == 404
    assert (client.post("/system/resources", headers=bearer("reader"))).status == 405


def http_get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_server_thread_serves_and_stops(world: World) -> None:
    server = AdminServer(world.sources(), "127.0.0.1", 0)
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
        server = AdminServer(world.sources(), "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            server.start()


@pytest.mark.requirement("SR-003", "AG-002")
def test_a_slow_review_does_not_hold_up_the_probes(world: World) -> None:
    """A review stuck on a slow API server must not fail the kubelet's probes."""
    release = threading.Event()
    reviewing = threading.Event()

    def slow(token: str, path: str) -> Decision:
        reviewing.set()
        release.wait(10)
        return Decision.ALLOWED

    world.authorizer.authorize = slow  # type: ignore[method-assign]
    server = AdminServer(world.sources(), "127.0.0.1", 0)
    server.start()
    try:
        waiting = threading.Thread(
            target=lambda: Client(server.port).get("/metrics", bearer("reader"))
        )
        waiting.start()
        assert reviewing.wait(5)
        assert Client(server.port).get("/healthz").status == 200
        release.set()
        waiting.join(5)
    finally:
        release.set()
        server.stop()
