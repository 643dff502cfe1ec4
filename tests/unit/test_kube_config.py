"""Reaching the API server: kubeconfig files (inline data or paths) and in-cluster."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from headroom.kube import config as kube_config
from headroom.kube.client import ApiError, ApiUnavailable, KubeClient


def write_kubeconfig(tmp_path: Path, user: dict[str, str]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "test",
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://127.0.0.1:6443/",
                    "certificate-authority-data": base64.b64encode(b"CA").decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_token_user_and_inline_ca(tmp_path: Path) -> None:
    cfg = kube_config.from_kubeconfig(write_kubeconfig(tmp_path, {"token": "abc"}))
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.bearer_token() == "abc"
    assert cfg.ca_file is not None and cfg.ca_file.read_bytes() == b"CA"


def test_token_file_is_reread_for_rotation(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    cfg = kube_config.from_kubeconfig(write_kubeconfig(tmp_path, {"tokenFile": str(token)}))
    assert cfg.bearer_token() == "one"
    token.write_text("two\n")
    assert cfg.bearer_token() == "two"


def test_missing_context_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(kube_config.ConfigError, match="current-context"):
        kube_config.from_kubeconfig(path)


def test_not_in_cluster_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kube_config.ConfigError, match="--kubeconfig"):
        kube_config.in_cluster()


def test_unreachable_server_is_retryable_unavailable() -> None:
    cfg = kube_config.KubeConfig(server="https://127.0.0.1:9", insecure=True)
    client = KubeClient(cfg, timeout=2)
    with pytest.raises(ApiUnavailable) as caught:
        client.get("/version")
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable"), [(409, True), (429, True), (503, True), (403, False), (422, False)]
)
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    assert ApiError(status, "r", "m").retryable is retryable
