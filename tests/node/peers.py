"""The peers Headroom is compared with, running beside the real node: metrics-server and
VPA's recommender, built from the Go module proxy (tests/scanners/build-go-tool.sh).

Both run as processes on this machine with the admin kubeconfig, as the kube-scheduler
of tests/node does; the rest is what a cluster has:

* metrics-server serves ``metrics.k8s.io`` through the aggregation layer: an
  ``APIService`` names the ``kube-system/metrics-server`` Service, whose endpoint (this
  machine's address and metrics-server's port) the API server routes to
  (``--enable-aggregator-routing``; no kube-proxy here). It scrapes the kubelet's
  ``/metrics/resource`` at the node's InternalIP and status port, as its own manifests
  set it up (``--kubelet-use-node-status-port``, ``--metric-resolution=15s``), and
  accepts the kubelet's self-signed serving certificate (``--kubelet-insecure-tls``, as
  on kind). ``kubectl top`` and the HPA controller read it through the API server.
* VPA's recommender watches ``VerticalPodAutoscaler`` objects (its CRDs from the same
  module), reads metrics-server and writes ``status.recommendation``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.controlplane.binaries import BinariesUnavailableError
from tests.controlplane.cluster import ApiError, ControlPlane, free_ports, wait_until
from tests.node.node import LoggedProcess, spawn_logged

BUILD_GO_TOOL = Path(__file__).resolve().parents[1] / "scanners" / "build-go-tool.sh"
METRICS_SERVER_VERSION = "0.9.0"
VPA_VERSION = "1.8.1"
METRICS_API = "/apis/metrics.k8s.io/v1beta1"
VPA_API = "/apis/autoscaling.k8s.io/v1"


@dataclass(frozen=True)
class PeerBinaries:
    metrics_server: Path
    vpa_recommender: Path
    vpa_crds: Path


def _tool(name: str, *, build: bool) -> Path:
    args = ["bash", str(BUILD_GO_TOOL), name, "--print-path"]
    if not build:
        args.insert(3, "--check")
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False)
    if proc.returncode != 0:
        raise BinariesUnavailableError(
            f"{BUILD_GO_TOOL.name} {name}{'' if build else ' --check'} failed"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def peer_binaries(*, build: bool) -> PeerBinaries:
    """metrics-server and the VPA recommender (built first when ``build``)."""
    vpa = _tool("vpa-recommender", build=build)
    return PeerBinaries(
        metrics_server=_tool("metrics-server", build=build),
        vpa_recommender=vpa,
        vpa_crds=vpa.parent / "vpa-crds.yaml",
    )


@dataclass(frozen=True)
class PeerSettings:
    """How often each peer works: metrics-server's scrape, the recommender's loop."""

    metric_resolution_s: int = 15
    vpa_interval_s: int = 60


class Peers:
    """metrics-server and VPA's recommender against ``cp``, the kubelet at ``node_ip``."""

    def __init__(
        self, cp: ControlPlane, binaries: PeerBinaries, node_ip: str, settings: PeerSettings
    ) -> None:
        self.cp = cp
        self.binaries = binaries
        self.node_ip = node_ip
        self.settings = settings
        self.workdir = Path(tempfile.mkdtemp(prefix="headroom-peers-"))
        self._procs: dict[str, LoggedProcess] = {}
        self.timings: dict[str, float] = {}

    def pid(self, name: str) -> int:
        """Process ID of ``metrics-server`` or ``vpa-recommender``."""
        return self._procs[name].proc.pid

    def log_tail(self, name: str) -> str:
        return self._procs[name].tail() if name in self._procs else "(not started)"

    def start(self) -> None:
        try:
            t = time.monotonic()
            self._start_metrics_server()
            self.timings["metrics-server"] = time.monotonic() - t
            t = time.monotonic()
            self._start_vpa_recommender()
            self.timings["vpa-recommender"] = time.monotonic() - t
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # An APIService with no server behind it fails discovery, and the namespace
        # controller then refuses to finish deleting any namespace: take it away first.
        if "metrics-server" in self._procs:
            with contextlib.suppress(ApiError):
                self.cp.api(
                    "DELETE", "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io"
                )
        for proc in reversed(list(self._procs.values())):
            proc.stop()
        self._procs.clear()
        subprocess.run(["rm", "-rf", str(self.workdir)], check=False)

    # --- metrics-server -----------------------------------------------------------------

    def _start_metrics_server(self) -> None:
        (port,) = free_ports(1)
        kc = str(self.cp.kubeconfig)
        self._spawn(
            "metrics-server",
            [
                str(self.binaries.metrics_server),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--bind-address={self.node_ip}",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'metrics-server-certs'}",
                "--kubelet-insecure-tls",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                f"--metric-resolution={self.settings.metric_resolution_s}s",
            ],
        )
        self._register_metrics_api(port)

        def serving() -> bool:
            self.check_alive()
            try:
                nodes = self.cp.api("GET", f"{METRICS_API}/nodes")
            except ApiError:
                return False
            return bool(nodes.get("items"))

        try:
            # The first node figures come after two kubelet scrapes.
            wait_until(serving, timeout=180, interval=2, what="metrics-server's node metrics")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail('metrics-server')}") from None

    def _register_metrics_api(self, port: int) -> None:
        ns = "kube-system"
        self.cp.api(
            "POST",
            f"/api/v1/namespaces/{ns}/services",
            {
                "metadata": {"name": "metrics-server"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
            },
        )
        self.cp.api(
            "POST",
            f"/api/v1/namespaces/{ns}/endpoints",
            {
                "metadata": {"name": "metrics-server"},
                "subsets": [
                    {
                        "addresses": [{"ip": self.node_ip}],
                        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                    }
                ],
            },
        )
        self.cp.api(
            "POST",
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            {
                "metadata": {
                    "name": "metrics-server-host",
                    "labels": {"kubernetes.io/service-name": "metrics-server"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [self.node_ip], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        )
        self.cp.api(
            "POST",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {
                    "service": {"name": "metrics-server", "namespace": ns, "port": 443},
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    # metrics-server's own self-signed serving certificate, as its manifests.
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        )

    # --- VPA's recommender --------------------------------------------------------------

    def _start_vpa_recommender(self) -> None:
        self.cp.kubectl("apply", "--server-side", "-f", str(self.binaries.vpa_crds), timeout=60)
        wait_until(
            lambda: _served(self.cp, f"{VPA_API}/verticalpodautoscalers"),
            timeout=60,
            what="the VerticalPodAutoscaler CRD",
        )
        (metrics_port,) = free_ports(1)
        self._spawn(
            "vpa-recommender",
            [
                str(self.binaries.vpa_recommender),
                f"--kubeconfig={self.cp.kubeconfig}",
                f"--recommender-interval={self.settings.vpa_interval_s}s",
                f"--address=127.0.0.1:{metrics_port}",
                "--leader-elect=false",
                "--v=2",
            ],
        )
        time.sleep(1)
        self.check_alive()

    # --- processes ----------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        self._procs[name] = spawn_logged(name, args, self.workdir / f"{name}.log")

    def check_alive(self) -> None:
        """Raise when a peer has exited."""
        for proc in self._procs.values():
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited ({proc.proc.returncode}):\n{proc.tail()}")


def _served(cp: ControlPlane, path: str) -> bool:
    try:
        cp.api("GET", path)
    except ApiError:
        return False
    return True


@contextlib.contextmanager
def running_peers(
    cp: ControlPlane, binaries: PeerBinaries, node_ip: str, settings: PeerSettings
) -> Iterator[Peers]:
    peers = Peers(cp, binaries, node_ip, settings)
    peers.start()
    try:
        yield peers
    finally:
        peers.stop()


def vpa_object(namespace: str, deployment: str) -> dict[str, Any]:
    """A VerticalPodAutoscaler that only recommends (``updateMode: "Off"``)."""
    return {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": deployment, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "updatePolicy": {"updateMode": "Off"},
        },
    }


def kubectl_top_pods(cp: ControlPlane, namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``kubectl top pod --containers``: (pod, container) -> (CPU, memory) as printed."""
    out = cp.kubectl(
        "top", "pod", "-n", namespace, "--containers", "--no-headers", check=False, timeout=60
    )
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            rows[(fields[0], fields[1])] = (fields[2], fields[3])
    return rows
