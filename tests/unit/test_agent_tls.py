"""TLS of the admin endpoint, served for real on localhost (SC-004): protocol floor, suites,
plain HTTP refused, certificates from files (renewed in place) and self-signed in memory."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from headroom.agent.admin import AdminServer
from headroom.agent.auth import Decision
from headroom.agent.settings import AgentSettings, SettingsError
from headroom.agent.tls import CertificateFiles, SelfSigned, TlsSource, self_signed_pem
from tests.unit.test_agent_admin import World


@pytest.fixture
def world() -> World:
    w = World()
    w.authorizer.decisions = {"reader": Decision.ALLOWED, "nobody": Decision.FORBIDDEN}
    w.ready = True
    return w


def _serve(world: World, tls: TlsSource | None) -> Iterator[AdminServer]:
    server = AdminServer(world.sources(), "127.0.0.1", 0, tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def self_signed() -> SelfSigned:
    return SelfSigned.make(["worker-1", "localhost", "127.0.0.1"])


@pytest.fixture
def served(world: World, self_signed: SelfSigned) -> Iterator[AdminServer]:
    yield from _serve(world, self_signed)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get(
    port: int, path: str, token: str | None, context: ssl.SSLContext
) -> tuple[int, bytes, bytes]:
    """(status, body, the server certificate's DER) over HTTPS."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        assert connection.sock is not None
        der = connection.sock.getpeercert(binary_form=True)
        assert der is not None
        return answer.status, answer.read(), der
    finally:
        connection.close()


@pytest.mark.requirement("SC-004", "SR-003")
def test_self_signed_serves_the_token_check_over_tls(
    served: AdminServer, self_signed: SelfSigned, world: World
) -> None:
    assert _get(served.port, "/system/resources", None, _unverified())[0] == 401
    assert _get(served.port, "/metrics", "nobody", _unverified())[0] == 403
    status, body, der = _get(served.port, "/metrics", "reader", _unverified())
    assert status == 200 and b"headroom_agent" in body
    # The certificate served is the one whose fingerprint the agent logs (pinnable).
    assert hashlib.sha256(der).hexdigest() == self_signed.fingerprint


@pytest.mark.requirement("SC-004")
def test_plain_http_to_the_tls_port_is_refused_unread(served: AdminServer, world: World) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    connection.request("GET", "/system/resources", headers={"Authorization": "Bearer reader"})
    answer = connection.getresponse()
    assert answer.status == 400
    assert b"use https://" in answer.read()
    assert world.authorizer.asked == []  # the token sent in clear was never even checked


@pytest.mark.requirement("SC-004")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_below_1_2_is_refused(served: AdminServer, version: ssl.TLSVersion) -> None:
    context = _unverified()
    context.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer the old protocol at all
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = version
    with pytest.raises((ssl.SSLError, OSError)):
        _get(served.port, "/healthz", None, context)


@pytest.mark.requirement("SC-004")
def test_tls_1_2_without_forward_secrecy_is_refused(served: AdminServer) -> None:
    context = _unverified()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-GCM-SHA256:AES256-SHA")  # RSA key exchange, no ECDHE
    with pytest.raises(ssl.SSLError):
        _get(served.port, "/healthz", None, context)
    # ... and an ECDHE AEAD suite over 1.2 is served.
    context = _unverified()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    connection = http.client.HTTPSConnection("127.0.0.1", served.port, timeout=5, context=context)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    assert connection.sock is not None
    name, protocol, _ = connection.sock.cipher()  # type: ignore[misc]
    assert protocol == "TLSv1.2" and name.startswith("ECDHE-ECDSA-") and "GCM" in name
    connection.close()


def _write_pair(directory: Path, names: list[str]) -> tuple[Path, Path, bytes]:
    cert, key = self_signed_pem(names)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(cert)
    (directory / "tls.key").write_bytes(key)
    return directory / "tls.crt", directory / "tls.key", cert


@pytest.mark.requirement("SC-004")
def test_certificate_from_files_verifies_and_renews_in_place(world: World, tmp_path: Path) -> None:
    """A Secret volume swaps its ``..data`` symlink on renewal: the next connection sees it."""
    first = tmp_path / "v1"
    _, _, cert_pem = _write_pair(first, ["localhost", "127.0.0.1"])
    current = tmp_path / "current"
    current.symlink_to(first)
    now = [0.0]
    files = CertificateFiles(
        current / "tls.crt", current / "tls.key", clock=lambda: now[0], check_every=10
    )
    files.load()
    for server in _serve(world, files):
        verified = ssl.create_default_context(cadata=cert_pem.decode())
        status, _, der = _get(server.port, "/metrics", "reader", verified)
        assert status == 200
        assert der == ssl.PEM_cert_to_DER_cert(cert_pem.decode())

        _, _, renewed_pem = _write_pair(tmp_path / "v2", ["localhost", "127.0.0.1"])
        swap = tmp_path / "swap"
        swap.symlink_to(tmp_path / "v2")
        os.replace(swap, current)
        now[0] = 11.0
        renewed = ssl.create_default_context(cadata=renewed_pem.decode())
        assert _get(server.port, "/healthz", None, renewed)[0] == 200
        assert files.reloads == 1
        with pytest.raises(ssl.SSLCertVerificationError):
            _get(server.port, "/healthz", None, verified)  # the old certificate is gone

        # A broken renewal keeps the working certificate.
        (tmp_path / "v2" / "tls.key").write_bytes(b"not a key")
        now[0] = 22.0
        assert _get(server.port, "/healthz", None, renewed)[0] == 200


def test_a_broken_pair_refuses_to_load(tmp_path: Path) -> None:
    cert, _, _ = _write_pair(tmp_path / "a", ["localhost"])
    _, other_key, _ = _write_pair(tmp_path / "b", ["localhost"])
    with pytest.raises(ssl.SSLError):
        CertificateFiles(cert, other_key).load()
    with pytest.raises(FileNotFoundError):
        CertificateFiles(tmp_path / "missing.crt", other_key).load()


def test_self_signed_certificate_names_the_node() -> None:
    from cryptography import x509

    cert_pem, _ = self_signed_pem(["worker-1", "localhost", "127.0.0.1", "::1"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["worker-1", "localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_handshake_that_never_comes_does_not_hold_the_endpoint(served: AdminServer) -> None:
    """A client that connects and says nothing holds one thread, not the server."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5):
        assert _get(served.port, "/healthz", None, _unverified())[0] == 200


def test_tls_settings_come_in_pairs_and_plain_is_explicit() -> None:
    with pytest.raises(SettingsError, match=r"tls_key_file .*both the certificate and its key"):
        AgentSettings.load(environ={"HEADROOM_TLS_CERT_FILE": "/etc/tls/tls.crt"})
    with pytest.raises(SettingsError, match=r"plain_http .*HEADROOM_PLAIN_HTTP"):
        AgentSettings.load(
            environ={
                "HEADROOM_PLAIN_HTTP": "true",
                "HEADROOM_TLS_CERT_FILE": "/a",
                "HEADROOM_TLS_KEY_FILE": "/b",
            }
        )
    with pytest.raises(SettingsError, match="is not true or false"):
        AgentSettings.load(environ={"HEADROOM_PLAIN_HTTP": "maybe"})
    assert AgentSettings.load(environ={}).plain_http is False
    assert AgentSettings.load(environ={"HEADROOM_PLAIN_HTTP": "true"}).plain_http is True


@pytest.mark.requirement("PR-002")
def test_the_agent_never_imports_cryptography_itself() -> None:
    """The self-signed pair is made in a child process: the agent keeps no ~12 MiB for it."""
    import subprocess
    import sys

    code = (
        "import sys; from headroom.agent.tls import SelfSigned;"
        "made = SelfSigned.make(['node-1', '127.0.0.1']);"
        "print(len(made.fingerprint), any(m.startswith('cryptography') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["64", "False"]
