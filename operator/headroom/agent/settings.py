"""Agent settings: environment (``HEADROOM_*``, ``NODE_NAME``) overridden by flags.

One pydantic model, validated once at start; a bad value stops the agent with
a message naming the setting (STYLE habit 6). The environment is read the way
pydantic-settings reads it (``HEADROOM_`` + the field name, any case; a
field's validation aliases instead where it has them), by a dozen lines here:
pydantic-settings itself costs the agent 3 MB of RSS (PR-002) for features it
does not use. The controller, with more room, keeps pydantic-settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from headroom.collection.host import HostPaths

__all__ = ["AgentSettings"]

ENV_PREFIX = "HEADROOM_"


class AgentSettings(BaseModel):
    """Everything the node agent can be told."""

    # env_prefix is read by _from_environment (pydantic-settings' key, kept for readers).
    model_config = ConfigDict(extra="forbid", env_prefix=ENV_PREFIX)  # type: ignore[typeddict-unknown-key]

    def __init__(self, **values: Any) -> None:
        """Values from the environment, then ``values`` (the flags) over them."""
        super().__init__(**{**_from_environment(), **values})

    node_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("node_name", "NODE_NAME", "HEADROOM_NODE_NAME"),
        description="the Node this agent measures (downward API: spec.nodeName)",
    )
    procfs: Path = Field(default=Path("/proc"), description="the node's procfs (HR-002)")
    rootfs: Path = Field(default=Path("/"), description="where the node's / is mounted")
    cgroupfs: Path = Field(default=Path("/sys/fs/cgroup"), description="the node's cgroupfs")
    disk_paths: list[str] = Field(
        default_factory=lambda: ["/"],
        description="node paths to measure (FR-005), comma-separated in the environment",
    )
    interval_seconds: float = Field(
        default=15.0, ge=1, le=3600, description="collection cycle; also the minimum write spacing"
    )
    heartbeat_seconds: int = Field(
        default=60, ge=5, le=3600, description="write at least this often even if nothing moved"
    )
    change_threshold_percent: float = Field(
        default=5.0, ge=0, le=100, description="percentage points a figure must move to write early"
    )
    backoff_initial_seconds: float = Field(default=1.0, gt=0, le=60)
    backoff_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig for running outside the cluster; in-cluster otherwise"
    )
    listen_host: str = Field(default="0.0.0.0", description="admin endpoint address")
    listen_port: int = Field(
        default=9731, ge=0, le=65535, description="admin endpoint port; 0 = off"
    )

    @field_validator("disk_paths", mode="before")
    @classmethod
    def _split_disk_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.disk_paths:
            raise ValueError("disk_paths: give at least one path, e.g. '/'")
        for path in self.disk_paths:
            if not path.startswith("/"):
                raise ValueError(f"disk_paths: {path!r} is not absolute")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("backoff_max_seconds must be >= backoff_initial_seconds")
        return self

    def host_paths(self) -> HostPaths:
        """Where the node's filesystems are mounted inside the agent's container."""
        return HostPaths(
            procfs=str(self.procfs), rootfs=str(self.rootfs), cgroupfs=str(self.cgroupfs)
        )


def _from_environment() -> dict[str, str]:
    """Each field's value as the environment gives it (a string), by field name."""
    environment = {key.upper(): value for key, value in os.environ.items()}
    found: dict[str, str] = {}
    for name, field in AgentSettings.model_fields.items():
        alias = field.validation_alias
        names = (
            [str(choice) for choice in alias.choices]
            if isinstance(alias, AliasChoices)
            else [str(AgentSettings.model_config.get("env_prefix", "")) + name]
        )
        for candidate in names:
            value = environment.get(candidate.upper())
            if value is not None:
                found[str(alias.choices[0]) if isinstance(alias, AliasChoices) else name] = value
                break
    return found
