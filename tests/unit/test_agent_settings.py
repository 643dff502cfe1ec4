"""Agent settings: environment, flags over it, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from headroom.agent.settings import AgentSettings, SettingsError
from headroom.cli import main


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "worker-7")
    monkeypatch.setenv("HEADROOM_PROCFS", "/host/proc")
    monkeypatch.setenv("HEADROOM_DISK_PATHS", "/, /var/lib/containerd")
    settings = AgentSettings.load()
    assert settings.node_name == "worker-7"
    assert settings.procfs == Path("/host/proc")
    assert settings.disk_paths == ["/", "/var/lib/containerd"]
    assert settings.heartbeat_seconds == 60


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADROOM_HEARTBEAT_SECONDS", "120")
    assert AgentSettings.load({"heartbeat_seconds": 30}).heartbeat_seconds == 30


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
    with pytest.raises(SettingsError, match=message):
        AgentSettings.load()


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


@pytest.mark.requirement("HR-003", "AG-002")
@pytest.mark.parametrize(
    ("argv", "environment", "named"),
    [
        (["--interval", "-5"], {}, "interval_seconds (HEADROOM_INTERVAL_SECONDS, --interval)"),
        (["--disk-path", "var/lib"], {}, "disk_paths (HEADROOM_DISK_PATHS, --disk-path)"),
        ([], {"HEADROOM_DISK_PATHS": "/,data"}, "'data' is not absolute"),
        ([], {"HEADROOM_LISTEN_PORT": "70000"}, "listen_port (HEADROOM_LISTEN_PORT"),
        ([], {"HEADROOM_BACKOFF_MAX_SECONDS": "0.5"}, "backoff_max_seconds"),
        (["--heartbeat", "often"], {}, "argument --heartbeat: invalid int value"),
        (["--bogus-flag", "1"], {}, "unrecognized arguments: --bogus-flag"),
    ],
)
def test_bad_settings_stop_the_agent_at_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environment: dict[str, str],
    named: str,
) -> None:
    """Exit 2 before collecting anything; the last line of stderr names the setting."""
    monkeypatch.setenv("NODE_NAME", "worker-1")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        code = main(["agent", *argv])
    except SystemExit as exit_:  # argparse's refusal of a flag
        code = int(exit_.code or 0)
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert named in errors[-1]
