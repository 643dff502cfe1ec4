"""The release workflow (.github/workflows/release.yml): it cannot run here, so it is linted
(actionlint, built from the Go module proxy; zizmor from PyPI, offline) and its one piece of
our own logic, stamping the image digest into the chart, runs for real."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart_render import CHART_DIR, ROOT, helm
from tests.unit.test_chart_scanners import go_tool
from tools.release_chart import stamp

WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"
ZIZMOR = ROOT / ".venv" / "bin" / "zizmor"


def test_actionlint_finds_nothing() -> None:
    actionlint = go_tool("actionlint")
    result = subprocess.run(
        [str(actionlint), "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_zizmor_finds_nothing(persona: str) -> None:
    """Offline: no GitHub API here (the online audits, e.g. impostor commits, need a token)."""
    result = subprocess.run(
        [str(ZIZMOR), "--offline", f"--persona={persona}", "--format=plain", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout, result.stdout


def _steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load(RELEASE.read_text())
    (job,) = workflow["jobs"].values()
    return list(job["steps"])


def test_release_builds_signs_attests_and_pushes_the_chart() -> None:
    workflow = yaml.safe_load(RELEASE.read_text())
    assert workflow[True]["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+"]  # YAML's `on`
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    runs = "\n".join(step.get("run", "") for step in _steps())
    assert "--platform linux/amd64,linux/arm64" in runs and "--push" in runs
    assert 'cosign sign --yes "$REF"' in runs
    assert "cosign attest --yes --type cyclonedx --predicate build/sbom.cdx.json" in runs
    assert "python -m tools.audit.sbom build/sbom.cdx.json" in runs
    assert "python -m tools.release_chart" in runs and '"$HELM" push' in runs
    assert 'cosign sign --yes "${CHART}@${digest}"' in runs
    for step in _steps():
        if "uses" in step:  # every action pinned to a full commit
            ref = step["uses"].rpartition("@")[2]
            assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]


def test_the_released_chart_pins_the_image_by_digest(tmp_path: Path) -> None:
    chart = tmp_path / "headroom"
    shutil.copytree(CHART_DIR, chart)
    digest = "sha256:" + "0123456789abcdef" * 4
    stamp(chart, "1.4.0", "ghcr.io/acme/headroom", digest)
    assert helm("lint", "--strict", str(chart)).returncode == 0
    rendered = helm("template", "hr", str(chart), "--namespace", "ops", check=True).stdout
    images = {
        c["image"]
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] in ("DaemonSet", "Deployment")
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"ghcr.io/acme/headroom@{digest}"}
    assert "version: 1.4.0" in (chart / "Chart.yaml").read_text()
    # A released chart needs no digest skip for the scanners.
    assert "CKV_K8S_43" not in rendered
    with pytest.raises(ValueError, match="not SemVer"):
        stamp(chart, "latest", "ghcr.io/acme/headroom", digest)
    with pytest.raises(ValueError, match="not sha256"):
        stamp(chart, "1.4.1", "ghcr.io/acme/headroom", "sha256:short")
