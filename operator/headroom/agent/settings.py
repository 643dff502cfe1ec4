"""Agent settings: environment (``HEADROOM_*``, ``NODE_NAME``) overridden by flags.

Validated once at start; a bad value stops the agent with one line naming the
setting, its environment variable and flag (STYLE habit 6). The environment
is read the way pydantic-settings reads it: ``HEADROOM_`` + the field name, in
any case, ``NODE_NAME`` for the node. The agent validates its dozen settings by
hand rather than with pydantic: importing pydantic alone costs the agent's
process 6 MB of RSS (measured, compiled bytecode), a fifth of its 30 MB budget
(PR-002) for one check at start. The controller, with more room, keeps
pydantic-settings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from headroom.collection.host import HostPaths

__all__ = ["AgentSettings", "SettingsError", "environment_names"]

ENV_PREFIX = "HEADROOM_"

_FLAGS = {
    "node_name": "--node-name",
    "procfs": "--procfs",
    "rootfs": "--rootfs",
    "cgroupfs": "--cgroupfs",
    "disk_paths": "--disk-path",
    "interval_seconds": "--interval",
    "heartbeat_seconds": "--heartbeat",
    "change_threshold_percent": "--threshold",
    "kubeconfig": "--kubeconfig",
    "listen_host": "--listen-host",
    "listen_port": "--listen-port",
    "gpu_recording": "--gpu-recording",
    "tls_cert_file": "--tls-cert-file",
    "tls_key_file": "--tls-key-file",
    "plain_http": "--plain-http",
}
_ENVIRONMENT = {"node_name": ("NODE_NAME", "HEADROOM_NODE_NAME")}


class SettingsError(ValueError):
    """A setting with a value the agent cannot run with; ``str()`` is one line."""

    def __init__(self, name: str, problem: str) -> None:
        self.setting = name
        env = " or ".join(environment_names(name))
        flag = f", {_FLAGS[name]}" if name in _FLAGS else ""
        super().__init__(f"{name} ({env}{flag}): {problem}")


def environment_names(name: str) -> tuple[str, ...]:
    """The environment variables a setting is read from, first match wins."""
    return _ENVIRONMENT.get(name, (ENV_PREFIX + name.upper(),))


def _number(
    kind: Callable[[str], float], low: float, high: float, *, open_low: bool = False
) -> Any:
    """A converter for a number within [low, high] (or (low, high])."""

    what = "an integer" if kind is int else "a number"

    def convert(name: str, value: object) -> float:
        try:
            number = kind(value) if isinstance(value, str) else value
        except ValueError:
            raise SettingsError(name, f"{value!r} is not {what}") from None
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise SettingsError(name, f"{value!r} is not {what}")
        if kind is int and not isinstance(number, int):
            raise SettingsError(name, f"{value!r} is not {what}")
        below = number <= low if open_low else number < low
        if not math.isfinite(number) or below or number > high:
            bound = f"> {low}" if open_low else f">= {low}"
            raise SettingsError(name, f"must be {bound} and <= {high}, got {value!r}")
        return kind(number)  # type: ignore[arg-type]

    return convert


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise SettingsError(name, f"{value!r} is not a string")
    return value


def _path(name: str, value: object) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise SettingsError(name, f"{value!r} is not a path")
    return Path(value)


def _optional_path(name: str, value: object) -> Path | None:
    return None if value is None else _path(name, value)


def _optional_text(name: str, value: object) -> str | None:
    return None if value is None else _text(name, value)


def _boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(name, f"{value!r} is not true or false")


def _disk_paths(name: str, value: object) -> list[str]:
    parts: list[object]
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise SettingsError(name, f"{value!r} is not a list of paths")
    if not parts:
        raise SettingsError(name, "give at least one path, e.g. '/'")
    for part in parts:
        if not isinstance(part, str) or not part.startswith("/"):
            raise SettingsError(name, f"{part!r} is not absolute")
    return [str(part) for part in parts]


_CONVERT: dict[str, Callable[[str, object], Any]] = {
    "node_name": _optional_text,
    "procfs": _path,
    "rootfs": _path,
    "cgroupfs": _path,
    "disk_paths": _disk_paths,
    "interval_seconds": _number(float, 1, 3600),
    "heartbeat_seconds": _number(int, 5, 3600),
    "change_threshold_percent": _number(float, 0, 100),
    "backoff_initial_seconds": _number(float, 0, 60, open_low=True),
    "backoff_max_seconds": _number(float, 0, 3600, open_low=True),
    "kubeconfig": _optional_path,
    "listen_host": _text,
    "listen_port": _number(int, 0, 65535),
    "gpu_recording": _optional_path,
    "tls_cert_file": _optional_path,
    "tls_key_file": _optional_path,
    "plain_http": _boolean,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    """Everything the node agent can be told (README, "The node agent")."""

    node_name: str | None = None
    """The Node this agent measures (downward API: spec.nodeName)."""
    procfs: Path = Path("/proc")
    """The node's procfs (HR-002)."""
    rootfs: Path = Path("/")
    """Where the node's / is mounted."""
    cgroupfs: Path = Path("/sys/fs/cgroup")
    """The node's cgroupfs."""
    disk_paths: list[str] = field(default_factory=lambda: ["/"])
    """Node paths to measure (FR-005), comma-separated in the environment."""
    interval_seconds: float = 15.0
    """Collection cycle; also the minimum write spacing."""
    heartbeat_seconds: int = 60
    """Write at least this often even if nothing moved."""
    change_threshold_percent: float = 5.0
    """Percentage points a figure must move to write early."""
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    kubeconfig: Path | None = None
    """kubeconfig for running outside the cluster; in-cluster otherwise."""
    listen_host: str = "0.0.0.0"
    """Admin endpoint address."""
    listen_port: int = 9731
    """Admin endpoint port; 0 = off."""
    gpu_recording: Path | None = None
    """Recorded NVML answers to replay (tests, demos); unset: the real NVML where present."""
    tls_cert_file: Path | None = None
    """Serving certificate (PEM chain) of the admin endpoint; with ``tls_key_file``.
    Neither: a self-signed certificate made at start, in memory."""
    tls_key_file: Path | None = None
    """Its private key (PEM)."""
    plain_http: bool = False
    """Serve the admin endpoint without TLS: bearer tokens travel in clear."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            object.__setattr__(self, spec.name, _CONVERT[spec.name](spec.name, value))
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise SettingsError("backoff_max_seconds", "must be >= backoff_initial_seconds")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            raise SettingsError(missing, "give both the certificate and its key, or neither")
        if self.plain_http and self.tls_cert_file is not None:
            raise SettingsError("plain_http", "cannot be true with a TLS certificate given")

    @classmethod
    def load(
        cls, overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
    ) -> AgentSettings:
        """The environment, then ``overrides`` (the flags) over it; raises SettingsError."""
        values: dict[str, object] = _from_environment(os.environ if environ is None else environ)
        values.update(overrides or {})
        unknown = sorted(set(values) - set(_CONVERT))
        if unknown:
            raise SettingsError(unknown[0], "unknown setting")
        return cls(**values)  # type: ignore[arg-type]

    def host_paths(self) -> HostPaths:
        """Where the node's filesystems are mounted inside the agent's container."""
        return HostPaths(
            procfs=str(self.procfs), rootfs=str(self.rootfs), cgroupfs=str(self.cgroupfs)
        )


def _from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Each setting's value as the environment gives it (a string), by name."""
    upper = {key.upper(): value for key, value in environ.items()}
    found: dict[str, object] = {}
    for name in _CONVERT:
        for candidate in environment_names(name):
            if candidate in upper:
                found[name] = upper[candidate]
                break
    return found
