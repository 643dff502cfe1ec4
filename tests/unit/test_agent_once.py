"""``headroom agent --once``: this machine's report with no cluster, valid by the CRD schema."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from headroom.cli import main
from tests.unit.crdschema import crd_validator


def run_once(*flags: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "headroom.cli", "agent", "--once", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.requirement("AG-003", "FR-003", "HR-003")
def test_json_output_is_a_valid_resource_report_by_the_generated_crd() -> None:
    report = json.loads(run_once("-o", "json", "--disk-path", "/", "--disk-path", "/nonexistent"))
    errors = sorted(crd_validator("resourcereports").iter_errors(report), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    status = report["status"]
    assert status["cpu"]["logicalCores"] >= 1
    assert status["memory"]["totalBytes"] > 0
    disks = {d["path"]: d for d in status["disks"]}
    assert disks["/"]["totalBytes"] > 0
    assert "error" in disks["/nonexistent"]  # HR-003: reported, not fatal


@pytest.mark.requirement("AG-003")
def test_yaml_output_matches_the_json_shape() -> None:
    report = yaml.safe_load(run_once("-o", "yaml"))
    assert report["kind"] == "ResourceReport"
    assert not list(crd_validator("resourcereports").iter_errors(report))


@pytest.mark.requirement("AG-003")
def test_table_output_names_the_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "--once"]) == 0
    out = capsys.readouterr().out
    for label in ("FR-001", "FR-002", "FR-003", "FR-004", "FR-005"):
        assert label in out


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("cpu", "utilizationPercent"), 101),
        (("cpu", "logicalCores"), -1),
        (("memory", "totalBytes"), "lots"),
        (("unknownField",), 1),
    ],
)
def test_the_schema_check_has_teeth(path: tuple[str, ...], value: object) -> None:
    report = json.loads(run_once("-o", "json"))
    target = report["status"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(crd_validator("resourcereports").iter_errors(report))


@pytest.mark.requirement("AG-003", "PR-002")
def test_once_starts_no_admin_endpoint_and_loads_no_server_library() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from headroom.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['agent', '--once', '-o', 'json', '--listen-port', '9731'])\n"
        "loaded = {'aiohttp', 'prometheus_client', 'headroom.agent.admin'} & set(sys.modules)\n"
        "print(code, sorted(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert result.stdout.strip() == "0 []", result.stderr
