"""The Helm chart installed into the test control plane, and the chart's workloads run as
local processes with the chart's own environment and a token of the chart's ServiceAccounts.

There is no kubelet: the DaemonSet and Deployment never start pods. Instead a test takes
the container's environment from the installed manifest (``helm get manifest``), resolves
the downward-API fields, maps the host mounts to this machine's paths, and runs
``python -m headroom.cli`` with a kubeconfig holding a ServiceAccount token.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from headroom.kube.client import KubeClient
from headroom.kube.config import from_kubeconfig
from tests.chart_render import CHART_DIR, Manifest, container_env, set_args
from tests.controlplane.cluster import ApiError, ControlPlane

NAMESPACE = "headroom-chart-it"
RELEASE = "headroom-it"
#: The experts the installed controller follows: only this suite's Deployments.
EXPERT_LABEL = ("headroom-it.test/expert", "true")
#: Values of the test install: quick agents, and our own expert selector.
INSTALL_VALUES: dict[str, str | int] = {
    "agent.intervalSeconds": 1,
    "agent.heartbeatSeconds": 5,
    "controller.expertSelector": f"{EXPERT_LABEL[0]}={EXPERT_LABEL[1]}",
}
#: Where the agent's container sees the node, and where this machine has it.
HOST_MOUNTS = {"/host/proc": "/proc", "/host/sys/fs/cgroup": "/sys/fs/cgroup", "/host": "/"}


@dataclass(frozen=True)
class Release:
    """What the installed chart created."""

    namespace: str
    name: str
    fullname: str
    manifests: list[Manifest]
    install_output: str

    @property
    def agent_sa(self) -> str:
        return f"{self.fullname}-agent"

    @property
    def controller_sa(self) -> str:
        return f"{self.fullname}-controller"

    def user(self, service_account: str) -> str:
        """The API server's user name for one of the release's ServiceAccounts."""
        return f"system:serviceaccount:{self.namespace}:{service_account}"

    def find(self, kind: str, name: str) -> Manifest:
        for manifest in self.manifests:
            if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
                return manifest
        raise KeyError(f"{kind}/{name} not in the release")

    @property
    def daemonset(self) -> Manifest:
        return self.find("DaemonSet", f"{self.fullname}-agent")

    @property
    def deployment(self) -> Manifest:
        return self.find("Deployment", f"{self.fullname}-controller")


def create_namespace(cp: ControlPlane, name: str, labels: Mapping[str, str]) -> None:
    """Create a namespace with labels (Pod Security Admission levels, for example)."""
    try:
        cp.api("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": dict(labels)}})
    except ApiError as error:
        if error.status != 409:
            raise
        cp.api(
            "PATCH",
            f"/api/v1/namespaces/{name}",
            {"metadata": {"labels": dict(labels)}},
            content_type="application/merge-patch+json",
        )


def install(cp: ControlPlane) -> Release:
    """Label the namespace as the chart's notes say, then ``helm install`` (no ``--wait``)."""
    create_namespace(cp, NAMESPACE, {"pod-security.kubernetes.io/enforce": "privileged"})
    installed = cp.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        NAMESPACE,
        *set_args(INSTALL_VALUES),
        timeout=120,
    )
    manifest = cp.helm("get", "manifest", RELEASE, "--namespace", NAMESPACE).stdout
    return Release(
        namespace=NAMESPACE,
        name=RELEASE,
        fullname=RELEASE,  # the release name contains the chart name
        manifests=[doc for doc in yaml.safe_load_all(manifest) if doc],
        install_output=installed.stdout + installed.stderr,
    )


def uninstall(cp: ControlPlane, release: Release) -> None:
    """``helm uninstall``; pods made by tests go at once (no kubelet to confirm)."""
    cp.helm("uninstall", release.name, "--namespace", release.namespace, check=False)
    pods = cp.api("GET", f"/api/v1/namespaces/{release.namespace}/pods")["items"]
    for pod in pods:
        delete_pod_now(cp, release.namespace, pod["metadata"]["name"])
    cp.api("DELETE", f"/api/v1/namespaces/{release.namespace}")


def delete_pod_now(cp: ControlPlane, namespace: str, name: str) -> None:
    """Delete a pod with grace period 0 (no kubelet would ever confirm a graceful one)."""
    try:
        cp.api(
            "DELETE",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
        )
    except ApiError as error:
        if error.status != 404:
            raise


def pod_from_template(workload: Manifest, name: str, node: str | None = None) -> dict[str, Any]:
    """A Pod made from a workload's pod template, as its controller would make it."""
    template = workload["spec"]["template"]
    spec = dict(template["spec"])
    if node is not None:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(template["metadata"]["labels"])},
        "spec": spec,
    }


def token_client(cp: ControlPlane, token: str, path: Path) -> KubeClient:
    """The project's own API client, authenticated with ``token``."""
    cp.write_kubeconfig_for_token(token, path)
    return KubeClient(from_kubeconfig(path), timeout=10)


def chart_environment(
    workload: Manifest, field_refs: Mapping[str, str], overrides: Mapping[str, str]
) -> dict[str, str]:
    """The container's environment from the manifest, for a process on this machine.

    Downward-API fields come from ``field_refs``; values naming the agent's host mounts
    are mapped to this machine's paths; ``overrides`` replace what cannot work here
    (ports). Every variable the chart sets must be resolvable, or this raises KeyError.
    """
    env: dict[str, str] = {}
    for name, value in container_env(workload).items():
        if isinstance(value, dict):
            env[name] = field_refs[value["fieldRef"]["fieldPath"]]
            continue
        for mounted, local in HOST_MOUNTS.items():
            if value == mounted:
                value = local
                break
        env[name] = value
    env.update(overrides)
    return env


class ChartProcess:
    """``headroom <role>`` with the chart's arguments and environment, as a local process."""

    def __init__(
        self, workload: Manifest, env: Mapping[str, str], kubeconfig: Path, log: Path
    ) -> None:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        self.args = [*container["args"], "--kubeconfig", str(kubeconfig)]
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HEADROOM_") and k != "KUBECONFIG"
        }
        self.env = {**inherited, **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChartProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "headroom.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL after 20 s); return the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def forbidden_lines(self) -> list[str]:
        """Log lines that tell of an API answer 403 / Forbidden (RBAC too narrow).

        Looks at every field but the timestamp, and at 403 as a whole number, so a
        line stamped ``...:15.403`` is not taken for a refusal.
        """
        found = []
        for line in self.log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                text = line
            else:
                text = " ".join(str(v) for k, v in record.items() if k != "time")
            if _FORBIDDEN.search(text):
                found.append(line)
        return found


_FORBIDDEN = re.compile(r"(?<![\d.])403(?!\d)|Forbidden")
