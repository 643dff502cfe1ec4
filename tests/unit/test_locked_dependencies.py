"""The lock file as an auditor reads it (SR-001, HR-001): Python 3.11+, every artifact
hashed, every runtime dependency reviewed, and installable on amd64 and arm64 from wheels."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tools.audit.lock import LockedPackage, read_lock
from tools.audit.soup import PURPOSES

ROOT = Path(__file__).resolve().parents[2]
LOCK = read_lock(ROOT / "uv.lock")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The image's interpreter (Dockerfile: python:3.11-slim-bookworm, glibc 2.36).
IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.0"}
GLIBC = (2, 36)


def in_image(package: LockedPackage) -> bool:
    environment = {**IMAGE_PYTHON, "sys_platform": "linux"}
    return not package.markers or any(Marker(m).evaluate(environment) for m in package.markers)


@pytest.mark.requirement("SR-001")
def test_python_311_or_newer_is_required() -> None:
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert LOCK.requires_python == ">=3.11"


@pytest.mark.requirement("SR-001")
def test_every_locked_artifact_has_a_hash() -> None:
    unhashed = [p.name for p in LOCK.runtime() + LOCK.dev_only() if not p.hashed]
    assert not unhashed


@pytest.mark.requirement("SR-001")
def test_every_direct_runtime_dependency_is_reviewed() -> None:
    """A new dependency needs a role and a purpose in the SOUP list (tools/audit/soup.py)."""
    declared = {
        canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]
    }
    assert set(LOCK.direct_runtime) == declared
    assert set(PURPOSES) == declared


def platforms_covered(package: LockedPackage) -> set[str]:
    """Which of amd64 / arm64 a wheel of this package installs on in the image."""
    covered: set[str] = set()
    for wheel in package.wheels:
        _, _, _, tags = parse_wheel_filename(wheel)
        for tag in tags:
            python_ok = tag.interpreter in {"py3", "cp311"} or (
                tag.abi == "abi3"
                and tag.interpreter.startswith("cp3")
                and int(tag.interpreter[3:]) <= 11
            )
            if not python_ok:
                continue
            if tag.platform == "any":
                return {"amd64", "arm64"}
            for arch, name in (("x86_64", "amd64"), ("aarch64", "arm64")):
                if tag.platform.startswith("manylinux") and tag.platform.endswith(arch):
                    glibc = tag.platform.removeprefix("manylinux_").split("_")[:2]
                    old_style = not tag.platform.startswith("manylinux_")
                    if old_style or (int(glibc[0]), int(glibc[1])) <= GLIBC:
                        covered.add(name)
    return covered


@pytest.mark.requirement("HR-001")
def test_every_runtime_dependency_has_wheels_for_amd64_and_arm64() -> None:
    """The image builds for both architectures without a compiler (Dockerfile)."""
    missing = {
        f"{p.name} {p.version}": sorted({"amd64", "arm64"} - platforms_covered(p))
        for p in LOCK.runtime()
        if in_image(p) and platforms_covered(p) != {"amd64", "arm64"}
    }
    assert not missing


def test_the_wheel_check_has_teeth() -> None:
    x86_only = LockedPackage("x", "1", "", (), (("x-1-cp311-cp311-manylinux_2_17_x86_64.whl", ""),))
    too_new = LockedPackage("y", "1", "", (), (("y-1-cp311-cp311-manylinux_2_39_aarch64.whl", ""),))
    assert platforms_covered(x86_only) == {"amd64"}
    assert platforms_covered(too_new) == set()
