"""KubeClient over connections the server closed while idle: a local HTTPS server that
closes kept connections after a short idle time, or in the moment the next request comes.

The first request after the idle time must succeed (no 503 from the agent's reviews); a
request the server never answered is sent again once only where that is harmless.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from headroom.agent.tls import self_signed_pem
from headroom.kube.client import ApiUnavailable, KubeClient, resend_is_safe
from headroom.kube.config import KubeConfig


@dataclass
class Seen:
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    seen: Seen
    idle_seconds: float
    drop_second: bool
    """Close each connection unanswered when its second request arrives (the race)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.idle_seconds  # idle this long: the server closes
        super().setup()
        with self.server.seen.lock:
            self.server.seen.connections += 1
        self.answered = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.seen.lock:
            self.server.seen.requests.append((self.command, self.path))
        if self.server.drop_second and self.answered == 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # read, never answered
            return
        self.answered += 1
        body = json.dumps({"kind": "Status", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Api:
    seen: Seen
    client: KubeClient


def _api(tmp_path: Path, *, idle_seconds: float, drop_second: bool) -> Iterator[Api]:
    cert, key = self_signed_pem(["127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.seen, server.idle_seconds, server.drop_second = Seen(), idle_seconds, drop_second
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    config = KubeConfig(server=f"https://127.0.0.1:{server.server_address[1]}", insecure=True)
    client = KubeClient(config, timeout=5)
    try:
        yield Api(server.seen, client)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def idle_closing(tmp_path: Path) -> Iterator[Api]:
    """Closes a kept connection after 0.3 s without a request (the API server: 90 s)."""
    yield from _api(tmp_path, idle_seconds=0.3, drop_second=False)


@pytest.fixture
def racing(tmp_path: Path) -> Iterator[Api]:
    """Closes each connection when its second request arrives, unanswered."""
    yield from _api(tmp_path, idle_seconds=30, drop_second=True)


REVIEW = "/apis/authentication.k8s.io/v1/tokenreviews"


def test_first_request_after_the_idle_close_succeeds(idle_closing: Api) -> None:
    api = idle_closing
    assert api.client.create(REVIEW, {"spec": {"token": "t"}})["path"] == REVIEW
    assert api.client.get("/api/v1/nodes")["path"] == "/api/v1/nodes"  # kept, reused
    assert api.seen.connections == 1
    time.sleep(0.8)  # the server has closed the kept connection meanwhile
    assert api.client.create(REVIEW, {"spec": {"token": "t"}})["path"] == REVIEW
    assert api.seen.connections == 2
    assert api.client.reconnects == 1
    # Seen closed before sending: even a write that is not safe to resend goes out once.
    time.sleep(0.8)
    api.client.create("/api/v1/namespaces/a/configmaps", {"metadata": {"name": "x"}})
    assert api.seen.requests.count(("POST", "/api/v1/namespaces/a/configmaps")) == 1
    assert api.client.resent == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/nodes", None),
        ("POST", REVIEW, {"spec": {"token": "t"}}),
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {}}),
        (
            "PUT",
            "/apis/headroom.dev/v1alpha1/resourcereports/n",
            {"metadata": {"name": "n", "resourceVersion": "7"}},
        ),
    ],
    ids=["read", "token-review", "access-review", "guarded-write"],
)
def test_a_request_lost_to_a_closing_connection_is_sent_again_once_when_safe(
    racing: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    api = racing
    api.client.get("/version")  # the connection is now kept
    answer = api.client.request(method, path, body)
    assert answer["path"] == path
    assert api.seen.requests.count((method, path)) == 2  # lost once, answered once
    assert (api.seen.connections, api.client.resent) == (2, 1)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/namespaces/a/configmaps", {"metadata": {"name": "x"}}),
        ("PUT", "/apis/headroom.dev/v1alpha1/resourcereports/n", {"metadata": {"name": "n"}}),
        ("DELETE", "/api/v1/namespaces/a/pods/p", None),
    ],
    ids=["create", "unguarded-write", "delete"],
)
def test_a_lost_request_that_is_not_safe_to_repeat_reaches_the_caller(
    racing: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    api = racing
    api.client.get("/version")
    with pytest.raises(ApiUnavailable):
        api.client.request(method, path, body)
    assert api.seen.requests.count((method, path)) == 1
    assert api.client.resent == 0
    assert api.client.get("/version")["path"] == "/version"  # and the next request reconnects


def test_resend_rules() -> None:
    assert resend_is_safe("GET", "/api/v1/pods?limit=5", None)
    assert resend_is_safe("POST", REVIEW + "?timeout=5s", {})
    assert not resend_is_safe("POST", "/api/v1/namespaces", {})
    assert resend_is_safe("PATCH", "/x", {"metadata": {"resourceVersion": "3"}})
    assert not resend_is_safe("PATCH", "/x", {"status": {}})
    assert not resend_is_safe("DELETE", "/x", None)
