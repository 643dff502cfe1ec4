"""The chart's GPU switch (GP-003, PK-001): off renders nothing new; on, a GPU agent with NVML.

Rendered with the pinned helm and validated against the Kubernetes schemas, both ways.
"""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
import pytest

from headroom.agent.settings import AgentSettings
from tests.chart_render import KUBE_VERSION, by_kind, container_env, one, render, set_args, template

GPU_ON = set_args({"gpu.enabled": True})


def _validate(manifests: list[dict[str, object]]) -> None:
    for manifest in manifests:
        if manifest["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


@pytest.mark.requirement("GP-003", "PK-001")
def test_off_by_default_one_agent_daemonset_without_nvidia_anything() -> None:
    manifests = render()
    (daemonset,) = by_kind(manifests, "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    assert "runtimeClassName" not in spec and "hostPID" not in spec and "affinity" not in spec
    assert not any(name.startswith("NVIDIA_") for name in container_env(daemonset))
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "nvidia" not in template().stdout.lower()


@pytest.mark.requirement("GP-001", "PK-001")
def test_on_a_gpu_agent_runs_on_gpu_nodes_with_nvml_reachable_and_no_gpu_request() -> None:
    manifests = render(*GPU_ON)
    _validate(manifests)
    plain = one(manifests, "DaemonSet", "-agent")
    gpu = one(manifests, "DaemonSet", "-agent-gpu")
    spec = gpu["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["hostPID"] is True
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "nvidia.com/gpu.present": "true"}
    env = container_env(gpu)
    assert (env["NVIDIA_VISIBLE_DEVICES"], env["NVIDIA_DRIVER_CAPABILITIES"]) == ("all", "utility")
    (container,) = spec["containers"]
    for kind in ("requests", "limits"):
        assert not any("nvidia.com" in name for name in container["resources"].get(kind, {}))
    # its own selector, so the two DaemonSets' rollouts never mix
    assert gpu["spec"]["selector"]["matchLabels"]["headroom.dev/agent-variant"] == "gpu"
    # the plain agent keeps off the GPU nodes
    terms = plain["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.present", "operator": "NotIn", "values": ["true"]}
            ]
        }
    ]
    assert "runtimeClassName" not in plain["spec"]["template"]["spec"]
    # still non-root, read-only, no capabilities, the node mounted read-only
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["readOnlyRootFilesystem"] is True
    assert ctx["privileged"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert all(m["readOnly"] for m in container["volumeMounts"] if m["name"].startswith("host-"))
    assert spec["volumes"] == plain["spec"]["template"]["spec"]["volumes"]


def test_each_gpu_label_that_differs_puts_a_node_on_the_plain_agent() -> None:
    manifests = render(
        *set_args(
            {
                "gpu.nodeSelector.nvidia\\.com/gpu\\.present": "true",
                "gpu.nodeSelector.pool": "gpu",
                "gpu.runtimeClassName": "",
                "gpu.tolerations[0].key": "nvidia.com/gpu",
                "gpu.tolerations[0].operator": "Exists",
                "gpu.enabled": True,
            }
        )
    )
    plain = one(manifests, "DaemonSet", "-agent")["spec"]["template"]["spec"]
    terms = plain["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = [t["matchExpressions"][0]["key"] for t in terms["nodeSelectorTerms"]]
    assert sorted(keys) == ["nvidia.com/gpu.present", "pool"]  # OR of NotIn: not all match
    gpu = one(manifests, "DaemonSet", "-agent-gpu")["spec"]["template"]["spec"]
    assert "runtimeClassName" not in gpu  # the node's default runtime is NVIDIA's
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]


def test_a_node_affinity_of_the_agent_cannot_be_combined_with_the_gpu_agent() -> None:
    result = template(
        *GPU_ON,
        "--set-json",
        'agent.affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":'
        '{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Exists"}]}]}}}',
    )
    assert result.returncode != 0 and "leave agent.affinity.nodeAffinity empty" in result.stderr


def test_unknown_gpu_values_are_refused() -> None:
    result = template("--set", "gpu.requestGpu=true")
    assert result.returncode != 0 and "requestGpu" in result.stderr


def test_the_gpu_agents_environment_loads_as_agent_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = one(render(*GPU_ON), "DaemonSet", "-agent-gpu")
    for name in list(os.environ):
        if name.startswith("HEADROOM_"):
            monkeypatch.delenv(name)
    for name, value in container_env(gpu).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = AgentSettings.load()
    assert settings.procfs == Path("/host/proc") and settings.gpu_recording is None
