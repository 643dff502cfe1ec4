"""Agent settings: environment, flags over it, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from headroom.agent.settings import AgentSettings
from headroom.cli import main


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "worker-7")
    monkeypatch.setenv("HEADROOM_PROCFS", "/host/proc")
    monkeypatch.setenv("HEADROOM_DISK_PATHS", "/, /var/lib/containerd")
    settings = AgentSettings()
    assert settings.node_name == "worker-7"
    assert settings.procfs == Path("/host/proc")
    assert settings.disk_paths == ["/", "/var/lib/containerd"]
    assert settings.heartbeat_seconds == 60


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADROOM_HEARTBEAT_SECONDS", "120")
    assert AgentSettings(heartbeat_seconds=30).heartbeat_seconds == 30


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("disk_paths", "relative/path", "not absolute"),
        ("heartbeat_seconds", "0", "heartbeat_seconds"),
        ("change_threshold_percent", "101", "change_threshold_percent"),
        ("interval_seconds", "soon", "interval_seconds"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"HEADROOM_{field.upper()}", value)
    with pytest.raises(ValidationError, match=message):
        AgentSettings()


@pytest.mark.requirement("CT-006")
def test_cli_reports_bad_settings_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEADROOM_HEARTBEAT_SECONDS", "-1")
    assert main(["agent", "--once"]) == 2
    assert "heartbeat_seconds" in capsys.readouterr().err


def test_agent_without_node_name_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert main(["agent"]) == 2
    assert "NODE_NAME" in capsys.readouterr().err
