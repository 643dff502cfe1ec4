"""A real Kubernetes control plane on loopback for integration tests (envtest style).

``ControlPlane`` runs etcd, kube-apiserver and (optionally) kube-controller-manager
as child processes on 127.0.0.1 with free ports, in a temporary directory holding
a throwaway PKI: a self-signed CA, serving certificates, an admin client
certificate (``O=system:masters``) and the service-account signing keys. The API
server runs with RBAC authorization, the default admission plugins (including
ValidatingAdmissionPolicy) and a service-account issuer, so TokenRequest works,
including pod-bound tokens that carry the pod's node name.

Nothing is mocked: tests talk to the real binaries with kubectl, helm or HTTPS.

Usage::

    with ControlPlane() as cp:
        cp.install_crds(Path("crds"))
        cp.kubectl("get", "nodes")
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import yaml

from tests.controlplane import pki
from tests.controlplane.binaries import (
    ClientBinaries,
    ServerBinaries,
    extract_client_binaries,
    find_server_binaries,
)

#: Controllers run by kube-controller-manager: garbage collection of
#: owner-referenced objects, namespace deletion, the ``default`` service account
#: in each namespace and legacy service-account token secrets.
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "clusterrole-aggregation",  # the chart's -view role into view/edit/admin (SC-005)
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
LOOPBACK = "127.0.0.1"

_LOG_TAIL_LINES = 40
_STOP_GRACE_SECONDS = 15.0
_START_ATTEMPTS = 3

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """Starting, stopping or talking to the control plane failed."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl/helm command failed; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(str(c) for c in self.cmd) if isinstance(self.cmd, list) else self.cmd
        return f"`{cmd}` exited with {self.returncode}:\n{self.stderr}{self.stdout}"


class ApiError(ControlPlaneError):
    """The API server answered a request made by ``ControlPlane.api`` with an error."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value; return that value.

    Raises TimeoutError (naming ``what``) when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --- ports ----------------------------------------------------------------------------

_ports_handed_out: set[int] = set()


def free_ports(count: int) -> list[int]:
    """Pick ``count`` distinct free TCP ports on loopback.

    All sockets are bound at once (so the kernel gives distinct ports) and ports
    already handed out by this process are avoided. A port can still be taken
    between here and the server's bind; ``ControlPlane.start`` retries then.
    """
    ports: list[int] = []
    sockets: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
            if port not in _ports_handed_out:
                ports.append(port)
    finally:
        for s in sockets:
            s.close()
    _ports_handed_out.update(ports)
    return ports


# --- child processes ------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent (never dlopen in a forked child)."""
    if sys.platform != "linux":
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: ask Linux to SIGKILL the child when its parent dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _preexec_fn() -> Callable[[], None] | None:
    # The death signal fires when the *thread* that forked exits, so use it only
    # from the main thread (a server started from a worker thread must not die
    # with that thread); atexit and teardown cover the rest.
    if _PRCTL is not None and threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


@dataclass
class _Component:
    """One server process of the control plane."""

    name: str
    binary: Path
    args: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._log.write(f"\n===== {stamp} starting {self.name} =====\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [str(self.binary), *self.args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: a Ctrl-C in the terminal reaches pytest only,
            # and teardown stops the servers in order.
            start_new_session=True,
            preexec_fn=_preexec_fn(),
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = _STOP_GRACE_SECONDS) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=grace)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# --- the control plane ----------------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback.

    Attributes set by ``start()``:
        server: the API server's https URL.
        kubeconfig: path of the admin kubeconfig (``O=system:masters``).
        ca_file: path of the CA certificate that signed the serving certificates.
        timings: seconds each component took to become ready on the last start.
    """

    def __init__(
        self,
        server_binaries: ServerBinaries | None = None,
        client_binaries: ClientBinaries | None = None,
        *,
        workdir: Path | None = None,
        with_controller_manager: bool = True,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        extra_apiserver_args: Sequence[str] = (),
        start_timeout: float = 90.0,
        keep_workdir: bool = False,
    ) -> None:
        """Prepare (but do not start) a control plane.

        Binaries default to ``find_server_binaries()`` (which never builds) and
        ``extract_client_binaries()``. ``workdir`` defaults to a new temporary
        directory, removed by ``stop()`` unless ``keep_workdir``.
        """
        self._server_binaries = server_binaries
        self._client_binaries = client_binaries
        self._given_workdir = workdir
        self._with_kcm = with_controller_manager
        self._controllers = tuple(controllers)
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        self.start_timeout = start_timeout
        self.keep_workdir = keep_workdir

        self.workdir: Path = Path()
        self.server: str = ""
        self.kubeconfig: Path = Path()
        self.ca_file: Path = Path()
        self.timings: dict[str, float] = {}
        self.apiserver_port = 0
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.kcm_port = 0

        self._etcd: _Component | None = None
        self._apiserver: _Component | None = None
        self._kcm: _Component | None = None
        self._admin_ssl: ssl.SSLContext | None = None
        self._admin: pki.CertPair | None = None
        self._serving: pki.CertPair | None = None
        self._kcm_cert: pki.CertPair | None = None
        self._sa_private = Path()
        self._sa_public = Path()
        self._started = False

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- lifecycle ------------------------------------------------------------------

    @property
    def binaries(self) -> ServerBinaries:
        """The server binaries in use."""
        if self._server_binaries is None:
            self._server_binaries = find_server_binaries(build=False)
        return self._server_binaries

    @property
    def clients(self) -> ClientBinaries:
        """kubectl and helm."""
        if self._client_binaries is None:
            self._client_binaries = extract_client_binaries()
        return self._client_binaries

    @property
    def has_controller_manager(self) -> bool:
        """Whether kube-controller-manager runs (it may be absent in KUBEBUILDER_ASSETS)."""
        return self._with_kcm and self.binaries.kube_controller_manager is not None

    def start(self) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager; wait until ready.

        On failure everything started is stopped again and ControlPlaneError is
        raised with the last lines of each server's log.
        """
        if self._started:
            raise ControlPlaneError("control plane already started")
        t0 = time.monotonic()
        atexit.register(self.stop)
        try:
            _ = self.binaries, self.clients
            self._prepare_workdir()
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._start_servers()
                    break
                except ControlPlaneError as exc:
                    busy = "address already in use" in str(exc)
                    self._stop_servers()
                    if not busy or attempt == _START_ATTEMPTS:
                        raise
            self._started = True
        except ControlPlaneError as exc:
            # Keep the logs for a look; the message already holds their tails.
            atexit.unregister(self.stop)
            self._stop_servers()
            raise ControlPlaneError(f"{exc}\n(logs kept in {self.log_dir})") from None
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0

    def stop(self) -> None:
        """Stop all servers (controller manager, API server, etcd) and clean up.

        Safe to call more than once and on a partly started plane.
        """
        atexit.unregister(self.stop)
        self._stop_servers()
        self._started = False
        if self.workdir != Path() and self._given_workdir is None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_apiserver(self, grace: float = _STOP_GRACE_SECONDS) -> None:
        """Stop only kube-apiserver (etcd and its data stay); see ``start_apiserver``."""
        if self._apiserver is None:
            raise ControlPlaneError("control plane not started")
        self._apiserver.stop(grace)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port with the same data; wait for /readyz."""
        if self._apiserver is None:
            raise ControlPlaneError("control plane not started")
        if self._apiserver.running():
            return
        t0 = time.monotonic()
        self._apiserver.start()
        self._wait_ready(self._apiserver, self._apiserver_ready)
        self.timings["kube-apiserver-restart"] = time.monotonic() - t0

    def restart_etcd(self, grace: float = _STOP_GRACE_SECONDS) -> float:
        """Stop etcd (SIGTERM) and start it again with the same data and ports.

        The API server stays up and reconnects by itself; returns the seconds
        until it answers ``/readyz`` again.
        """
        if self._etcd is None:
            raise ControlPlaneError("control plane not started")
        t0 = time.monotonic()
        self._etcd.stop(grace)
        self._etcd.start()
        self._wait_ready(self._etcd, self._etcd_ready)
        self._wait_ready(self._apiserver or self._etcd, self._apiserver_ready)
        self.timings["etcd-restart"] = time.monotonic() - t0
        return self.timings["etcd-restart"]

    def apiserver_running(self) -> bool:
        """Whether the kube-apiserver process is alive."""
        return self._apiserver is not None and self._apiserver.running()

    @property
    def log_dir(self) -> Path:
        """Directory of the servers' log files."""
        return self.workdir / "logs"

    # --- clients --------------------------------------------------------------------

    def _client_env(self, kubeconfig: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig)
        env["KUBECACHEDIR"] = str(self.workdir / "kube-cache")
        env["HELM_CACHE_HOME"] = str(self.workdir / "helm" / "cache")
        env["HELM_CONFIG_HOME"] = str(self.workdir / "helm" / "config")
        env["HELM_DATA_HOME"] = str(self.workdir / "helm" / "data")
        return env

    def _run(
        self,
        cmd: list[str],
        *,
        kubeconfig: Path,
        check: bool,
        input: str | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=self._client_env(kubeconfig),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (admin kubeconfig unless ``kubeconfig`` is given)."""
        kc = kubeconfig or self.kubeconfig
        cmd = [str(self.clients.kubectl), f"--kubeconfig={kc}", *args]
        return self._run(cmd, kubeconfig=kc, check=check, input=input, timeout=timeout)

    def helm(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this control plane (its caches live in the workdir)."""
        kc = kubeconfig or self.kubeconfig
        cmd = [str(self.clients.helm), *args]
        return self._run(cmd, kubeconfig=kc, check=check, input=None, timeout=timeout)

    def apply_file(self, path: Path, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``kubectl apply --server-side`` one file (or directory) of manifests."""
        return self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=headroom-tests",
            "-f",
            str(path),
            timeout=timeout,
        )

    def install_crds(self, directory: Path, *, timeout: float = 60.0) -> list[str]:
        """Apply every ``*.yaml``/``*.yml`` in ``directory``; wait until each CRD is Established.

        Returns the names of the CRDs found. An empty or missing directory
        installs nothing.
        """
        if not directory.is_dir():
            return []
        files = [p for p in iter_yaml_files(directory) if p.name != "kustomization.yaml"]
        names: list[str] = []
        for f in files:
            docs = [d for d in yaml.safe_load_all(f.read_text(encoding="utf-8")) if d]
            if not docs:
                continue
            names += [
                d["metadata"]["name"] for d in docs if d.get("kind") == "CustomResourceDefinition"
            ]
            self.apply_file(f, timeout=timeout)
        for name in names:
            self.wait_crd_established(name, timeout=timeout)
        return names

    def wait_crd_established(self, name: str, *, timeout: float = 60.0) -> None:
        """Poll the CRD until its ``Established`` condition is True."""
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        last: list[Any] = []

        def established() -> bool:
            conditions = (self.api("GET", path).get("status") or {}).get("conditions") or []
            last[:] = conditions
            return any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            )

        try:
            wait_until(established, timeout=timeout, what=f"CRD {name} Established")
        except TimeoutError as exc:
            raise ControlPlaneError(f"{exc}; conditions: {json.dumps(last)}") from exc

    # --- raw API access -------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        timeout: float = 30.0,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Make one request as the admin; return the decoded JSON answer.

        Raises ApiError for a non-2xx answer.
        """
        if self._admin_ssl is None:
            raise ControlPlaneError("control plane not started")
        status, text = self._request(
            self._admin_ssl, self.apiserver_port, method, path, body, timeout, content_type
        )
        if not 200 <= status < 300:
            raise ApiError(method, path, status, text)
        result: dict[str, Any] = json.loads(text) if text else {}
        return result

    @staticmethod
    def _request(
        ctx: ssl.SSLContext,
        port: int,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        timeout: float,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        conn = http.client.HTTPSConnection(LOOPBACK, port, context=ctx, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", errors="replace")
        finally:
            conn.close()

    # --- service-account tokens -----------------------------------------------------

    def request_token(
        self,
        namespace: str,
        service_account: str,
        *,
        pod_name: str | None = None,
        pod_uid: str | None = None,
        audiences: Sequence[str] | None = None,
        expiration_seconds: int = 3600,
    ) -> str:
        """Issue a token for a service account (TokenRequest API).

        With ``pod_name`` the token is bound to that pod (its UID is looked up
        unless given); such a token carries the pod's node name, which the API
        server exposes as the ``authentication.kubernetes.io/node-name`` extra
        of the authenticated user. ``audiences`` default to the API server's.
        """
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences is not None:
            spec["audiences"] = list(audiences)
        if pod_name is not None:
            if pod_uid is None:
                pod = self.api("GET", f"/api/v1/namespaces/{namespace}/pods/{pod_name}")
                pod_uid = str(pod["metadata"]["uid"])
            spec["boundObjectRef"] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod_name,
                "uid": pod_uid,
            }
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        answer = self.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            body,
        )
        return str(answer["status"]["token"])

    def token_review(self, token: str, audiences: Sequence[str] | None = None) -> dict[str, Any]:
        """Run a TokenReview for ``token``; return its ``status``."""
        spec: dict[str, Any] = {"token": token}
        if audiences is not None:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        answer = self.api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)
        status: dict[str, Any] = answer.get("status", {})
        return status

    def write_kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """Write a kubeconfig that authenticates with ``token``; return ``path``."""
        self._write_kubeconfig(path, "token-user", {"token": token})
        return path

    # --- internals ------------------------------------------------------------------

    def _prepare_workdir(self) -> None:
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="headroom-cp-"))
        pki_dir = self.workdir / "pki"
        for d in (pki_dir, self.log_dir, self.workdir / "kcm"):
            d.mkdir(parents=True, exist_ok=True)

        ca = pki.create_ca(pki_dir)
        self.ca_file = ca.pair.cert
        self._serving = ca.issue(
            pki_dir,
            "serving",
            common_name="kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=[LOOPBACK, "10.0.0.1"],
            server=True,
        )
        self._admin = ca.issue(
            pki_dir,
            "admin",
            common_name="headroom-test-admin",
            organizations=["system:masters"],
            client=True,
        )
        # Full rights, so that --use-service-account-credentials=false works
        # for every controller (the garbage collector deletes any kind).
        self._kcm_cert = ca.issue(
            pki_dir,
            "kube-controller-manager",
            common_name="system:kube-controller-manager",
            organizations=["system:masters"],
            client=True,
        )
        self._sa_private, self._sa_public = pki.create_service_account_keys(pki_dir)

        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        self._admin_ssl = ctx

    def _start_servers(self) -> None:
        # A fresh etcd data dir: an earlier attempt may have stored other peer URLs.
        etcd_dir = self.workdir / "etcd"
        shutil.rmtree(etcd_dir, ignore_errors=True)
        etcd_dir.mkdir(mode=0o700)
        (
            self.etcd_client_port,
            self.etcd_peer_port,
            self.apiserver_port,
            self.kcm_port,
        ) = free_ports(4)
        self.server = f"https://{LOOPBACK}:{self.apiserver_port}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        if self._admin is None or self._kcm_cert is None:
            raise ControlPlaneError("PKI not prepared")
        self._write_kubeconfig(
            self.kubeconfig,
            "admin",
            {
                "client-certificate-data": _b64(self._admin.cert),
                "client-key-data": _b64(self._admin.key),
            },
        )
        kcm_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        self._write_kubeconfig(
            kcm_kubeconfig,
            "kube-controller-manager",
            {
                "client-certificate-data": _b64(self._kcm_cert.cert),
                "client-key-data": _b64(self._kcm_cert.key),
            },
        )

        t0 = time.monotonic()
        self._etcd = _Component("etcd", self.binaries.etcd, self._etcd_args(), self._log("etcd"))
        self._etcd.start()
        self._wait_ready(self._etcd, self._etcd_ready)
        self.timings["etcd"] = time.monotonic() - t0

        t0 = time.monotonic()
        self._apiserver = _Component(
            "kube-apiserver",
            self.binaries.kube_apiserver,
            self._apiserver_args(),
            self._log("kube-apiserver"),
        )
        self._apiserver.start()
        self._wait_ready(self._apiserver, self._apiserver_ready)
        self.timings["kube-apiserver"] = time.monotonic() - t0

        kcm_binary = self.binaries.kube_controller_manager
        if self._with_kcm and kcm_binary is not None:
            t0 = time.monotonic()
            self._kcm = _Component(
                "kube-controller-manager",
                kcm_binary,
                self._kcm_args(kcm_kubeconfig),
                self._log("kube-controller-manager"),
            )
            self._kcm.start()
            self._wait_ready(self._kcm, self._kcm_ready)
            self.timings["kube-controller-manager"] = time.monotonic() - t0

    @property
    def _serving_pair(self) -> pki.CertPair:
        if self._serving is None:
            raise ControlPlaneError("PKI not prepared")
        return self._serving

    def _stop_servers(self) -> None:
        for comp in (self._kcm, self._apiserver, self._etcd):
            if comp is not None:
                comp.stop()

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _etcd_args(self) -> list[str]:
        client = f"http://{LOOPBACK}:{self.etcd_client_port}"
        peer = f"http://{LOOPBACK}:{self.etcd_peer_port}"
        return [
            "--name=headroom",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=headroom={peer}",
            "--initial-cluster-state=new",
            # Test data only: no fsync makes writes far faster on slow disks.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        return [
            f"--etcd-servers=http://{LOOPBACK}:{self.etcd_client_port}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            # A loopback advertise address is refused by the lease endpoint
            # reconciler; the `kubernetes` Service endpoints do not matter here.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.workdir / 'pki'}",
            f"--tls-cert-file={self._serving_pair.cert}",
            f"--tls-private-key-file={self._serving_pair.key}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self._sa_public}",
            f"--service-account-signing-key-file={self._sa_private}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The default admission plugins include ValidatingAdmissionPolicy
            # (GA); name it so that a change of defaults cannot drop it.
            "--enable-admission-plugins=ValidatingAdmissionPolicy",
            "--allow-privileged=true",
            "--profiling=false",
            # Close open watches (the controller manager's) on SIGTERM instead of
            # waiting for them: the server then stops in about a second, not 60 s.
            "--shutdown-watch-termination-grace-period=2s",
            *self._extra_apiserver_args,
        ]

    def _kcm_args(self, kubeconfig: Path) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={self.kcm_port}",
            f"--tls-cert-file={self._serving_pair.cert}",
            f"--tls-private-key-file={self._serving_pair.key}",
            f"--cert-dir={self.workdir / 'kcm'}",
            f"--controllers={','.join(self._controllers)}",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={self._sa_private}",
            f"--root-ca-file={self.ca_file}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _write_kubeconfig(self, path: Path, user: str, credentials: Mapping[str, str]) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "headroom-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64(self.ca_file),
                    },
                }
            ],
            "users": [{"name": user, "user": dict(credentials)}],
            "contexts": [
                {
                    "name": "headroom-test",
                    "context": {"cluster": "headroom-test", "user": user, "namespace": "default"},
                }
            ],
            "current-context": "headroom-test",
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False)

    # readiness probes: each returns True when ready, False otherwise.

    def _etcd_ready(self) -> bool:
        conn = http.client.HTTPConnection(LOOPBACK, self.etcd_client_port, timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status == 200 and json.loads(resp.read()).get("health") == "true"
        except (OSError, ValueError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _https_ok(self, port: int, path: str) -> bool:
        assert self._admin_ssl is not None
        try:
            status, _ = self._request(self._admin_ssl, port, "GET", path, None, 5.0)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def _apiserver_ready(self) -> bool:
        return self._https_ok(self.apiserver_port, "/readyz")

    def _kcm_ready(self) -> bool:
        return self._https_ok(self.kcm_port, "/healthz")

    def _wait_ready(self, comp: _Component, probe: Callable[[], bool]) -> None:
        def ready() -> bool:
            if not comp.running():
                raise ControlPlaneError(
                    f"{comp.name} exited during start-up"
                    f" (code {comp.proc.returncode if comp.proc else '?'})"
                    f"{self._log_tails()}"
                )
            return probe()

        try:
            wait_until(ready, timeout=self.start_timeout, interval=0.1, what=f"{comp.name} ready")
        except TimeoutError as exc:
            raise ControlPlaneError(f"{exc}{self._log_tails()}") from exc

    def _log_tails(self) -> str:
        parts = [
            f"\n--- last {_LOG_TAIL_LINES} lines of {c.log_path} ---\n{c.log_tail()}"
            for c in self._components()
        ]
        return "".join(parts)

    def _components(self) -> Iterator[_Component]:
        for comp in (self._etcd, self._apiserver, self._kcm):
            if comp is not None:
                yield comp


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def manifests(*docs: Mapping[str, Any]) -> str:
    """Render objects as a multi-document YAML string (for ``kubectl(..., input=)``)."""
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def iter_yaml_files(directory: Path) -> Iterable[Path]:
    """The ``*.yaml``/``*.yml`` files directly in ``directory``, sorted."""
    return sorted(p for p in directory.glob("*") if p.suffix in (".yaml", ".yml"))
