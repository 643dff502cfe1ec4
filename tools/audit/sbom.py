"""A CycloneDX SBOM of the runtime dependencies exactly as the image installs them.

The runtime environment is rebuilt from ``uv.lock`` the way the Dockerfile does it
(``uv sync --locked --no-dev``), offline from uv's cache, into ``build/audit/``; then
cyclonedx-bom's ``cyclonedx-py environment`` describes it, with licences from the
installed metadata and the dependency graph. Each component gets the sha256 hashes of
its locked artifacts (as ``cyclonedx-py requirements`` records them), and the result is
validated against the bundled CycloneDX schema. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator

from tools.audit.lock import LockFile

__all__ = ["SPEC_VERSION", "write_sbom"]

SPEC_VERSION = "1.6"


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _runtime_environment(root: Path, target: Path) -> Path:
    """The locked runtime dependencies (no project, no dev group) in a virtualenv."""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if uv is None:
        raise RuntimeError("uv is not on PATH; the SBOM is built from uv.lock with uv")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(target)}
    env.pop("VIRTUAL_ENV", None)
    command = [uv, "sync", "--locked", "--offline", "--no-dev", "--no-install-project", "-q"]
    command += ["--python", sys.executable]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"uv sync of the runtime environment failed:\n{result.stderr}")
    return target


def _add_locked_hashes(bom: dict[str, Any], lock: LockFile) -> int:
    """Record each component's locked artifacts; returns how many components got them."""
    locked = {(_normalise(p.name), p.version): p for p in lock.packages.values()}
    enriched = 0
    for component in bom.get("components", []):
        package = locked.get((_normalise(component["name"]), component.get("version", "")))
        if package is None:
            raise ValueError(f"{component['name']} {component.get('version')} is not in uv.lock")
        component.setdefault("externalReferences", []).append(
            {
                "type": "distribution",
                "url": f"{package.source.rstrip('/')}/{package.name}/",
                "comment": "artifacts locked in uv.lock",
                "hashes": [
                    {"alg": "SHA-256", "content": digest.removeprefix("sha256:")}
                    for _, digest in package.artifacts
                ],
            }
        )
        enriched += 1
    return enriched


def write_sbom(root: Path, lock: LockFile, output: Path, work: Path) -> int:
    """Write ``output`` (CycloneDX JSON); returns the number of components."""
    environment = _runtime_environment(root, work / "runtime-venv")
    raw = work / "sbom.raw.json"
    cyclonedx = [
        sys.executable,
        "-m",
        "cyclonedx_py",
        "environment",
        "--pyproject",
        str(root / "pyproject.toml"),
        "--mc-type",
        "application",
        "--spec-version",
        SPEC_VERSION,
        "--output-reproducible",
        "--output-file",
        str(raw),
        str(environment),
    ]
    result = subprocess.run(cyclonedx, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"cyclonedx-py failed:\n{result.stderr}")
    bom: dict[str, Any] = json.loads(raw.read_text(encoding="utf-8"))
    components = _add_locked_hashes(bom, lock)
    text = json.dumps(bom, indent=2, sort_keys=True) + "\n"
    validator = make_schemabased_validator(
        OutputFormat.JSON, SchemaVersion.from_version(SPEC_VERSION)
    )
    error = validator.validate_str(text)
    if error is not None:
        raise ValueError(f"the SBOM does not validate against CycloneDX {SPEC_VERSION}: {error}")
    output.write_text(text, encoding="utf-8")
    raw.unlink()
    return components


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.audit.sbom OUTPUT``: only the SBOM (the release attaches it)."""
    from tools.audit.lock import read_lock

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.audit.sbom OUTPUT.cdx.json", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2]
    output = Path(args[0])
    output.parent.mkdir(parents=True, exist_ok=True)
    components = write_sbom(root, read_lock(root / "uv.lock"), output, root / "build")
    print(f"{output}: {components} components, CycloneDX {SPEC_VERSION} valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
