"""The RBAC the chart ships, as the real API server decides it (SC: least privilege).

For each role: every verb on every resource it needs is allowed (SubjectAccessReview),
a broad list of what it does not need is denied, and the effective rule list
(``kubectl auth can-i --list``) holds exactly the chart's rules beyond what every
authenticated user has. The non-resource URL reader grants exactly ``get`` on the two
admin endpoint paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.controlplane.cluster import ControlPlane, wait_until
from tests.integration.chart_release import Release
from tests.integration.kube_helpers import unique

#: (verb, group, resource, subresource, namespace, name); "ns" = the release namespace.
Access = tuple[str, str, str, str, str, str]

#: Namespaces the checks use besides the release's: any team's, and the Events' default.
OTHER_NS = "team-elsewhere"

AGENT_NEEDS: list[Access] = [
    ("get", "", "nodes", "", "", "node-a"),
    ("get", "headroom.dev", "resourcereports", "", "", "node-a"),
    ("create", "headroom.dev", "resourcereports", "", "", ""),
    ("update", "headroom.dev", "resourcereports", "status", "", "node-a"),
    ("create", "authentication.k8s.io", "tokenreviews", "", "", ""),
    ("create", "authorization.k8s.io", "subjectaccessreviews", "", "", ""),
]

CONTROLLER_NEEDS: list[Access] = [
    *[
        (verb, group, resource, "", "", "")
        for verb in ("get", "list", "watch")
        for group, resource in (
            ("", "nodes"),
            ("", "pods"),
            ("apps", "deployments"),
            ("apps", "replicasets"),
            ("headroom.dev", "resourcereports"),
            ("headroom.dev", "capacityrecommendations"),
        )
    ],
    ("list", "", "pods", "", OTHER_NS, ""),
    ("patch", "headroom.dev", "resourcereports", "status", "", "node-a"),
    ("create", "headroom.dev", "capacityrecommendations", "", OTHER_NS, ""),
    ("delete", "headroom.dev", "capacityrecommendations", "", OTHER_NS, "expert"),
    ("update", "headroom.dev", "capacityrecommendations", "status", OTHER_NS, "expert"),
    ("create", "", "events", "", OTHER_NS, ""),
    ("create", "", "events", "", "default", ""),
    ("create", "coordination.k8s.io", "leases", "", "ns", ""),
    ("get", "coordination.k8s.io", "leases", "", "ns", "LEASE"),
    ("update", "coordination.k8s.io", "leases", "", "ns", "LEASE"),
]

#: Denied to both roles.
NOBODY: list[Access] = [
    ("*", "*", "*", "", "", ""),
    ("*", "", "pods", "", "ns", ""),
    ("get", "", "secrets", "", "ns", "any"),
    ("list", "", "secrets", "", "ns", ""),
    ("list", "", "secrets", "", "", ""),
    ("watch", "", "secrets", "", OTHER_NS, ""),
    ("get", "", "configmaps", "", "ns", "any"),
    ("create", "", "serviceaccounts", "token", "ns", "any"),
    ("create", "", "pods", "", "ns", ""),
    ("create", "", "pods", "exec", OTHER_NS, "any"),
    ("get", "", "pods", "log", OTHER_NS, "any"),
    ("update", "", "nodes", "", "", "node-a"),
    ("patch", "", "nodes", "status", "", "node-a"),
    ("delete", "headroom.dev", "resourcereports", "", "", "node-a"),
    ("deletecollection", "headroom.dev", "resourcereports", "", "", ""),
    ("update", "headroom.dev", "resourcereports", "", "", "node-a"),
    ("patch", "headroom.dev", "resourcereports", "", "", "node-a"),
    ("update", "headroom.dev", "capacityrecommendations", "", OTHER_NS, "expert"),
    ("patch", "headroom.dev", "capacityrecommendations", "", OTHER_NS, "expert"),
    ("update", "apps", "deployments", "", OTHER_NS, "expert"),
    ("patch", "apps", "deployments", "scale", OTHER_NS, "expert"),
    ("delete", "coordination.k8s.io", "leases", "", "ns", "LEASE"),
    ("create", "coordination.k8s.io", "leases", "", OTHER_NS, ""),
    ("update", "coordination.k8s.io", "leases", "", "ns", "kube-scheduler"),
    ("impersonate", "", "users", "", "", "admin"),
    ("impersonate", "", "serviceaccounts", "", "ns", "any"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", ""),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", "", "", ""),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""),
    ("update", "admissionregistration.k8s.io", "validatingadmissionpolicies", "", "", ""),
    ("delete", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", "", "", ""),
    ("update", "apiextensions.k8s.io", "customresourcedefinitions", "", "", ""),
    ("create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""),
]

AGENT_MUST_NOT: list[Access] = [
    *NOBODY,
    *[
        (verb, "headroom.dev", "capacityrecommendations", sub, OTHER_NS, "")
        for verb in ("get", "list", "create", "delete")
        for sub in ("", "status")
    ],
    ("list", "", "nodes", "", "", ""),
    ("watch", "", "nodes", "", "", ""),
    ("list", "", "pods", "", "", ""),
    ("get", "", "pods", "", OTHER_NS, "any"),
    ("list", "apps", "deployments", "", "", ""),
    ("list", "apps", "replicasets", "", "", ""),
    ("list", "headroom.dev", "resourcereports", "", "", ""),
    ("watch", "headroom.dev", "resourcereports", "", "", ""),
    ("patch", "headroom.dev", "resourcereports", "status", "", "node-a"),
    ("create", "", "events", "", "default", ""),
    ("create", "coordination.k8s.io", "leases", "", "ns", ""),
]

CONTROLLER_MUST_NOT: list[Access] = [
    *NOBODY,
    ("create", "headroom.dev", "resourcereports", "", "", ""),
    ("update", "headroom.dev", "resourcereports", "status", "", "node-a"),
    ("create", "authentication.k8s.io", "tokenreviews", "", "", ""),
    ("create", "authorization.k8s.io", "subjectaccessreviews", "", "", ""),
    ("update", "", "events", "", OTHER_NS, "any"),
    ("delete", "", "pods", "", OTHER_NS, "any"),
    ("create", "apps", "deployments", "", OTHER_NS, ""),
    ("get", "coordination.k8s.io", "leases", "", "ns", "another-lease"),
    ("get", "coordination.k8s.io", "leases", "", OTHER_NS, "LEASE"),
]

#: The chart's rules as `kubectl auth can-i --list` shows them: (resource, names, verbs).
AGENT_RULES = {
    ("nodes", "", "get"),
    ("resourcereports.headroom.dev", "", "create get"),
    ("resourcereports.headroom.dev/status", "", "update"),
    ("tokenreviews.authentication.k8s.io", "", "create"),
    ("subjectaccessreviews.authorization.k8s.io", "", "create"),
}
CONTROLLER_RULES = {
    ("nodes", "", "get list watch"),
    ("pods", "", "get list watch"),
    ("deployments.apps", "", "get list watch"),
    ("replicasets.apps", "", "get list watch"),
    ("horizontalpodautoscalers.autoscaling", "", "get list watch"),
    ("poddisruptionbudgets.policy", "", "get list watch"),
    ("resourcereports.headroom.dev", "", "get list watch"),
    ("resourcereports.headroom.dev/status", "", "patch"),
    ("capacityrecommendations.headroom.dev", "", "create delete get list watch"),
    ("capacityrecommendations.headroom.dev/status", "", "update"),
    ("events", "", "create"),
    ("leases.coordination.k8s.io", "", "create"),
    ("leases.coordination.k8s.io", "LEASE", "get update"),
}


def service_account_groups(namespace: str) -> list[str]:
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]


def allowed(
    cp: ControlPlane, user: str, groups: list[str], attributes: dict[str, Any], *, url: bool
) -> bool:
    """One SubjectAccessReview, as the authorizer answers it."""
    key = "nonResourceAttributes" if url else "resourceAttributes"
    review = cp.api(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, key: attributes},
        },
    )
    return bool(review["status"].get("allowed"))


def resource_attributes(access: Access, release: Release) -> dict[str, str]:
    verb, group, resource, subresource, namespace, name = access
    lease = f"{release.fullname}-controller"
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": release.namespace if namespace == "ns" else namespace,
        "name": lease if name == "LEASE" else name,
    }
    return {k: v for k, v in attributes.items() if v or k in ("group",)}


def decisions(
    cp: ControlPlane, release: Release, service_account: str, accesses: list[Access]
) -> dict[Access, bool]:
    user = release.user(service_account)
    groups = service_account_groups(release.namespace)
    return {
        access: allowed(cp, user, groups, resource_attributes(access, release), url=False)
        for access in accesses
    }


@pytest.mark.requirement("SC-001", "SC-003")
@pytest.mark.parametrize(
    ("role", "needs", "must_not"),
    [
        ("agent", AGENT_NEEDS, AGENT_MUST_NOT),
        ("controller", CONTROLLER_NEEDS, CONTROLLER_MUST_NOT),
    ],
)
def test_each_role_may_do_what_it_needs_and_nothing_more(
    control_plane: ControlPlane,
    headroom_release: Release,
    role: str,
    needs: list[Access],
    must_not: list[Access],
) -> None:
    release = headroom_release
    service_account = release.agent_sa if role == "agent" else release.controller_sa
    missing = [
        a for a, ok in decisions(control_plane, release, service_account, needs).items() if not ok
    ]
    assert missing == [], f"{role} lacks what it needs"
    excess = [
        a for a, ok in decisions(control_plane, release, service_account, must_not).items() if ok
    ]
    assert excess == [], f"{role} may do more than it needs"


def effective_rules(cp: ControlPlane, user: str, namespace: str) -> set[tuple[str, str, str]]:
    """(resource, resource names, verbs) rows of ``kubectl auth can-i --list``."""
    out = cp.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    header, *rows = out.splitlines()
    starts = [header.index(title) for title in ("Non-Resource URLs", "Resource Names", "Verbs")]
    found: set[tuple[str, str, str]] = set()
    for row in rows:
        resource = row[: starts[0]].strip()
        if not resource:
            continue  # a non-resource URL row (discovery, health: every user has them)
        names = row[starts[1] : starts[2]].strip().strip("[]")
        verbs = " ".join(sorted(row[starts[2] :].strip().strip("[]").split()))
        found.add((resource, names, verbs))
    return found


@pytest.mark.requirement("SC-001", "SC-003")
@pytest.mark.parametrize("role", ["agent", "controller"])
def test_effective_rules_are_exactly_the_charts(
    control_plane: ControlPlane, headroom_release: Release, role: str
) -> None:
    """Beyond what every authenticated user has, a role holds the chart's rules only:
    no wildcards, no Secrets (``kubectl auth can-i --list`` by impersonation)."""
    release = headroom_release
    service_account = release.agent_sa if role == "agent" else release.controller_sa
    everyone = effective_rules(control_plane, release.user("no-bindings"), release.namespace)
    rules = effective_rules(control_plane, release.user(service_account), release.namespace)
    lease = f"{release.fullname}-controller"
    expected = AGENT_RULES if role == "agent" else CONTROLLER_RULES
    expected = {(r, lease if n == "LEASE" else n, v) for r, n, v in expected}
    assert rules - everyone == expected
    for resource, _, verbs in rules:
        assert "*" not in resource and "*" not in verbs.split(), (resource, verbs)
        assert not re.match(r"^(secrets|configmaps)\b", resource), resource


@pytest.fixture
def reader(control_plane: ControlPlane, headroom_release: Release) -> Iterator[str]:
    """A user bound to the chart's `<fullname>-resources-reader` ClusterRole."""
    user = unique("dashboard")
    binding = unique("reader")
    role = f"{headroom_release.fullname}-resources-reader"
    control_plane.api(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    yield user
    control_plane.api("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")


@pytest.mark.requirement("SC-001", "SR-003")
def test_resources_reader_grants_get_on_the_two_paths_only(
    control_plane: ControlPlane, headroom_release: Release, reader: str
) -> None:
    cp, groups = control_plane, ["system:authenticated"]

    def url(user: str, verb: str, path: str) -> bool:
        return allowed(cp, user, groups, {"verb": verb, "path": path}, url=True)

    wait_until(lambda: url(reader, "get", "/system/resources"), timeout=10, what="binding")
    assert url(reader, "get", "/metrics")
    for verb, path in [
        ("post", "/system/resources"),
        ("put", "/metrics"),
        ("delete", "/metrics"),
        ("get", "/system/resources/other"),
        ("get", "/system"),
        ("get", "/logs"),
        ("get", "/debug/pprof/"),
    ]:
        assert not url(reader, verb, path), (verb, path)
    for access in [("get", "", "pods", "", "ns", ""), ("list", "", "secrets", "", "", "")]:
        attributes = resource_attributes(access, headroom_release)
        assert not allowed(cp, reader, groups, attributes, url=False), access
    # Without the binding, nobody (not even the agents) reads the endpoint.
    for user in (
        unique("someone"),
        headroom_release.user(headroom_release.agent_sa),
        headroom_release.user(headroom_release.controller_sa),
    ):
        assert not url(user, "get", "/system/resources"), user
        assert not url(user, "get", "/metrics"), user


#: What a holder of the built-in user roles may never do to Headroom's objects.
USER_MUST_NOT_WRITE: list[Access] = [
    (verb, "headroom.dev", resource, sub, namespace, name)
    for resource, namespace in (("resourcereports", ""), ("capacityrecommendations", OTHER_NS))
    for verb, sub, name in (
        ("create", "", ""),
        ("update", "", "x"),
        ("patch", "", "x"),
        ("delete", "", "x"),
        ("deletecollection", "", ""),
        ("update", "status", "x"),
        ("patch", "status", "x"),
    )
]


@pytest.fixture
def bound_to(control_plane: ControlPlane) -> Iterator[dict[str, str]]:
    """A user bound (ClusterRoleBinding) to each built-in role: role → user."""
    users = {role: unique(f"{role}-user") for role in ("view", "edit", "admin")}
    for role, user in users.items():
        control_plane.api(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "metadata": {"name": user},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )
    yield users
    for user in users.values():
        control_plane.api(
            "DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{user}"
        )


@pytest.mark.requirement("SC-005", "SC-001")
def test_view_edit_and_admin_read_reports_and_recommendations_and_write_neither(
    control_plane: ControlPlane, headroom_release: Release, bound_to: dict[str, str]
) -> None:
    """The chart's ``-view`` ClusterRole is aggregated (kube-controller-manager's
    clusterrole-aggregation controller) into ``view``, ``edit`` and ``admin``."""
    cp, release, groups = control_plane, headroom_release, ["system:authenticated"]

    def may(user: str, access: Access) -> bool:
        return allowed(cp, user, groups, resource_attributes(access, release), url=False)

    reads = [
        (verb, "headroom.dev", resource, "", namespace, "")
        for verb in ("get", "list", "watch")
        for resource, namespace in (("resourcereports", ""), ("capacityrecommendations", OTHER_NS))
    ]
    viewer = bound_to["view"]
    wait_until(
        lambda: all(may(viewer, a) for a in reads), timeout=120, what="aggregation"
    )  # the controller resyncs slowly on a busy machine
    for role, user in bound_to.items():
        wait_until(lambda u=user: all(may(u, a) for a in reads), timeout=30, what=role)
        assert [a for a in USER_MUST_NOT_WRITE if may(user, a)] == [], role
    # And for real, as the user: kubectl lists both kinds, and a write is forbidden.
    for kind in ("resourcereports", "capacityrecommendations"):
        listed = cp.kubectl("get", kind, "-A", f"--as={viewer}", check=False)
        assert listed.returncode == 0, listed.stderr
    report = "apiVersion: headroom.dev/v1alpha1\nkind: ResourceReport\nmetadata: {name: forged}\n"
    denied = cp.kubectl("create", "-f", "-", f"--as={viewer}", input=report, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    # Without any binding: nothing.
    assert not may(unique("nobody"), reads[1])
