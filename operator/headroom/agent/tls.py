"""TLS of the agent's admin endpoint: a server context from files, or self-signed in memory.

Bearer tokens reach the endpoint, so it serves TLS by default (as the kubelet,
metrics-server and kube-rbac-proxy do). Two sources of the serving certificate:

* **files** (``tls_cert_file`` / ``tls_key_file``): a mounted ``kubernetes.io/tls``
  Secret, from cert-manager or made by hand. The files are checked for a change
  at most every ``RELOAD_CHECK_SECONDS`` when a connection is accepted, and a
  renewed certificate is served from the next connection on; a pair that does
  not load keeps the previous one (logged).
* **self-signed**: an ECDSA P-256 key and a certificate for the node's name,
  ``localhost`` and ``127.0.0.1``, made at start and kept in memory only (an
  anonymous ``memfd``, never a file on a disk). Clients cannot verify it
  against a CA: they skip verification (Prometheus: ``insecureSkipVerify``) or
  pin the SHA-256 fingerprint the agent logs at start. The pair is made by a
  short-lived child process (``python -m headroom.agent.tls``) that hands it
  back through a pipe: importing ``cryptography`` in the agent itself would
  keep 12-13 MiB of RSS for the agent's life (measured,
  ``benchmarks/agent_tls.py``) for one use at start.

Protocol: TLS 1.2 and 1.3 only. TLS 1.3 suites are OpenSSL's defaults
(TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256);
TLS 1.2 is limited to forward-secret AEAD suites, :data:`TLS12_CIPHERS`
(ECDHE-ECDSA/RSA with AES-GCM or ChaCha20-Poly1305). No compression, no
renegotiation, no session tickets.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

__all__ = [
    "TLS12_CIPHERS",
    "CertificateFiles",
    "SelfSigned",
    "TlsSource",
    "base_context",
    "self_signed_pem",
]

log = logging.getLogger(__name__)

#: OpenSSL cipher string for TLS 1.2: ECDHE key exchange, AEAD ciphers only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#: How often, at most, the certificate files are checked for a renewal.
RELOAD_CHECK_SECONDS = 10.0
#: Validity of the self-signed certificate (made anew at every start).
SELF_SIGNED_DAYS = 365


def base_context() -> ssl.SSLContext:
    """A server context with the protocol and suites above, no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.num_tickets = 0  # TLS 1.3: no resumption tickets either
    return context


class TlsSource:
    """What the server asks for: the context to wrap the next connection with."""

    def context(self) -> ssl.SSLContext:
        """The current server context (may reload first; called from any connection's thread)."""
        raise NotImplementedError


def _file_state(paths: Sequence[Path]) -> tuple[tuple[int, int, int], ...]:
    """(inode, size, mtime) of each file, links followed (a Secret volume swaps a symlink)."""
    states = []
    for path in paths:
        found = path.stat()
        states.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return tuple(states)


class CertificateFiles(TlsSource):
    """A certificate and key from files, reloaded when they change.

    ``load()`` raises (OSError, ssl.SSLError) when the pair cannot be used, so
    the agent refuses to start with a broken Secret rather than serve nothing.
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_every: float = RELOAD_CHECK_SECONDS,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.clock = clock
        self.check_every = check_every
        self.reloads = 0
        """Certificates loaded after the first (renewals seen)."""
        self._context: ssl.SSLContext | None = None
        self._state: tuple[tuple[int, int, int], ...] = ()
        self._next_check = 0.0
        self._lock = threading.Lock()

    def load(self) -> ssl.SSLContext:
        """Load the pair now; raise when it cannot be used."""
        state = _file_state((self.cert_file, self.key_file))
        context = base_context()
        context.load_cert_chain(self.cert_file, self.key_file)
        self._context, self._state = context, state
        self._next_check = self.clock() + self.check_every
        return context

    def context(self) -> ssl.SSLContext:
        with self._lock:
            return self._current()

    def _current(self) -> ssl.SSLContext:
        # A reload builds a new context: connections already wrapped keep theirs.
        if self._context is None:
            return self.load()
        now = self.clock()
        if now >= self._next_check:
            self._next_check = now + self.check_every
            try:
                changed = _file_state((self.cert_file, self.key_file)) != self._state
                if changed:
                    self.load()
                    self.reloads += 1
                    log.info("admin endpoint: serving the renewed certificate %s", self.cert_file)
            except (OSError, ssl.SSLError) as error:
                log.warning("admin endpoint: keeping the current certificate: %s", error)
        return self._context


@dataclass(frozen=True)
class SelfSigned(TlsSource):
    """A context with a certificate made in memory; ``fingerprint`` is its SHA-256 (hex)."""

    _context: ssl.SSLContext
    fingerprint: str

    @classmethod
    def make(cls, names: Sequence[str]) -> SelfSigned:
        """A fresh key and certificate for ``names`` (DNS names or IP addresses).

        Raises OSError when the child cannot make them.
        """
        cert_pem, key_pem = self_signed_in_child(names)
        context = base_context()
        _load_from_memory(context, key_pem + cert_pem)
        der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
        return cls(context, hashlib.sha256(der).hexdigest())

    def context(self) -> ssl.SSLContext:
        return self._context


def self_signed_pem(
    names: Sequence[str], *, days: int = SELF_SIGNED_DAYS, now: datetime | None = None
) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) of a new self-signed ECDSA P-256 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alternatives.append(x509.IPAddress(ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"headroom-agent {names[0]}")])
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


_KEY_MARK = b"-----BEGIN PRIVATE KEY-----"


def self_signed_in_child(names: Sequence[str], timeout: float = 60.0) -> tuple[bytes, bytes]:
    """:func:`self_signed_pem` run in a child process; the PEMs come back through a pipe."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "headroom.agent.tls", *names],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise OSError(f"making the self-signed certificate took over {timeout:g} s") from error
    cert, mark, key = child.stdout.partition(_KEY_MARK)
    if child.returncode != 0 or not mark or not cert.startswith(b"-----BEGIN CERTIFICATE"):
        problem = child.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise OSError(f"cannot make the self-signed certificate: {problem[0]}")
    return cert, mark + key


def _load_from_memory(context: ssl.SSLContext, pem: bytes) -> None:
    """``load_cert_chain`` wants a path: give it an anonymous in-memory file (Linux memfd)."""
    fd = os.memfd_create("headroom-agent-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _main(names: list[str]) -> int:
    """Write a new certificate, then its key, as PEM to stdout (for the agent's pipe)."""
    if not names:
        print("usage: python -m headroom.agent.tls NAME [NAME...]", file=sys.stderr)
        return 2
    cert, key = self_signed_pem(names)
    sys.stdout.buffer.write(cert + key)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
