"""Agent settings: environment (``HEADROOM_*``, ``NODE_NAME``) overridden by flags.

One pydantic-settings model, validated once at start; a bad value stops the
agent with a message naming the setting (STYLE habit 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from headroom.collection.host import HostPaths

__all__ = ["AgentSettings"]


class AgentSettings(BaseSettings):
    """Everything the node agent can be told."""

    model_config = SettingsConfigDict(env_prefix="HEADROOM_", extra="forbid")

    node_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("node_name", "NODE_NAME", "HEADROOM_NODE_NAME"),
        description="the Node this agent measures (downward API: spec.nodeName)",
    )
    procfs: Path = Field(default=Path("/proc"), description="the node's procfs (HR-002)")
    rootfs: Path = Field(default=Path("/"), description="where the node's / is mounted")
    cgroupfs: Path = Field(default=Path("/sys/fs/cgroup"), description="the node's cgroupfs")
    disk_paths: Annotated[list[str], NoDecode] = Field(
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
