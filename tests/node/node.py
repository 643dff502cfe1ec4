"""A real node beside the test control plane: containerd + runc + CNI bridge, kubelet and
kube-scheduler on this machine, running real pods from locally built images.

Everything that mounts runs inside one mount namespace of our own (a holder process
made with ``unshare --mount --propagation shared``): containerd, its shims, runc's
containers and the kubelet's volumes. The host's ``/`` stays as it is (private here),
yet the chart's ``mountPropagation: HostToContainer`` on ``/`` works, and every mount
of ours ends with the namespace. What cannot live in a namespace is recorded before the
start and put back at the end (``HostState``): sysctls the kubelet and the CNI bridge
set, nftables tables (the kubelet's iptables chains, our DNAT to the API server),
cgroups (``kubepods``), network links (the bridge) and paths the kubelet creates.

Pods reach the API server as in-cluster clients do, at the ``kubernetes`` Service
(10.0.0.1:443): with no kube-proxy here, one nftables DNAT rule of our own table sends
that to the API server, which listens on all addresses for it. The kubelet registers
with a routable InternalIP of this machine (the host name resolves to 127.0.0.1, which
the API server's proxy refuses), so ``kubectl exec`` and ``/stats/summary`` work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from tests.controlplane.binaries import (
    BinariesUnavailableError,
    ClientBinaries,
    ServerBinaries,
    cache_root,
    parse_env_file,
)
from tests.controlplane.cluster import DEFAULT_CONTROLLERS, ControlPlane, free_ports, wait_until
from tests.controlplane.pki import create_ca

NODE_DIR = Path(__file__).resolve().parent
REPO_ROOT = NODE_DIR.parents[1]
BUILD_NODE = NODE_DIR / "build-node.sh"
BUILD_IMAGE = NODE_DIR / "build-image.sh"
NODE_NAME = "headroom-node"
BRIDGE = "hr-cni0"
POD_SUBNET = "10.244.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
NFT_TABLE = "headroom_node"
#: The kubelet (setupKernelTunables), the CNI bridge (ip_forward) and br_netfilter touch these.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
#: Fixed paths the kubelet, containerd or CNI may create whatever they are told.
HOST_PATHS = (
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/run/cni",
)


#: Deployments, ReplicaSets and DaemonSets need their controllers to make pods;
NODE_CONTROLLERS = (
    *DEFAULT_CONTROLLERS,
    "deployment",
    "replicaset",
    "daemonset",
    # kube-root-ca.crt in every namespace: projected service-account volumes need it.
    "root-ca-cert-publisher",
    # The versus-VPA expert under an HPA (through metrics-server's API).
    "horizontalpodautoscaling",
)


class NodeError(RuntimeError):
    """Starting or stopping the node failed."""


# --- binaries and images -----------------------------------------------------------------


def node_bin_dir(*, build: bool) -> Path:
    """The node binaries (tests/node/build-node.sh), built first when ``build``."""
    args = ["bash", str(BUILD_NODE), "--print-bin-dir"]
    if not build:
        args.insert(2, "--check")
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False)
    if proc.returncode != 0:
        raise BinariesUnavailableError(f"{BUILD_NODE} {'' if build else '--check '}failed")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Images:
    """What tests/node/build-image.sh wrote (its bases.env)."""

    headroom_tar: Path
    headroom_name: str
    python_layout: Path
    python_name: str
    pause_layout: Path
    pause_name: str
    build_seconds: float


def build_images() -> Images:
    """Build the image from the Dockerfile (warm: buildkit's cache) and find the bases."""
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_IMAGE)], stdout=sys.stderr, stderr=sys.stderr, check=False
    )
    if proc.returncode != 0:
        raise NodeError(f"{BUILD_IMAGE} failed with exit code {proc.returncode}")
    env = parse_env_file(cache_root() / "node-images" / "bases.env")
    return Images(
        headroom_tar=Path(env["HEADROOM_IMAGE_TAR"]),
        headroom_name=env["HEADROOM_IMAGE_NAME"],
        python_layout=Path(env["PYTHON_LAYOUT"]),
        python_name=env["PYTHON_IMAGE_NAME"],
        pause_layout=Path(env["PAUSE_LAYOUT"]),
        pause_name=env["PAUSE_IMAGE_NAME"],
        build_seconds=time.monotonic() - t0,
    )


def routable_ipv4() -> str:
    """This machine's source address towards the outside (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.254", 9))  # no packet is sent for a UDP connect
        address = str(s.getsockname()[0])
    if address.startswith("127."):
        raise NodeError("no routable IPv4 address on this machine")
    return address


#: The client name in the front-proxy certificate the API server shows aggregated servers.
FRONT_PROXY_CLIENT = "front-proxy-client"


def front_proxy_args(workdir: Path) -> list[str]:
    """The aggregation layer's flags, with a front-proxy CA and client made in ``workdir``.

    As on a kubeadm cluster: the API server proxies ``/apis/metrics.k8s.io`` to
    metrics-server with this client certificate and the caller's identity in
    ``X-Remote-*`` headers; metrics-server trusts the CA from the
    ``extension-apiserver-authentication`` ConfigMap the API server publishes. Routing
    goes to the Service's endpoint addresses (no kube-proxy here).
    """
    directory = workdir / "front-proxy"
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca(directory, common_name="headroom-front-proxy-ca")
    client = ca.issue(directory, "client", common_name=FRONT_PROXY_CLIENT, client=True)
    return [
        f"--requestheader-client-ca-file={ca.pair.cert}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={client.cert}",
        f"--proxy-client-key-file={client.key}",
        "--enable-aggregator-routing=true",
    ]


def controlplane_args(node_ip: str, workdir: Path) -> list[str]:
    """Extra kube-apiserver flags for a plane that a real kubelet and real pods use."""
    pki = workdir / "pki"
    return [
        *front_proxy_args(workdir),
        # Pods reach it through the DNAT of 10.0.0.1:443 to this address.
        "--bind-address=0.0.0.0",
        f"--advertise-address={node_ip}",
        "--kubelet-preferred-address-types=InternalIP",
        # The API server authenticates to the kubelet (exec, logs, stats) as the admin.
        f"--kubelet-client-certificate={pki / 'admin.crt'}",
        f"--kubelet-client-key={pki / 'admin.key'}",
    ]


@contextlib.contextmanager
def node_control_plane(
    server: ServerBinaries, client: ClientBinaries, node_ip: str
) -> Iterator[ControlPlane]:
    """A control plane that a kubelet at ``node_ip`` and its pods can reach, our CRDs in."""
    workdir = Path(tempfile.mkdtemp(prefix="headroom-node-cp-"))
    plane = ControlPlane(
        server,
        client,
        workdir=workdir,
        controllers=NODE_CONTROLLERS,
        extra_apiserver_args=controlplane_args(node_ip, workdir),
    )
    plane.start()
    try:
        plane.install_crds(REPO_ROOT / "crds")
        yield plane
    finally:
        plane.stop()
        _run("rm", "-rf", "--one-file-system", str(workdir), check=False)


# --- the machine's state, recorded and put back -------------------------------------------


def _run(*args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(
        list(args), capture_output=True, text=True, input=input, check=False, timeout=60
    )
    if check and proc.returncode != 0:
        raise NodeError(f"`{' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _cgroup_mounts() -> list[Path]:
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, target, fstype, *_ = line.split()
        if fstype in ("cgroup", "cgroup2"):
            mounts.append(Path(target))
    return mounts


def _cgroup_children(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _nft_tables() -> dict[str, str]:
    """``family name`` -> that table's ruleset text."""
    tables = {}
    for line in _run("nft", "list", "tables").splitlines():
        _, family, name = line.split()
        tables[f"{family} {name}"] = _run("nft", "list", "table", family, name)
    return tables


def _links() -> set[str]:
    return {
        line.split(":")[1].strip().split("@")[0] for line in _run("ip", "-o", "link").splitlines()
    }


@dataclass
class HostState:
    """What of this machine the node may change, as it was before the start."""

    sysctls: dict[str, str] = field(default_factory=dict)
    nft: dict[str, str] = field(default_factory=dict)
    cgroups: dict[Path, set[str]] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)

    @classmethod
    def record(cls) -> HostState:
        state = cls()
        for name in SYSCTLS:
            path = _sysctl_path(name)
            if path.exists():
                state.sysctls[name] = path.read_text().strip()
        state.nft = _nft_tables()
        state.cgroups = {m: _cgroup_children(m) for m in _cgroup_mounts()}
        state.links = _links()
        state.paths = {p for p in HOST_PATHS if os.path.lexists(p)}
        return state

    def restore(self) -> list[str]:
        """Put everything back; return what was changed and had to be undone."""
        undone: list[str] = []
        for name, value in self.sysctls.items():
            path = _sysctl_path(name)
            if path.exists() and path.read_text().strip() != value:
                undone.append(f"sysctl {name}={path.read_text().strip()} (was {value})")
                path.write_text(value)
        now = _nft_tables()
        for table in now.keys() - self.nft.keys():
            undone.append(f"nftables table {table}")
            _run("nft", "delete", "table", *table.split())
        for table, text in self.nft.items():
            if now.get(table) != text:
                undone.append(f"nftables table {table} changed")
                family, name = table.split()
                _run("nft", "flush", "table", family, name, check=False)
                _run("nft", "-f", "-", input=text)
        for link in sorted(_links() - self.links):
            undone.append(f"link {link}")
            _run("ip", "link", "delete", link, check=False)
        for mount, children in self.cgroups.items():
            for name in sorted(_cgroup_children(mount) - children):
                undone.append(f"cgroup {mount / name}")
                _remove_cgroup(mount / name)
        for host_path in sorted(set(p for p in HOST_PATHS if os.path.lexists(p)) - self.paths):
            undone.append(f"path {host_path}")
            _run("rm", "-rf", "--one-file-system", host_path, check=False)
        return undone

    def differences(self) -> list[str]:
        """What differs from the record now (empty when the machine is as found)."""
        after = HostState.record()
        found = [
            f"sysctl {k}: {self.sysctls[k]} -> {after.sysctls.get(k)}"
            for k in self.sysctls
            if after.sysctls.get(k) != self.sysctls[k]
        ]
        found += [f"nftables {t}" for t in after.nft.keys() ^ self.nft.keys()]
        found += [f"nftables {t} changed" for t in self.nft if after.nft.get(t) != self.nft[t]]
        found += [f"link {x}" for x in after.links ^ self.links]
        for mount, children in self.cgroups.items():
            found += [f"cgroup {mount / x}" for x in after.cgroups.get(mount, set()) ^ children]
        found += [f"path {p}" for p in after.paths ^ self.paths]
        return found


def _remove_cgroup(path: Path) -> None:
    """rmdir a cgroup and its children, deepest first (each must have no task left)."""
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


# --- processes ---------------------------------------------------------------------------


@dataclass
class LoggedProcess:
    """A process of ours, its output appended to ``log_path``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path

    def stop(self, grace: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=grace)
        self.log.close()

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a log file, or ``(no log)``."""
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def spawn_logged(
    name: str, args: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> LoggedProcess:
    """Start ``args`` in a session of its own, stdout and stderr appended to ``log_path``."""
    log = log_path.open("ab")
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=None if env is None else dict(env),
        start_new_session=True,
    )
    return LoggedProcess(name, proc, log, log_path)


def _mount_ns(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _pids_in_mount_ns(ns: str, but: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == but:
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "ns" / "mnt") == ns:
                pids.append(int(entry.name))
    return pids


# --- the node ----------------------------------------------------------------------------


class Node:
    """containerd + kubelet + kube-scheduler registered with ``cp`` as one Ready node."""

    def __init__(self, cp: ControlPlane, bin_dir: Path, images: Images, node_ip: str) -> None:
        self.cp = cp
        self.bin = bin_dir
        self.images = images
        self.node_ip = node_ip
        self.name = NODE_NAME
        self.workdir = Path(tempfile.mkdtemp(prefix="headroom-node-"))
        self.sock = self.workdir / "containerd" / "containerd.sock"
        self.host_state: HostState | None = None
        self.timings: dict[str, float] = {}
        self.teardown_report: list[str] = []
        self._holder: subprocess.Popen[bytes] | None = None
        self._ns = ""
        self._procs: list[LoggedProcess] = []
        self.kubelet_port = 0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.monotonic()
        self.host_state = HostState.record()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0

    def _start(self) -> None:
        for d in ("logs", "containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "shared", "sleep", "infinity"],
            start_new_session=True,
        )
        wait_until(
            lambda: _mount_ns(self._holder.pid) != _mount_ns(os.getpid()),  # type: ignore[union-attr]
            timeout=10,
            what="the node's mount namespace",
        )
        self._ns = _mount_ns(self._holder.pid)
        self._dnat_to_apiserver()

        t = time.monotonic()
        self._write_cni_config()
        self._spawn(
            "containerd", [str(self.bin / "containerd"), "--config", str(self._containerd_config())]
        )
        wait_until(
            lambda: self._ctr("version", check=False).returncode == 0,
            timeout=60,
            what="containerd",
        )
        self.timings["containerd"] = time.monotonic() - t

        t = time.monotonic()
        self.import_image(self.images.headroom_tar)
        self.import_layout(self.images.python_layout)
        self.import_layout(self.images.pause_layout)
        self.timings["image import"] = time.monotonic() - t

        t = time.monotonic()
        scheduler_port, self.kubelet_port, healthz = free_ports(3)
        kc = str(self.cp.kubeconfig)
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
            ],
            in_namespace=False,
        )
        self._spawn(
            "kubelet",
            [
                str(self.bin / "kubelet"),
                f"--config={self._kubelet_config(healthz)}",
                f"--kubeconfig={kc}",
                f"--root-dir={self.workdir / 'kubelet'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.node_ip}",
                "--v=1",
            ],
        )
        wait_until(self._ready, timeout=120, interval=0.5, what=f"node {self.name} Ready")
        # The kubelet registers with node.kubernetes.io/not-ready:NoSchedule; the node
        # lifecycle controller (not run here) lifts it once the node is Ready.
        self.cp.api(
            "PATCH",
            f"/api/v1/nodes/{self.name}",
            {"spec": {"taints": None}},
            content_type="application/merge-patch+json",
        )
        self.timings["kubelet to Ready"] = time.monotonic() - t

    def stop(self) -> None:
        """Stop everything, leave the machine as found; ``teardown_report`` says what was undone."""
        report: list[str] = []
        keep = os.environ.get("HEADROOM_NODE_KEEP_LOGS")
        if keep and (self.workdir / "logs").is_dir():
            _run("cp", "-r", str(self.workdir / "logs"), keep, check=False)
        for proc in reversed(self._procs):
            if proc.name == "kubelet":
                proc.stop()
        if any(p.name == "containerd" and p.proc.poll() is None for p in self._procs):
            self._remove_all_containers()
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()
        if self._holder is not None:
            # The shims (and anything they left) live in our mount namespace: end them.
            for pid in _pids_in_mount_ns(self._ns, but=self._holder.pid):
                report.append(f"process {pid} left in the node's mount namespace")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._holder.kill()
            self._holder.wait(timeout=10)
            self._holder = None
        if self.host_state is not None:
            report += self.host_state.restore()
        _run("rm", "-rf", "--one-file-system", str(self.workdir), check=False)
        self.teardown_report = report

    # --- parts -------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], *, in_namespace: bool = True) -> None:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        prefix = (
            ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt", "--"]
            if in_namespace and self._holder
            else []
        )
        log_path = self.workdir / "logs" / f"{name}.log"
        self._procs.append(spawn_logged(name, [*prefix, *args], log_path, env))

    def log_tail(self, name: str, lines: int = 40) -> str:
        return log_tail(self.workdir / "logs" / f"{name}.log", lines)

    def _ctr(
        self, *args: str, check: bool = True, input_file: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / "ctr"), "--address", str(self.sock), "--namespace", "k8s.io", *args]
        if input_file is None:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        else:
            with input_file.open("rb") as f:
                raw = subprocess.run(cmd, stdin=f, capture_output=True, check=False, timeout=300)
                proc = subprocess.CompletedProcess(
                    raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
                )
        if check and proc.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def import_image(self, tar: Path) -> None:
        self._ctr("images", "import", "--local", str(tar))

    def import_layout(self, layout: Path) -> None:
        tar = self.workdir / f"{layout.name}.tar"
        _run("tar", "-C", str(layout), "-cf", str(tar), "--exclude=./.digest", ".")
        try:
            self._ctr("images", "import", "--local", str(tar))
        finally:
            tar.unlink()

    def _remove_all_containers(self) -> None:
        tasks = self._ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self._ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
        for task in tasks:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._ctr("tasks", "delete", "--force", task, check=False)
        for container in self._ctr("containers", "ls", "-q", check=False).stdout.split():
            self._ctr("containers", "delete", container, check=False)

    def _dnat_to_apiserver(self) -> None:
        rules = f"""
table ip {NFT_TABLE} {{
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
    ip daddr {KUBERNETES_SERVICE_IP} tcp dport 443 dnat to {self.node_ip}:{self.cp.apiserver_port}
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    ip daddr {KUBERNETES_SERVICE_IP} tcp dport 443 dnat to {self.node_ip}:{self.cp.apiserver_port}
  }}
}}
"""
        _run("nft", "-f", "-", input=rules)

    def _write_cni_config(self) -> None:
        conflist = {
            "cniVersion": "1.0.0",
            "name": "headroom-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (self.workdir / "cni" / "net.d" / "10-headroom.conflist").write_text(json.dumps(conflist))

    def _containerd_config(self) -> Path:
        d = self.workdir / "containerd"
        stream_port = free_ports(1)[0]
        text = f"""version = 3
root = "{d / "root"}"
state = "{d / "state"}"

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{d / "containerd.sock.ttrpc"}"

[debug]
  address = ""

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{self.images.pause_name}"

[plugins.'io.containerd.cri.v1.runtime']
  # No process here holds CAP_SYS_RESOURCE: never lower a container's oom_score_adj below ours.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{self.bin}"]
    conf_dir = "{self.workdir / "cni" / "net.d"}"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{self.bin / "runc"}"
        SystemdCgroup = false
"""
        path = d / "config.toml"
        path.write_text(text)
        return path

    def _kubelet_config(self, healthz_port: int) -> Path:
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine: cgroup v1, no systemd as PID 1, swap allowed.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.sock}",
            "address": self.node_ip,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cp.ca_file)},
            },
            "authorization": {"mode": "Webhook"},
            "podLogsDir": str(self.workdir / "pod-logs"),
            "resolvConf": "/etc/resolv.conf",
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
            "maxPods": 40,
            "protectKernelDefaults": False,
        }
        path = self.workdir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _ready(self) -> bool:
        for proc in self._procs:
            if proc.proc.poll() is not None:
                raise NodeError(
                    f"{proc.name} exited ({proc.proc.returncode}):\n{self.log_tail(proc.name)}"
                )
        try:
            node = self.cp.api("GET", f"/api/v1/nodes/{self.name}")
        except Exception:
            return False
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True"

    # --- queries -----------------------------------------------------------------------

    def stats_summary(self) -> dict[str, Any]:
        """The kubelet's /stats/summary (cAdvisor's figures), through the API server."""
        return self.cp.api("GET", f"/api/v1/nodes/{self.name}/proxy/stats/summary")


@contextlib.contextmanager
def running_node(cp: ControlPlane, bin_dir: Path, images: Images, node_ip: str) -> Iterator[Node]:
    node = Node(cp, bin_dir, images, node_ip)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def pod_phases(
    cp: ControlPlane, namespace: str, selector: Mapping[str, str]
) -> list[dict[str, Any]]:
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    return list(
        cp.api("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={labels}")["items"]
    )
