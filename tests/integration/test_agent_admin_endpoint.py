"""The agent's admin endpoint as a real ``headroom agent`` process against the real API server.

Each test runs against three agents, one per way of serving (SC-004): TLS with a
self-signed certificate made at start (the default), TLS with a certificate from
files (a mounted Secret), and plain HTTP (only when asked for).

RBAC decides who reads ``/system/resources`` and ``/metrics``: a ServiceAccount
``reader`` bound to a ClusterRole with ``get`` on those non-resource URLs, and a
ServiceAccount ``nobody`` without. The agent runs with the admin kubeconfig (it
must be allowed to create TokenReviews and SubjectAccessReviews).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from headroom.agent.auth import Authorizer, Decision, KubeReviewer
from headroom.agent.resources import system_resources
from headroom.agent.tls import self_signed_pem
from headroom.api import ResourceReportStatus
from headroom.collection.figures import CpuFigures, DiskFigures, MemoryFigures, ReportStatus
from headroom.kube.client import KubeClient
from headroom.kube.config import KubeConfig, from_kubeconfig
from tests.controlplane.cluster import ControlPlane, free_ports, wait_until
from tests.integration.kube_helpers import create_node, get_report, unique

GUARDED = ["/system/resources", "/metrics"]
#: How the agent serves its endpoint.
MODES = ["self-signed", "files", "plain"]


@dataclass
class Endpoint:
    node: str
    port: int
    namespace: str
    reader_token: str
    nobody_token: str
    proc: subprocess.Popen[bytes]
    log: Path
    mode: str
    tls: ssl.SSLContext | None
    """What a client verifies the agent with; None for plain HTTP."""

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"{self.scheme}://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.tls) as response:
                return int(response.status), dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


def _agent_tls(mode: str, directory: Path) -> tuple[dict[str, str], ssl.SSLContext | None]:
    """The agent's TLS environment for ``mode``, and how a client verifies it."""
    if mode == "plain":
        return {"HEADROOM_PLAIN_HTTP": "true"}, None
    if mode == "files":
        cert, key = self_signed_pem(["127.0.0.1", "localhost"])
        (directory / "tls.crt").write_bytes(cert)
        (directory / "tls.key").write_bytes(key)
        env = {
            "HEADROOM_TLS_CERT_FILE": str(directory / "tls.crt"),
            "HEADROOM_TLS_KEY_FILE": str(directory / "tls.key"),
        }
        return env, ssl.create_default_context(cadata=cert.decode())  # verified, by name
    # Self-signed: nothing to verify against; the fingerprint is checked from the log.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return {}, context


def _grant_reader(cp: ControlPlane, namespace: str, role: str) -> None:
    cp.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    for account in ("reader", "nobody"):
        cp.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"metadata": {"name": account}},
        )
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    cp.api(
        "POST",
        f"{rbac}/clusterroles",
        {
            "metadata": {"name": role},
            "rules": [{"nonResourceURLs": GUARDED, "verbs": ["get"]}],
        },
    )
    cp.api(
        "POST",
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )

    def binding_in_effect() -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{namespace}:reader",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "nonResourceAttributes": {"path": GUARDED[0], "verb": "get"},
            },
        }
        answer = cp.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return bool(answer["status"].get("allowed"))

    # RBAC reaches the authorizer through an informer: wait, so no refusal gets cached.
    wait_until(binding_in_effect, timeout=10, what="the reader's ClusterRoleBinding")


@pytest.fixture(scope="module", params=MODES)
def endpoint(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint]:
    """RBAC for reader/nobody, a Node, and ``headroom agent`` serving on a free port."""
    cp = control_plane
    mode: str = request.param
    namespace, role, node = unique("admin-ep"), unique("headroom-agent-reader"), unique("node")
    _grant_reader(cp, namespace, role)
    create_node(cp, node)
    work = tmp_path_factory.mktemp("agent")
    log = work / "agent.log"
    tls_env, client_tls = _agent_tls(mode, work)
    port = free_ports(1)[0]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEADROOM_")},
        **tls_env,
        "NODE_NAME": node,
        # One cycle a minute: after the first write the endpoint's figures stay
        # those of the report for the whole module.
        "HEADROOM_INTERVAL_SECONDS": "60",
        "HEADROOM_HEARTBEAT_SECONDS": "60",
        "HEADROOM_LISTEN_HOST": "127.0.0.1",
        "HEADROOM_LISTEN_PORT": str(port),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "headroom.cli", "agent", "--kubeconfig", str(cp.kubeconfig)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    ep = Endpoint(
        node=node,
        port=port,
        namespace=namespace,
        reader_token=cp.request_token(namespace, "reader"),
        nobody_token=cp.request_token(namespace, "nobody"),
        proc=proc,
        log=log,
        mode=mode,
        tls=client_tls,
    )
    try:
        wait_until(
            lambda: (get_report(cp, node) or {}).get("status") is not None,
            timeout=20,
            what=f"the agent's first report (log: {log})",
        )
        yield ep
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        for path in (
            f"{rbac}/clusterrolebindings/{role}",
            f"{rbac}/clusterroles/{role}",
            f"/api/v1/namespaces/{namespace}",
            f"/api/v1/nodes/{node}",
        ):
            cp.api("DELETE", path)


@pytest.mark.requirement("SC-004")
def test_plain_http_to_the_tls_port_is_refused(endpoint: Endpoint) -> None:
    if endpoint.tls is None:
        # Plain HTTP was asked for: it is served (and the agent says so in its log).
        assert endpoint.get("/system/resources", endpoint.reader_token)[0] == 200
        assert "tokens travel in clear" in endpoint.log.read_text()
        return
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    connection.request("GET", "/system/resources", headers=_bearer(endpoint.reader_token))
    answer = connection.getresponse()
    body = answer.read()
    assert answer.status == 400 and b"use https://" in body
    assert b"cpu_percent" not in body
    connection.close()


@pytest.mark.requirement("SC-004")
def test_the_certificate_served_is_the_one_configured(endpoint: Endpoint) -> None:
    if endpoint.tls is None:  # plain HTTP asked for: no TLS at all on the port
        with (
            socket.create_connection(("127.0.0.1", endpoint.port), timeout=3) as raw,
            pytest.raises((ssl.SSLError, OSError)),  # no ServerHello: an alert, or nothing
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        return
    with (
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as raw,
        endpoint.tls.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
        assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
    assert der is not None
    if endpoint.mode == "self-signed":
        logged = re.search(
            r"self-signed certificate sha256 ([0-9a-f]{64})", endpoint.log.read_text()
        )
        assert logged is not None, endpoint.log.read_text()
        assert logged.group(1) == hashlib.sha256(der).hexdigest()
    # "files": the context verified the chain and the name already.


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_probes_are_open(endpoint: Endpoint) -> None:
    assert endpoint.get("/healthz")[0] == 200
    assert endpoint.get("/readyz")[0] == 200  # collected once, within 3 intervals


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
def test_anonymous_and_forged_tokens_are_401(endpoint: Endpoint, path: str) -> None:
    status, headers, body = endpoint.get(path)
    assert status == 401, endpoint.log.read_text()
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert b"cpu_percent" not in body
    assert endpoint.get(path, "not-a-token")[0] == 401


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize("path", GUARDED)
def test_a_service_account_without_the_role_is_403(endpoint: Endpoint, path: str) -> None:
    status, _, body = endpoint.get(path, endpoint.nobody_token)
    assert status == 403, endpoint.log.read_text()
    assert b"cpu_percent" not in body and b"headroom_agent" not in body


@pytest.mark.requirement("SR-003")
def test_reader_gets_the_figures_of_the_written_report(
    control_plane: ControlPlane, endpoint: Endpoint
) -> None:
    status, headers, body = endpoint.get("/system/resources", endpoint.reader_token)
    assert status == 200, endpoint.log.read_text()
    assert headers["Content-Type"].startswith("application/json")
    answer: dict[str, Any] = json.loads(body)
    report = get_report(control_plane, endpoint.node)
    assert report is not None
    written = report["status"]
    assert answer["collected_at"] == written["collectedAt"]
    assert answer["node"] == endpoint.node
    assert answer["cpu_percent"] == written["cpu"]["utilizationPercent"]
    assert answer["memory"]["total"] == written["memory"]["totalBytes"]
    # Every figure, not just a few: the endpoint is the report in the old shape.
    model = ResourceReportStatus.model_validate(written)
    status = ReportStatus(
        collectedAt=model.collectedAt,
        agentVersion=model.agentVersion,
        heartbeatSeconds=model.heartbeatSeconds,
        cpu=CpuFigures(**model.cpu.model_dump()),
        memory=MemoryFigures(**model.memory.model_dump()),
        disks=[DiskFigures(**disk.model_dump()) for disk in model.disks],
    )
    expected = system_resources(status, endpoint.node)
    assert answer == json.loads(json.dumps(expected))


@pytest.mark.requirement("SR-003")
def test_metrics_need_the_token_too_and_count_the_write(endpoint: Endpoint) -> None:
    assert endpoint.get("/metrics")[0] == 401
    assert endpoint.get("/metrics", endpoint.nobody_token)[0] == 403
    status, headers, body = endpoint.get("/metrics", endpoint.reader_token)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert "headroom_agent_report_writes_total 1.0" in text
    assert "headroom_agent_collection_cycles_total 1.0" in text
    assert "headroom_agent_last_successful_write_timestamp_seconds" in text


def _reviewer(config: KubeConfig) -> Authorizer:
    return Authorizer(KubeReviewer(KubeClient(config, timeout=3.0)))


@pytest.mark.requirement("SR-003")
def test_rbac_decides_per_url_and_reviews_fail_closed(
    control_plane: ControlPlane, endpoint: Endpoint, tmp_path: Path
) -> None:
    authorizer = _reviewer(from_kubeconfig(control_plane.kubeconfig))
    assert authorizer.authorize(endpoint.reader_token, "/system/resources") is Decision.ALLOWED
    assert authorizer.authorize(endpoint.reader_token, "/debug/pprof") is Decision.FORBIDDEN
    assert authorizer.authorize("forged", "/metrics") is Decision.UNAUTHENTICATED

    # An agent identity that may not create reviews is refused by the API server: 503, not 200.
    weak = control_plane.write_kubeconfig_for_token(endpoint.nobody_token, tmp_path / "nobody")
    denied_reviews = _reviewer(from_kubeconfig(weak))
    assert denied_reviews.authorize(endpoint.reader_token, "/metrics") is Decision.UNAVAILABLE

    # No API server at all: 503 as well.
    gone = KubeConfig(server=f"https://127.0.0.1:{free_ports(1)[0]}", insecure=True)
    assert _reviewer(gone).authorize(endpoint.reader_token, "/metrics") is Decision.UNAVAILABLE


def test_sigterm_stops_the_agent_and_its_endpoint(endpoint: Endpoint) -> None:
    endpoint.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = endpoint.proc.wait(timeout=10)
    assert code == 0, endpoint.log.read_text()
    assert time.monotonic() - started < 5
    with pytest.raises(urllib.error.URLError):
        endpoint.get("/healthz")
