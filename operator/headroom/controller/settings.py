"""Controller settings: ``HEADROOM_*`` environment, overridden by flags."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from headroom.controller.selector import LabelSelector

__all__ = ["ControllerSettings", "describe_settings_error"]


class ControllerSettings(BaseSettings):
    """Everything the controller can be told."""

    model_config = SettingsConfigDict(env_prefix="HEADROOM_", extra="ignore")

    expert_selector: str = Field(
        default="headroom.dev/expert=true", description="label selector of expert Deployments"
    )
    recompute_seconds: float = Field(
        default=2.0, gt=0, le=300, description="debounce: recompute at most this often"
    )
    persist_history_seconds: float = Field(
        default=300.0, ge=10, description="write unchanged recommendations this often (history)"
    )
    stale_heartbeats: int = Field(
        default=3, ge=1, description="a report is stale after this many missed heartbeats"
    )
    material_change_percent: float = Field(
        default=10.0,
        ge=0,
        description="a request change beyond this raises an Event; fit totals moving"
        " beyond it are rewritten",
    )
    target_utilization_percent: float = Field(default=70.0, gt=0, le=100)
    cpu_margin_percent: float = Field(default=15.0, ge=0, le=1000)
    memory_margin_percent: float = Field(default=15.0, ge=0, le=1000)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=100, ge=1)
    lease_namespace: str = Field(
        default="headroom",
        validation_alias=AliasChoices(
            "lease_namespace", "POD_NAMESPACE", "HEADROOM_LEASE_NAMESPACE"
        ),
    )
    lease_name: str = "headroom-controller"
    lease_duration_seconds: int = Field(default=15, ge=5, le=300)
    identity: str = Field(
        default_factory=socket.gethostname,
        validation_alias=AliasChoices("identity", "POD_NAME", "HEADROOM_IDENTITY"),
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="0 = no metrics server")
    health_port: int = Field(default=8081, ge=0, le=65535, description="kopf liveness; 0 = off")
    kubeconfig: Path | None = None

    @field_validator("expert_selector")
    @classmethod
    def _valid_selector(cls, value: str) -> str:
        LabelSelector.parse(value)
        return value

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ControllerSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        return self

    def selector(self) -> LabelSelector:
        """The parsed expert selector."""
        return LabelSelector.parse(self.expert_selector)


def describe_settings_error(error: ValidationError) -> str:
    """One line per bad setting, named as the operator writes it (CT-006).

    ``HEADROOM_CPU_MARGIN_PERCENT='-5': Input should be greater than or equal to 0``
    — the environment variable (the chart sets those), the value given, and why.
    """
    lines = []
    for problem in error.errors(include_url=False):
        field = ".".join(str(part) for part in problem["loc"])
        name = f"HEADROOM_{field.upper()}" if field else "settings"
        given = problem.get("input")
        shown = f"={given!r}" if field and isinstance(given, str | int | float) else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}{shown}: {message}")
    return "\n".join(lines)
