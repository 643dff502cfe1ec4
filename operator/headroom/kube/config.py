"""Where the API server is and who we are: in-cluster service account or a kubeconfig."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "KubeConfig", "load_config"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """No usable way to reach the API server."""


@dataclass(frozen=True)
class KubeConfig:
    """Connection details; the bearer token is re-read from its file when set (rotation)."""

    server: str
    ca_file: Path | None = None
    insecure: bool = False
    token: str | None = None
    token_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def bearer_token(self) -> str | None:
        """The current token (projected tokens rotate, so read the file each time)."""
        if self.token_file is not None:
            return self.token_file.read_text(encoding="utf-8").strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context verifying the server, with our client certificate if any."""
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_file is not None:
            context.load_cert_chain(
                str(self.client_cert_file),
                str(self.client_key_file) if self.client_key_file else None,
            )
        return context


def _materialise(entry: dict[str, Any], key: str, base: Path) -> Path | None:
    """A file path for ``key`` or ``key-data`` (written to a private temp file)."""
    if entry.get(f"{key}-data"):
        data = base64.b64decode(entry[f"{key}-data"])
        handle = tempfile.NamedTemporaryFile(prefix="headroom-", delete=False)  # noqa: SIM115
        with handle:
            handle.write(data)
        return Path(handle.name)
    if entry.get(key):
        path = Path(entry[key])
        return path if path.is_absolute() else base / path
    return None


def _named(items: list[dict[str, Any]], name: str, what: str, source: Path) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            found: dict[str, Any] = item.get(what, {})
            return found
    raise ConfigError(f"{source}: no {what} named {name!r}")


def from_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """Read the current (or named) context of a kubeconfig file."""
    import yaml  # here: in a cluster (the agent's case) no kubeconfig is read (PR-002)

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read kubeconfig {path}: {error}") from error
    name = context or doc.get("current-context")
    if not name:
        raise ConfigError(f"{path}: no current-context")
    ctx = _named(doc.get("contexts", []), name, "context", path)
    cluster = _named(doc.get("clusters", []), ctx.get("cluster", ""), "cluster", path)
    user = (
        _named(doc.get("users", []), ctx.get("user", ""), "user", path) if ctx.get("user") else {}
    )
    base = path.parent
    token_file = user.get("tokenFile")
    return KubeConfig(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=_materialise(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=user.get("token"),
        token_file=Path(token_file) if token_file else None,
        client_cert_file=_materialise(user, "client-certificate", base),
        client_key_file=_materialise(user, "client-key", base),
    )


def in_cluster() -> KubeConfig:
    """The pod's service account, as the kubelet mounts it."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (SERVICE_ACCOUNT_DIR / "token").exists():
        raise ConfigError(
            "not running in a cluster (no KUBERNETES_SERVICE_HOST or service-account token); "
            "give --kubeconfig or set KUBECONFIG"
        )
    if ":" in host:
        host = f"[{host}]"
    return KubeConfig(
        server=f"https://{host}:{port}",
        ca_file=SERVICE_ACCOUNT_DIR / "ca.crt",
        token_file=SERVICE_ACCOUNT_DIR / "token",
    )


def load_config(kubeconfig: Path | None = None, context: str | None = None) -> KubeConfig:
    """An explicit kubeconfig, else ``$KUBECONFIG``, else in-cluster, else ``~/.kube/config``.

    ``context`` picks a kubeconfig context other than the current one.
    """
    if kubeconfig is not None:
        return from_kubeconfig(kubeconfig, context)
    env = os.environ.get("KUBECONFIG")
    if env:
        return from_kubeconfig(Path(env.split(os.pathsep)[0]), context)
    try:
        return in_cluster()
    except ConfigError:
        default = Path.home() / ".kube" / "config"
        if default.exists():
            return from_kubeconfig(default, context)
        raise
