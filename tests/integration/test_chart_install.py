"""The Helm chart on the real API server (PK, SC): it installs; its pods pass the Pod
Security levels the notes name; the agent and the controller, run with the chart's
environment and a token of the chart's ServiceAccounts, do their work with the RBAC as
shipped; and the admission policy keeps each agent to its own node's report."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headroom.agent.reports import ApiReportStore, report_path
from headroom.api import API_VERSION
from headroom.collection.derive import derive_status
from headroom.controller.writer import recommendation_path
from headroom.kube.client import ApiError as KubeApiError
from tests.controlplane.cluster import ApiError, ControlPlane, free_ports, wait_until
from tests.integration.chart_release import (
    EXPERT_LABEL,
    ChartProcess,
    Release,
    chart_environment,
    create_namespace,
    delete_pod_now,
    pod_from_template,
    token_client,
)
from tests.integration.cluster_sim import MiB, SimulatedAgent, create_expert
from tests.integration.kube_helpers import create_node, get_report, unique
from tests.unit.samples import sample

NODE_CLAIM = "authentication.kubernetes.io/node-name"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def report_body(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "ResourceReport",
        "metadata": {"name": name},
        "spec": {"nodeName": node},
    }


def refusal(call: Callable[..., object], *args: object) -> KubeApiError:
    """The ApiError a call raises; fails the test when the call succeeds."""
    try:
        call(*args)
    except KubeApiError as error:
        return error
    pytest.fail(f"{getattr(call, '__name__', call)}{args} was allowed")


def bind(
    cp: ControlPlane, role: str, account: str, namespace: str, *, wait_for_url: str = ""
) -> None:
    """Bind a ClusterRole to a ServiceAccount. RBAC reaches the authorizer through an
    informer: with ``wait_for_url``, wait until the account may GET that path."""
    cp.api(
        "POST",
        f"{RBAC}/clusterrolebindings",
        {
            "metadata": {"name": f"{role}-{account}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )

    def in_effect() -> bool:
        review = cp.api(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": f"system:serviceaccount:{namespace}:{account}",
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "nonResourceAttributes": {"path": wait_for_url, "verb": "get"},
                },
            },
        )
        return bool(review["status"].get("allowed"))

    if wait_for_url:
        wait_until(in_effect, timeout=10, what=f"the binding of {role}")


def unbind(cp: ControlPlane, role: str, name: str) -> None:
    cp.api("DELETE", f"{RBAC}/clusterrolebindings/{role}-{name}")


def http_get(port: int, path: str, token: str | None = None) -> int:
    """The status of a GET on the agent's admin endpoint: HTTPS, as the chart serves it by
    default (a self-signed certificate: not verified, as Prometheus is told to)."""
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def listable(cp: ControlPlane, path: str) -> bool:
    try:
        cp.api("GET", path)
    except ApiError as error:
        if error.status == 429:
            return False
        raise
    return True


# --- the release ---------------------------------------------------------------------------


@pytest.mark.requirement("PK-001")
def test_install_creates_every_object_and_prints_the_notes(
    control_plane: ControlPlane, headroom_release: Release
) -> None:
    cp, release = control_plane, headroom_release
    status = cp.helm("status", release.name, "--namespace", release.namespace).stdout
    assert "STATUS: deployed" in status
    for needed in ("kubectl get resourcereports", f"{release.fullname}-resources-reader"):
        assert needed in release.install_output
    kinds = sorted({m["kind"] for m in release.manifests})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    assert release.deployment["spec"]["replicas"] == 2
    # The policy's CEL compiles: its messages are seen in the agent test below. (Its
    # type-checking status comes from a kube-controller-manager controller this plane
    # does not run, so it is not read here.)
    policy = cp.api(
        "GET",
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/"
        f"{release.fullname}-agent-own-node",
    )
    assert policy["spec"]["matchConditions"][0]["expression"] == (
        f"request.userInfo.username == '{release.user(release.agent_sa)}'"
    )


@pytest.mark.requirement("PK-002", "SR-002")
def test_pod_security_levels_the_notes_name(
    control_plane: ControlPlane, headroom_release: Release
) -> None:
    """The agent needs `privileged` for its hostPath volumes and for nothing else; the
    controller passes `restricted` (PK)."""
    cp, release = control_plane, headroom_release
    namespaces = {level: unique(f"psa-{level}") for level in ("baseline", "restricted")}
    for level, ns in namespaces.items():
        create_namespace(cp, ns, {"pod-security.kubernetes.io/enforce": level})
        for sa in (release.agent_sa, release.controller_sa):
            cp.api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": sa}})

    def admit(pod: dict[str, Any], ns: str) -> ApiError | None:
        try:
            cp.api("POST", f"/api/v1/namespaces/{ns}/pods?dryRun=All", pod)
        except ApiError as error:
            return error
        return None

    try:
        agent = pod_from_template(release.daemonset, "agent-probe", node="node-x")
        assert admit(agent, release.namespace) is None  # the release namespace: privileged
        refused = admit(agent, namespaces["baseline"])
        assert refused is not None and refused.status == 403
        message = json.loads(refused.body)["message"]
        assert 'violates PodSecurity "baseline:latest": hostPath volumes' in message, message
        assert '"host-root", "host-proc", "host-cgroup"' in message, message

        without_host = pod_from_template(release.daemonset, "agent-probe", node="node-x")
        spec = without_host["spec"]
        spec["volumes"] = [v for v in spec["volumes"] if "hostPath" not in v]
        kept = {v["name"] for v in spec["volumes"]}
        for container in spec["containers"]:
            container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] in kept]
        assert admit(without_host, namespaces["restricted"]) is None

        controller = pod_from_template(release.deployment, "controller-probe")
        assert admit(controller, namespaces["restricted"]) is None
    finally:
        for ns in namespaces.values():
            cp.api("DELETE", f"/api/v1/namespaces/{ns}")


# --- the agent -----------------------------------------------------------------------------


@pytest.fixture
def agent_pod(control_plane: ControlPlane, headroom_release: Release) -> Iterator[dict[str, str]]:
    """Nodes A and B, and a pod of the DaemonSet on A (which never runs: no kubelet)."""
    node_a, node_b = unique("node-a"), unique("node-b")
    create_node(control_plane, node_a)
    create_node(control_plane, node_b)
    pod_name = unique("agent")
    pod = pod_from_template(headroom_release.daemonset, pod_name, node=node_a)
    control_plane.api("POST", f"/api/v1/namespaces/{headroom_release.namespace}/pods", pod)
    yield {"a": node_a, "b": node_b, "pod": pod_name}
    delete_pod_now(control_plane, headroom_release.namespace, pod_name)
    for node in (node_a, node_b):
        control_plane.api("DELETE", f"/api/v1/nodes/{node}")


@pytest.mark.requirement("SC-001", "PK-001", "SC-004")
def test_agent_runs_with_the_shipped_rbac_and_serves_readers(
    control_plane: ControlPlane,
    headroom_release: Release,
    agent_pod: dict[str, str],
    tmp_path: Path,
) -> None:
    """SC/PK: the real agent, with the DaemonSet's environment and a pod-bound token of
    the agent's ServiceAccount, creates and keeps its node's report current, and its admin
    endpoint reviews callers (TokenReview + SubjectAccessReview) with that same token:
    the chart's reader ClusterRole grants access, nothing else does."""
    cp, release, node_a = control_plane, headroom_release, agent_pod["a"]
    token = cp.request_token(release.namespace, release.agent_sa, pod_name=agent_pod["pod"])
    kubeconfig = cp.write_kubeconfig_for_token(token, tmp_path / "agent.kubeconfig")
    readers = unique("readers")
    create_namespace(cp, readers, {})
    for account in ("dashboard", "nobody"):
        cp.api(
            "POST", f"/api/v1/namespaces/{readers}/serviceaccounts", {"metadata": {"name": account}}
        )
    reader_role = f"{release.fullname}-resources-reader"
    bind(cp, reader_role, "dashboard", readers, wait_for_url="/system/resources")
    dashboard, nobody = (cp.request_token(readers, sa) for sa in ("dashboard", "nobody"))

    port = free_ports(1)[0]
    env = chart_environment(
        release.daemonset,
        {"spec.nodeName": node_a},
        {"HEADROOM_LISTEN_PORT": str(port), "HEADROOM_LISTEN_HOST": "127.0.0.1"},
    )
    process = ChartProcess(release.daemonset, env, kubeconfig, tmp_path / "agent.log").start()
    try:
        wait_until(
            lambda: ((get_report(cp, node_a) or {}).get("status") or {}).get("cpu"),
            timeout=30,
            what=f"the agent's report of {node_a} with figures",
        )
        first = (get_report(cp, node_a) or {})["status"]["collectedAt"]
        wait_until(  # the heartbeat write too (an update of the status subresource)
            lambda: (get_report(cp, node_a) or {})["status"]["collectedAt"] != first,
            timeout=30,
            what="a second write",
        )
        assert process.running(), process.log_text()
        assert http_get(port, "/healthz") == 200 and http_get(port, "/readyz") == 200
        for path in ("/system/resources", "/metrics"):
            assert http_get(port, path) == 401
            assert http_get(port, path, nobody) == 403
            assert http_get(port, path, dashboard) == 200, process.log_text()
        # The default install serves TLS only: plain HTTP gets 400, its token never checked.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        plain.request("GET", "/system/resources", headers={"Authorization": f"Bearer {dashboard}"})
        assert plain.getresponse().status == 400
        plain.close()
    finally:
        code = process.stop()
        unbind(cp, reader_role, "dashboard")
        cp.api("DELETE", f"/api/v1/namespaces/{readers}")
    log = process.log_text()
    assert code == 0, log
    assert not process.forbidden_lines(), log
    report = get_report(cp, node_a) or {}
    assert report["spec"] == {"nodeName": node_a}
    assert report["metadata"]["ownerReferences"][0]["name"] == node_a
    status = report["status"]
    assert status["cpu"]["logicalCores"] >= 1 and status["memory"]["totalBytes"] > 0
    assert [d["path"] for d in status["disks"]] == ["/"]


@pytest.mark.requirement("SC-002")
def test_policy_keeps_each_agent_to_its_own_nodes_report(
    control_plane: ControlPlane,
    headroom_release: Release,
    agent_pod: dict[str, str],
    tmp_path: Path,
) -> None:
    """SC: with node A's pod-bound token, the agent's own adapter writes report A but
    cannot create, update or delete report B, nor claim node B in report A; a token of
    the same ServiceAccount without the node claim writes nothing."""
    cp, release = control_plane, headroom_release
    node_a, node_b = agent_pod["a"], agent_pod["b"]
    token = cp.request_token(release.namespace, release.agent_sa, pod_name=agent_pod["pod"])
    review = cp.token_review(token)
    assert review["user"]["username"] == release.user(release.agent_sa)
    assert review["user"]["extra"][NODE_CLAIM] == [node_a]
    agent = token_client(cp, token, tmp_path / "agent.kubeconfig")
    figures = derive_status(
        sample(0, busy=0, total=0),
        sample(10, busy=10, total=40),
        collected_at=datetime.now(UTC),
        agent_version="test",
        heartbeat_seconds=60,
    )

    # The policy is in force once a dry run of a foreign write is refused by it.
    def policy_refuses() -> bool:
        try:
            agent.create(report_path() + "?dryRun=All", report_body(node_b, node_b))
        except KubeApiError as error:
            return error.status == 403 and "headroom agent on node" in error.message
        return False

    wait_until(policy_refuses, timeout=30, what="the own-node policy in force")

    # Report A, but claiming node B: refused.
    error = refusal(agent.create, report_path(), report_body(node_a, node_b))
    assert error.status == 403
    assert f"may write only a ResourceReport whose spec.nodeName is {node_a}" in error.message
    # Report A, as the agent writes it: allowed (create, then status update).
    ApiReportStore(agent, node_a).write(figures)
    assert (get_report(cp, node_a) or {})["status"]["agentVersion"] == "test"

    # Report B: not created, and (created by the admin) its status not updated.
    foreign = f"may write only ResourceReport {node_a}, not {node_b}"
    error = refusal(ApiReportStore(agent, node_b).write, figures)
    assert (error.status, error.reason) == (403, "Forbidden") and foreign in error.message
    created = cp.api("POST", report_path(), report_body(node_b, node_b))
    put = {**created, "status": figures.to_wire()}
    error = refusal(agent.replace, report_path(node_b) + "/status", put)
    assert error.status == 403 and foreign in error.message

    # Deleting is not in the agent's RBAC at all; with it granted, the policy still refuses.
    error = refusal(agent.delete, report_path(node_b))
    assert error.status == 403 and "cannot delete resource" in error.message
    grant = unique("grant-delete")
    rule = {"apiGroups": ["headroom.dev"], "resources": ["resourcereports"], "verbs": ["delete"]}
    cp.api("POST", f"{RBAC}/clusterroles", {"metadata": {"name": grant}, "rules": [rule]})
    bind(cp, grant, release.agent_sa, release.namespace)
    try:

        def refused_by_policy() -> KubeApiError | None:
            error = refusal(agent.delete, report_path(node_b))
            return error if "cannot delete" not in error.message else None

        error = wait_until(refused_by_policy, timeout=30, what="the delete grant in force")
        assert error.status == 403 and foreign in error.message
    finally:
        unbind(cp, grant, release.agent_sa)
        cp.api("DELETE", f"{RBAC}/clusterroles/{grant}")
    assert get_report(cp, node_b) is not None

    # A token of the same ServiceAccount that is not bound to a pod names no node.
    unbound = token_client(
        cp, cp.request_token(release.namespace, release.agent_sa), tmp_path / "unbound.kubeconfig"
    )
    no_node = "its token names no node"
    current = cp.api("GET", report_path(node_a))
    error = refusal(unbound.replace, report_path(node_a) + "/status", current)
    assert error.status == 403 and no_node in error.message
    error = refusal(unbound.create, report_path(), report_body(unique("node-c"), "x"))
    assert error.status == 403 and no_node in error.message
    for client in (agent, unbound):
        client.close()
    cp.api("DELETE", report_path(node_b))


# --- the controller ------------------------------------------------------------------------


@pytest.mark.requirement("SC-001", "SC-003", "CT-003", "CT-004")
def test_controller_recommends_with_the_rbac_as_shipped(
    control_plane: ControlPlane, headroom_release: Release, tmp_path: Path
) -> None:
    """SC/CT: the real controller, with the chart's environment and a token of the chart's
    controller ServiceAccount, elects itself, writes a CapacityRecommendation, posts
    Events, flags a stale report and releases its Lease on SIGTERM: nothing is refused."""
    cp, release = control_plane, headroom_release
    nodes = [unique("node") for _ in range(2)]
    silent = unique("node-silent")
    for name in [*nodes, silent]:
        create_node(cp, name, cpu="4", memory="16Gi")
    namespace = unique("team")
    deployment, pod_uids = create_expert(
        cp, namespace, "expert", replicas=2, nodes=nodes, labels=dict([EXPERT_LABEL])
    )
    agents = {name: SimulatedAgent(cp, name) for name in nodes}
    for uid, name in zip(pod_uids, nodes, strict=True):
        agents[name].pods[uid] = (0.2, 600 * MiB)
    for _ in range(3):
        for agent in agents.values():
            agent.report()
    SimulatedAgent(cp, silent, heartbeat_seconds=1).report()  # then silent: stale in 3 s

    # The first cluster-wide list of a new CRD can answer 429 while the API server fills
    # its cache, and the controller's start-up would then wait kopf's 60 s retry.
    every = f"/apis/{API_VERSION}/capacityrecommendations"
    wait_until(lambda: listable(cp, every), timeout=30, what="the list of recommendations")
    token = cp.request_token(release.namespace, release.controller_sa)
    kubeconfig = cp.write_kubeconfig_for_token(token, tmp_path / "controller.kubeconfig")
    identity = f"{release.fullname}-controller-7c9d-x1"
    metrics_port, health_port = free_ports(2)
    env = chart_environment(
        release.deployment,
        {"metadata.name": identity, "metadata.namespace": release.namespace},
        {
            "HEADROOM_METRICS_PORT": str(metrics_port),
            "HEADROOM_HEALTH_PORT": str(health_port),
        },
    )
    process = ChartProcess(release.deployment, env, kubeconfig, tmp_path / "controller.log")
    process.start()
    lease_path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{release.namespace}"
        f"/leases/{release.fullname}-controller"
    )
    try:

        def recommended() -> dict[str, Any] | None:
            assert process.running(), process.log_text()[-3000:]
            try:
                rec = cp.api("GET", recommendation_path(namespace, "expert"))
            except ApiError as error:
                if error.status == 404:
                    return None
                raise
            return rec if (rec.get("status") or {}).get("recommended") else None

        rec = wait_until(recommended, timeout=45, what="a CapacityRecommendation")
        assert rec["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
        assert rec["status"]["current"]["replicas"] == 2

        def stale_flagged() -> bool:
            for agent in agents.values():  # the other agents go on reporting
                agent.report()
            report = get_report(cp, silent) or {}
            conditions = report.get("status", {}).get("conditions", [])
            return any(c["type"] == "Stale" and c["status"] == "True" for c in conditions)

        wait_until(
            stale_flagged, timeout=30, interval=1, what="the silent node's report flagged Stale"
        )
        lease = cp.api("GET", lease_path)
        assert lease["spec"]["holderIdentity"] == identity
        url = f"http://127.0.0.1:{health_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as answer:  # the chart's livenessProbe
            assert answer.status == 200
        events = cp.api("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        assert any(e["reason"] == "RecommendationChanged" for e in events)
        events = cp.api("GET", "/api/v1/namespaces/default/events")["items"]
        assert any(
            e["reason"] == "StaleReport" and e["involvedObject"]["name"] == silent for e in events
        )
    finally:
        code = process.stop()
    log = process.log_text()
    assert code == 0, log[-5000:]
    assert not process.forbidden_lines(), log[-5000:]
    assert not cp.api("GET", lease_path)["spec"].get("holderIdentity")  # released on SIGTERM
    cp.api("DELETE", f"/api/v1/namespaces/{namespace}")
    for name in [*nodes, silent]:
        cp.api("DELETE", f"/api/v1/nodes/{name}")
