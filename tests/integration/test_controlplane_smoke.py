"""Smoke tests proving the test control plane is a real Kubernetes control plane.

Real kube-apiserver (version, RBAC, admission policies, TokenRequest with pod-bound
tokens carrying the node name), real kube-controller-manager (garbage collection),
real kubectl and helm.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.binaries import load_versions
from tests.controlplane.cluster import ApiError, ControlPlane, manifests, wait_until

NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"


@dataclass(frozen=True)
class Workload:
    """A namespace with a service account and a pod bound to a node."""

    namespace: str
    service_account: str
    node: str
    pod: str


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def workload(control_plane: ControlPlane) -> Iterator[Workload]:
    """Namespace, ServiceAccount, Node and a Pod scheduled (by nodeName) onto it."""
    w = Workload(
        namespace=f"smoke-{_suffix()}",
        service_account="agent",
        node=f"node-{_suffix()}",
        pod="agent-pod",
    )
    control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifests(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": w.namespace}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": w.service_account, "namespace": w.namespace},
            },
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": w.node}},
        ),
    )
    control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifests(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": w.pod, "namespace": w.namespace},
                "spec": {
                    "nodeName": w.node,
                    "serviceAccountName": w.service_account,
                    "containers": [{"name": "main", "image": "registry.invalid/agent:0"}],
                },
            }
        ),
    )
    yield w
    control_plane.kubectl("delete", "namespace", w.namespace, "--wait=false", check=False)
    control_plane.kubectl("delete", "node", w.node, "--wait=false", check=False)


def test_server_version_is_pinned(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("version", "-o", "json").stdout
    version = json.loads(out)
    assert version["serverVersion"]["gitVersion"] == f"v{load_versions().k8s}"
    assert version["clientVersion"]["gitVersion"] == f"v{load_versions().kubectl}"


def test_pod_bound_token_carries_node_name(control_plane: ControlPlane, workload: Workload) -> None:
    token = control_plane.request_token(
        workload.namespace, workload.service_account, pod_name=workload.pod
    )
    review = control_plane.token_review(token)
    assert review.get("authenticated") is True, review
    user = review["user"]
    assert user["username"] == (
        f"system:serviceaccount:{workload.namespace}:{workload.service_account}"
    )
    assert user["extra"][NODE_NAME_EXTRA] == [workload.node]
    assert user["extra"][POD_NAME_EXTRA] == [workload.pod]


def test_unbound_token_has_no_node_name(control_plane: ControlPlane, workload: Workload) -> None:
    token = control_plane.request_token(workload.namespace, workload.service_account)
    review = control_plane.token_review(token)
    assert review.get("authenticated") is True, review
    assert NODE_NAME_EXTRA not in review["user"].get("extra", {})


def test_rbac_forbids_service_account_listing_secrets(
    control_plane: ControlPlane, workload: Workload, tmp_path: Path
) -> None:
    token = control_plane.request_token(
        workload.namespace, workload.service_account, pod_name=workload.pod
    )
    kubeconfig = control_plane.write_kubeconfig_for_token(token, tmp_path / "sa.kubeconfig")

    # The token authenticates (so a refusal below is authorization, not authentication).
    whoami = control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{workload.namespace}:{workload.service_account}"

    denied = control_plane.kubectl(
        "get", "secrets", "-n", workload.namespace, kubeconfig=kubeconfig, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr
    # The admin may.
    control_plane.kubectl("get", "secrets", "-n", workload.namespace)


def test_garbage_collector_deletes_dependents(
    control_plane: ControlPlane, workload: Workload
) -> None:
    if not control_plane.has_controller_manager:
        reason = "no kube-controller-manager (KUBEBUILDER_ASSETS without it): no garbage collection"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    ns = workload.namespace
    control_plane.kubectl("create", "configmap", "owner", "-n", ns)
    owner_uid = control_plane.kubectl(
        "get", "configmap", "owner", "-n", ns, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifests(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "dependent",
                    "namespace": ns,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
                    ],
                },
                "data": {"k": "v"},
            }
        ),
    )
    control_plane.kubectl("delete", "configmap", "owner", "-n", ns)

    def dependent_gone() -> bool:
        got = control_plane.kubectl("get", "configmap", "dependent", "-n", ns, check=False)
        return got.returncode != 0 and "NotFound" in got.stderr

    wait_until(dependent_gone, timeout=60, interval=0.5, what="GC of the dependent ConfigMap")


def test_validating_admission_policy_is_enforced(
    control_plane: ControlPlane, workload: Workload
) -> None:
    name = f"smoke-deny-{_suffix()}"
    control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifests(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["configmaps"],
                            }
                        ]
                    },
                    "validations": [
                        {
                            "expression": "!has(object.data) || !('forbidden' in object.data)",
                            "message": "smoke policy: key 'forbidden' is not allowed",
                        }
                    ],
                },
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": workload.namespace}
                        }
                    },
                },
            },
        ),
    )
    path = f"/api/v1/namespaces/{workload.namespace}/configmaps"

    def denied() -> str | None:
        # The policy takes effect once the API server's informers have seen it.
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "vap-"},
            "data": {"forbidden": "x"},
        }
        try:
            control_plane.api("POST", path, body)
        except ApiError as exc:
            if exc.status == 422 and "smoke policy" in exc.body:
                return exc.body
            raise
        return None

    try:
        message = wait_until(denied, timeout=30, interval=0.5, what="the policy to deny")
        assert "smoke policy: key 'forbidden' is not allowed" in message
        # Objects the policy allows still go through.
        control_plane.api(
            "POST",
            path,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "ok-"}},
        )
    finally:
        control_plane.kubectl(
            "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name
        )


def test_helm_runs_against_the_plane(control_plane: ControlPlane) -> None:
    version = control_plane.helm("version", "--short").stdout.strip()
    assert version.startswith(f"v{load_versions().helm}"), version
    # Talks to the API server (lists release secrets in all namespaces).
    control_plane.helm("list", "--all-namespaces")


def test_apiserver_restarts_on_same_port_with_same_data(
    control_plane: ControlPlane, workload: Workload
) -> None:
    ns = workload.namespace
    control_plane.kubectl("create", "configmap", "survives-restart", "-n", ns)
    server = control_plane.server

    control_plane.stop_apiserver()
    assert not control_plane.apiserver_running()
    down = control_plane.kubectl("get", "namespaces", check=False, timeout=30)
    assert down.returncode != 0

    control_plane.start_apiserver()
    assert control_plane.server == server
    control_plane.kubectl("get", "configmap", "survives-restart", "-n", ns)
