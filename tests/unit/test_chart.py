"""The Helm chart without a cluster (PK, SC): lint, Kubernetes schemas, values schema,
pod security, settings names, RBAC shape and the own-node admission policy.

The chart's ``crds/`` equal the generated CRDs: see test_crds.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from headroom.agent.settings import AgentSettings
from headroom.agent.settings import environment_names as agent_environment_names
from headroom.controller.settings import ControllerSettings
from tests.chart_render import (
    CHART_DIR,
    KUBE_VERSION,
    Manifest,
    by_kind,
    container_env,
    helm,
    one,
    pod_templates,
    render,
    set_args,
    template,
)

#: Kinds kubernetes-validate has no schema for (not part of Kubernetes itself).
KINDS_WITHOUT_SCHEMA = {"ServiceMonitor", "Certificate"}

#: Every optional part switched on, and unusual but valid values.
EVERYTHING_ON = [
    *set_args(
        {
            "serviceMonitor.enabled": True,
            "serviceMonitor.labels.release": "prometheus",
            "agent.priorityClassName": "system-node-critical",
            "controller.priorityClassName": "system-cluster-critical",
            "agent.podAnnotations.example\\.com/team": "platform",
            "controller.podLabels.team": "platform",
            "image.digest": "sha256:" + "a" * 64,
            "commonLabels.cost-centre": "42",
            "agent.serviceAccount.name": "custom-agent",
            "controller.serviceAccount.annotations.example\\.com/role": "x",
        }
    ),
    "--set",
    "imagePullSecrets[0].name=regcred",
    "--set",
    "agent.diskPaths={/,/var/lib}",
]


#: The agent's certificate from cert-manager, scraped by Prometheus.
CERT_MANAGER = set_args(
    {
        "agent.tls.source": "certManager",
        "agent.tls.certManager.issuerRef.name": "cluster-ca",
        "agent.tls.certManager.issuerRef.kind": "ClusterIssuer",
        "serviceMonitor.enabled": True,
    }
)
#: Every switch turned the other way (also the chart scanners' second run).
FLIPPED_VALUES = CHART_DIR.parents[1] / "tests" / "fixtures" / "chart-values-flipped.yaml"
#: The one explicit way to plain HTTP.
PLAIN_HTTP = set_args({"agent.tls.enabled": False, "serviceMonitor.enabled": True})


def _validate(manifests: Sequence[Manifest]) -> set[str]:
    """Validate each object against the Kubernetes schemas (strict); return kinds skipped."""
    skipped: set[str] = set()
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except SchemaNotFoundError:
            skipped.add(manifest["kind"])
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(
                f"{name} does not validate against Kubernetes {error.version}: {path}: {error.message}"
            )
    return skipped


# --- lint and schemas ---------------------------------------------------------------


@pytest.mark.requirement("PK-001")
@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint_is_clean(strict: bool) -> None:
    result = helm("lint", str(CHART_DIR), *(["--strict"] if strict else []))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


@pytest.mark.requirement("PK-001")
@pytest.mark.parametrize(
    "extra",
    [
        [],
        EVERYTHING_ON,
        set_args({"rbac.create": False}),
        CERT_MANAGER,
        PLAIN_HTTP,
        ["-f", str(FLIPPED_VALUES)],
    ],
    ids=["defaults", "all-on", "no-rbac", "cert-manager", "plain-http", "flipped"],
)
def test_rendered_objects_validate_against_kubernetes_schemas(extra: list[str]) -> None:
    """kubernetes-validate (strict: unknown fields fail) for the newest version it knows."""
    assert kubernetes_validate.utils.latest_version().startswith("1.37")
    manifests = render(*extra)
    assert _validate(manifests) <= KINDS_WITHOUT_SCHEMA


def test_service_monitors_are_rendered_only_on_request() -> None:
    assert not by_kind(render(), "ServiceMonitor")
    monitors = by_kind(render(*EVERYTHING_ON), "ServiceMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == [
        "headroom-agent",
        "headroom-controller",
    ]
    agent = one(monitors, "ServiceMonitor", "-agent")["spec"]["endpoints"][0]
    assert (agent["port"], agent["path"]) == ("admin", "/metrics")
    assert agent["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"


@pytest.mark.requirement("PK-001")
@pytest.mark.parametrize(
    ("flag", "value", "complaint"),
    [
        ("--set", "controller.replicas=-1", "at '/controller/replicas': minimum: got -1"),
        (
            "--set-string",
            "controller.replicas=two",
            "at '/controller/replicas': got string, want integer",
        ),
        ("--set", "unknownKey=1", "at '': additional properties 'unknownKey' not allowed"),
        ("--set", "agent.unknownKey=1", "at '/agent': additional properties 'unknownKey'"),
        ("--set", "agent.logLevel=TRACE", "at '/agent/logLevel': value must be one of"),
        ("--set", "agent.diskPaths={var/lib}", "at '/agent/diskPaths/0': 'var/lib' does not match"),
        ("--set", "agent.listenPort=80", "at '/agent/listenPort': minimum: got 80"),
        ("--set", "agent.heartbeatSeconds=1", "at '/agent/heartbeatSeconds': minimum: got 1"),
        (
            "--set",
            "controller.sizing.targetUtilizationPercent=0",
            "at '/controller/sizing/targetUtilizationPercent': exclusiveMinimum",
        ),
        ("--set", "image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("--set", "rbac.create=maybe", "at '/rbac/create': got string, want boolean"),
        ("--set", "agent.tolerations[0].operator=Maybe", "at '/agent/tolerations/0/operator'"),
    ],
)
def test_values_outside_the_schema_are_refused(flag: str, value: str, complaint: str) -> None:
    result = template(flag, value)
    assert result.returncode != 0, f"{value} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert complaint in result.stderr, result.stderr


def test_min_replicas_above_max_is_refused() -> None:
    result = template(
        *set_args({"controller.sizing.minReplicas": 5, "controller.sizing.maxReplicas": 3})
    )
    assert result.returncode != 0
    assert "minReplicas must not exceed" in result.stderr


@pytest.mark.requirement("PK-001")
def test_values_schema_is_strict_at_every_object() -> None:
    """Every object in values.schema.json that lists properties refuses unknown ones."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    loose: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                loose.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(schema, "")
    assert loose == []


@pytest.mark.requirement("PK-001")
def test_every_value_is_documented() -> None:
    """Each leaf of values.yaml has a ``# --`` comment in the block right above it."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    undocumented: list[str] = []
    documented: set[tuple[str, ...]] = set()
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [key]
        stack.append((indent, key))
        above = index - 1
        comment: list[str] = []
        while above >= 0 and lines[above].strip().startswith("#"):
            comment.append(lines[above].strip())
            above -= 1
        if any(c.startswith("# --") for c in comment):
            documented.add(tuple(path))
        node: Any = values
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node:
            continue  # a section, or a documented default whose keys need no comment each
        if not any(tuple(path[:n]) in documented for n in range(1, len(path) + 1)):
            undocumented.append(".".join(path))
    assert undocumented == []


# --- pod security (PK) ----------------------------------------------------------------


@pytest.mark.requirement("PK-002", "SR-002")
@pytest.mark.parametrize("extra", [[], EVERYTHING_ON], ids=["defaults", "all-on"])
def test_pods_run_non_root_read_only_without_capabilities(extra: list[str]) -> None:
    templates = dict(pod_templates(render(*extra)))
    assert sorted(templates) == ["headroom-agent", "headroom-controller"]
    for name, spec in templates.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is True, name
        assert spec["enableServiceLinks"] is False, name
        for key in ("hostPID", "hostIPC", "hostNetwork"):
            assert not spec.get(key), (name, key)
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["privileged"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name


@pytest.mark.requirement("PK-002")
def test_image_runs_as_the_charts_user() -> None:
    dockerfile = (CHART_DIR.parents[1] / "Dockerfile").read_text()
    assert re.search(r"^USER 65532:65532$", dockerfile, re.MULTILINE)
    images = {c["image"] for _, spec in pod_templates(render()) for c in spec["containers"]}
    assert images == {"ghcr.io/headroom-dev/headroom:0.1.0"}


@pytest.mark.requirement("HR-002", "SR-002", "FR-006")
def test_agent_mounts_the_node_read_only() -> None:
    """HR-002: the node's procfs, root and cgroupfs, through read-only hostPath mounts only."""
    agent = one(render(), "DaemonSet", "-agent")["spec"]["template"]["spec"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in agent["volumes"] if "hostPath" in v}
    assert host_paths == {"host-root": "/", "host-proc": "/proc", "host-cgroup": "/sys/fs/cgroup"}
    (container,) = agent["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert {name: mounts[name]["mountPath"] for name in host_paths} == {
        "host-root": "/host",
        "host-proc": "/host/proc",
        "host-cgroup": "/host/sys/fs/cgroup",
    }
    assert all(mounts[name]["readOnly"] is True for name in host_paths)
    assert agent["tolerations"] == [{"operator": "Exists"}]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"admin": 9731}
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "admin",
        "scheme": "HTTPS",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": "admin",
        "scheme": "HTTPS",
    }


def test_service_accounts_do_not_hand_out_tokens_by_default() -> None:
    accounts = by_kind(render(), "ServiceAccount")
    assert sorted(a["metadata"]["name"] for a in accounts) == [
        "headroom-agent",
        "headroom-controller",
    ]
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


# --- settings: the chart's environment is what the programs read ------------------------


def _field_env_names(model: type[AgentSettings] | type[ControllerSettings]) -> dict[str, str]:
    """environment variable → field, as pydantic-settings reads them."""
    names: dict[str, str] = {}
    if model is AgentSettings:
        return {
            env_name: spec.name
            for spec in dataclasses.fields(AgentSettings)
            for env_name in agent_environment_names(spec.name)
        }
    assert model is ControllerSettings
    prefix = model.model_config.get("env_prefix", "")
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        for env_name in [str(c) for c in choices] if choices else [f"{prefix}{name}"]:
            names[env_name.upper()] = name
    return names


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No HEADROOM_* (or downward-API) variables from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("HEADROOM_") or name in ("NODE_NAME", "POD_NAME", "POD_NAMESPACE"):
            monkeypatch.delenv(name)
    return monkeypatch


def _resolved_env(workload: Manifest, **field_refs: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, value in container_env(workload).items():
        if isinstance(value, dict):
            path = value["fieldRef"]["fieldPath"]
            env[name] = field_refs[path]
        else:
            env[name] = value
    return env


def test_agent_environment_names_settings_and_loads(clean_environment: pytest.MonkeyPatch) -> None:
    manifests = render(
        *set_args({"agent.intervalSeconds": 5, "agent.heartbeatSeconds": 30}),
        "--set",
        "agent.diskPaths={/,/var/lib}",
    )
    agent = one(manifests, "DaemonSet", "-agent")
    env = _resolved_env(agent, **{"spec.nodeName": "node-a"})
    known = _field_env_names(AgentSettings)
    assert set(env) <= set(known), set(env) - set(known)
    for name, value in env.items():
        clean_environment.setenv(name, value)
    settings = AgentSettings.load()
    assert settings.node_name == "node-a"
    assert (settings.procfs, settings.rootfs, settings.cgroupfs) == (
        Path("/host/proc"),
        Path("/host"),
        Path("/host/sys/fs/cgroup"),
    )
    assert settings.disk_paths == ["/", "/var/lib"]
    assert (settings.interval_seconds, settings.heartbeat_seconds) == (5, 30)
    assert settings.change_threshold_percent == 5
    assert settings.listen_port == 9731
    assert agent["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "agent",
        "--log-level=INFO",
    ]


def test_controller_environment_names_settings_and_loads(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    values: dict[str, str | int] = {
        "controller.expertSelector": "team=ml,tier in (gpu)",
        "controller.sizing.targetUtilizationPercent": 60,
        "controller.sizing.cpuMarginPercent": 20,
        "controller.sizing.memoryMarginPercent": 25,
        "controller.sizing.minReplicas": 2,
        "controller.sizing.maxReplicas": 40,
    }
    manifests = render(*set_args(values), release="prod", namespace="ops")
    controller = one(manifests, "Deployment", "-controller")
    assert controller["spec"]["replicas"] == 2
    env = _resolved_env(
        controller, **{"metadata.name": "prod-headroom-controller-abc", "metadata.namespace": "ops"}
    )
    known = _field_env_names(ControllerSettings)
    assert set(env) <= set(known), set(env) - set(known)
    for name, value in env.items():
        clean_environment.setenv(name, value)
    settings = ControllerSettings()
    assert settings.identity == "prod-headroom-controller-abc"
    assert settings.lease_namespace == "ops"
    assert settings.lease_name == "prod-headroom-controller"
    assert settings.expert_selector == "team=ml,tier in (gpu)"
    assert (
        settings.target_utilization_percent,
        settings.cpu_margin_percent,
        settings.memory_margin_percent,
        settings.min_replicas,
        settings.max_replicas,
    ) == (60, 20, 25, 2, 40)
    assert (settings.metrics_port, settings.health_port) == (8080, 8081)
    spec = controller["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in spec["containers"][0]["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert spec["containers"][0]["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "health",
    }


# --- RBAC and the admission policy (SC) ---------------------------------------------------


def _rules(manifests: Sequence[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (m["metadata"]["name"], rule)
        for m in manifests
        if m["kind"] in ("ClusterRole", "Role")
        for rule in m["rules"]
    ]


@pytest.mark.requirement("SC-001", "SC-003")
def test_rbac_has_no_wildcards_and_no_secrets() -> None:
    for name, rule in _rules(render()):
        for key in ("apiGroups", "resources", "verbs", "nonResourceURLs", "resourceNames"):
            assert not any("*" in item for item in rule.get(key, [])), (name, rule)
        assert not {"secrets", "configmaps", "serviceaccounts/token"} & set(
            rule.get("resources", [])
        )
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), (name, rule)


def test_rbac_create_false_renders_no_rbac() -> None:
    manifests = render(*set_args({"rbac.create": False}))
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert {"ServiceAccount", "DaemonSet", "Deployment"} <= kinds


@pytest.mark.requirement("SC-001", "SR-003")
def test_resources_reader_grants_get_on_the_two_urls_only() -> None:
    reader = one(render(), "ClusterRole", "-resources-reader")
    assert reader["metadata"]["name"] == "headroom-resources-reader"
    assert reader["rules"] == [
        {"nonResourceURLs": ["/system/resources", "/metrics"], "verbs": ["get"]}
    ]


@pytest.mark.requirement("SC-001")
def test_lease_rules_are_namespaced_and_named() -> None:
    role = one(render(namespace="ops"), "Role", "-leader-election")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["headroom-controller"],
            "verbs": ["get", "update"],
        },
    ]


@pytest.mark.requirement("SC-002")
def test_own_node_policy_matches_the_agents_service_account() -> None:
    manifests = render(*set_args({"agent.serviceAccount.name": "probe"}), namespace="ops")
    policy = one(manifests, "ValidatingAdmissionPolicy", "-agent-own-node")
    binding = one(manifests, "ValidatingAdmissionPolicyBinding", "-agent-own-node")
    assert policy["spec"]["matchConditions"] == [
        {
            "name": "is-the-agent",
            "expression": "request.userInfo.username == 'system:serviceaccount:ops:probe'",
        }
    ]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["operations"] == ["CREATE", "UPDATE", "DELETE"]
    assert rule["resources"] == ["resourcereports", "resourcereports/status"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    assert not by_kind(
        render(*set_args({"agent.ownNodePolicy.enabled": False})), "ValidatingAdmissionPolicy"
    )


def test_long_release_names_fit_object_name_limits() -> None:
    """Service names are DNS labels (63), other names DNS subdomains (253), labels 63."""
    manifests = render(release="a-long-release-name-for-the-machine-learning-platform")
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        assert len(name) <= (63 if manifest["kind"] == "Service" else 253), name
        for value in manifest["metadata"]["labels"].values():
            assert len(value) <= 63, value


@pytest.mark.requirement("PK-001")
def test_notes_say_what_to_run_next() -> None:
    result = helm(
        "install",
        "hr",
        str(CHART_DIR),
        "--dry-run=client",
        "--namespace",
        "ops",
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for needed in (
        "pod-security.kubernetes.io/enforce=privileged",
        "kubectl get resourcereports",
        "kubectl get capacityrecommendations -A",
        "--clusterrole=hr-headroom-resources-reader",
    ):
        assert needed in notes, needed


# --- TLS of the agent's admin endpoint (SC-004) -------------------------------------------


def _agent_container(manifests: Sequence[Manifest]) -> dict[str, Any]:
    (container,) = one(manifests, "DaemonSet", "-agent")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _agent_scrape(manifests: Sequence[Manifest]) -> dict[str, Any]:
    return dict(one(manifests, "ServiceMonitor", "-agent")["spec"]["endpoints"][0])


@pytest.mark.requirement("SC-004")
def test_tls_is_on_by_default_with_a_self_signed_certificate() -> None:
    manifests = render(*set_args({"serviceMonitor.enabled": True}))
    env = container_env(one(manifests, "DaemonSet", "-agent"))
    assert not {"HEADROOM_PLAIN_HTTP", "HEADROOM_TLS_CERT_FILE"} & set(env)
    assert AgentSettings.load(environ={k: v for k, v in env.items() if isinstance(v, str)})
    assert not by_kind(manifests, "Certificate")
    scrape = _agent_scrape(manifests)
    assert scrape["scheme"] == "https"
    # Spelled out: self-signed certificates cannot be verified, only the link encrypted.
    assert scrape["tlsConfig"] == {"insecureSkipVerify": True}


@pytest.mark.requirement("SC-004")
def test_cert_manager_certificate_is_mounted_and_verified_by_prometheus() -> None:
    manifests = render(*CERT_MANAGER, namespace="ops")
    certificate = one(manifests, "Certificate", "-agent")
    assert certificate["spec"]["secretName"] == "headroom-agent-tls"
    assert "headroom-agent.ops.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"] == {
        "name": "cluster-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    spec = one(manifests, "DaemonSet", "-agent")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "headroom-agent-tls"
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/etc/headroom/tls", "readOnly": True}
    env = container_env(one(manifests, "DaemonSet", "-agent"))
    settings = AgentSettings.load(environ={k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.tls_cert_file == Path("/etc/headroom/tls/tls.crt")
    assert settings.tls_key_file == Path("/etc/headroom/tls/tls.key")
    assert settings.plain_http is False
    assert _agent_scrape(manifests)["tlsConfig"] == {
        "ca": {"secret": {"name": "headroom-agent-tls", "key": "ca.crt"}},
        "serverName": "headroom-agent.ops.svc",
        "insecureSkipVerify": False,
    }


@pytest.mark.requirement("SC-004")
def test_an_existing_secret_needs_its_name() -> None:
    result = template(*set_args({"agent.tls.source": "secret"}))
    assert result.returncode != 0
    assert "agent.tls.source secret needs agent.tls.secretName" in result.stderr
    manifests = render(*set_args({"agent.tls.source": "secret", "agent.tls.secretName": "mine"}))
    spec = one(manifests, "DaemonSet", "-agent")["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "mine", "defaultMode": 0o440}} in spec[
        "volumes"
    ]
    assert not by_kind(manifests, "Certificate")


@pytest.mark.requirement("SC-004")
def test_plain_http_only_when_asked_and_the_notes_warn() -> None:
    manifests = render(*PLAIN_HTTP)
    container = _agent_container(manifests)
    assert container_env(one(manifests, "DaemonSet", "-agent"))["HEADROOM_PLAIN_HTTP"] == "true"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert _agent_scrape(manifests)["scheme"] == "http"
    notes = {}
    for extra in ([], PLAIN_HTTP):
        result = helm("install", "hr", str(CHART_DIR), "--dry-run=client", *extra)
        assert result.returncode == 0, result.stderr
        notes[bool(extra)] = result.stdout.split("NOTES:", 1)[1]
    assert "WARNING: agent.tls.enabled is false" in notes[True]
    assert "http://127.0.0.1" in notes[True]
    assert "WARNING" not in notes[False] and "curl -k" in notes[False]


@pytest.mark.requirement("SC-005")
def test_view_role_reads_both_kinds_and_aggregates_into_the_user_roles() -> None:
    role = one(render(), "ClusterRole", "-view")
    assert role["metadata"]["name"] == "headroom-view"
    labels = role["metadata"]["labels"]
    for built_in in ("view", "edit", "admin"):
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{built_in}"] == "true"
    assert role["rules"] == [
        {
            "apiGroups": ["headroom.dev"],
            "resources": ["resourcereports", "capacityrecommendations"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    off = render(*set_args({"rbac.aggregateToDefaultRoles": False}))
    assert not [m for m in by_kind(off, "ClusterRole") if m["metadata"]["name"].endswith("-view")]


# --- NetworkPolicies, storage, probes ---------------------------------------------------


@pytest.mark.requirement("SC-001")
def test_network_policies_admit_only_the_named_peers_and_allow_only_api_and_dns() -> None:
    manifests = render()
    policies = {m["metadata"]["name"]: m["spec"] for m in by_kind(manifests, "NetworkPolicy")}
    assert sorted(policies) == ["headroom-agent", "headroom-controller"]
    monitoring = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    for name, port in (("headroom-agent", "admin"), ("headroom-controller", "metrics")):
        spec = policies[name]
        workload = next(
            m
            for m in manifests
            if m["kind"] in ("DaemonSet", "Deployment") and m["metadata"]["name"] == name
        )
        assert spec["podSelector"] == workload["spec"]["selector"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["ingress"] == [
            {"from": monitoring, "ports": [{"port": port, "protocol": "TCP"}]}
        ]
        api, dns = spec["egress"]
        assert "to" not in api and [p["port"] for p in api["ports"]] == [443, 6443]
        assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
        assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    narrowed = render(
        "--set",
        "networkPolicy.apiServerCIDRs={10.0.0.10/32}",
        "--set",
        "networkPolicy.agentFrom=null",
    )
    agent = one(narrowed, "NetworkPolicy", "-agent")["spec"]
    assert agent["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}]
    assert agent["ingress"] == []  # nobody named: nobody admitted
    assert not by_kind(render(*set_args({"networkPolicy.enabled": False})), "NetworkPolicy")


@pytest.mark.requirement("PK-001")
def test_workloads_request_and_limit_ephemeral_storage_and_the_controller_has_readiness() -> None:
    manifests = render()
    for _, spec in pod_templates(manifests):
        resources = spec["containers"][0]["resources"]
        assert (
            resources["requests"]["ephemeral-storage"] and resources["limits"]["ephemeral-storage"]
        )
    controller = one(manifests, "Deployment", "-controller")["spec"]["template"]["spec"]
    (container,) = controller["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["readinessProbe"] != container["livenessProbe"]
