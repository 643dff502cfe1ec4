"""The locked dependency graph, read from ``uv.lock`` (no network, no resolver)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LockFile", "LockedPackage", "read_lock"]


@dataclass(frozen=True)
class LockedPackage:
    """One ``[[package]]`` of uv.lock: a name at one version and its artifacts' hashes."""

    name: str
    version: str
    source: str
    dependencies: tuple[str, ...]
    artifacts: tuple[tuple[str, str], ...]  # (file name, "sha256:…")
    markers: tuple[str, ...] = field(default=())  # when the project pulls this version in

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    @property
    def wheels(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.artifacts if name.endswith(".whl"))

    @property
    def hashed(self) -> bool:
        """Every artifact the lock lists carries a hash (what ``--require-hashes`` needs)."""
        return bool(self.artifacts) and all(h.startswith("sha256:") for _, h in self.artifacts)


@dataclass(frozen=True)
class LockFile:
    project: str
    requires_python: str
    packages: dict[tuple[str, str], LockedPackage]
    direct_runtime: tuple[str, ...]
    direct_dev: tuple[str, ...]

    def versions_of(self, name: str) -> list[LockedPackage]:
        return [p for (n, _), p in sorted(self.packages.items()) if n == name]

    def closure(self, roots: tuple[str, ...]) -> list[LockedPackage]:
        """Every locked package reachable from ``roots`` (all versions of a name)."""
        seen: dict[tuple[str, str], LockedPackage] = {}
        todo = list(roots)
        while todo:
            for package in self.versions_of(todo.pop()):
                if package.key not in seen:
                    seen[package.key] = package
                    todo.extend(package.dependencies)
        return sorted(seen.values(), key=lambda p: (p.name, p.version))

    def runtime(self) -> list[LockedPackage]:
        return self.closure(self.direct_runtime)

    def dev_only(self) -> list[LockedPackage]:
        runtime = {p.key for p in self.runtime()}
        return [p for p in self.closure(self.direct_dev) if p.key not in runtime]


def _artifacts(entry: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    files = [entry["sdist"]] if "sdist" in entry else []
    files.extend(entry.get("wheels", []))
    return tuple((f["url"].rsplit("/", 1)[-1], f.get("hash", "")) for f in files)


def read_lock(path: Path) -> LockFile:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    packages: dict[tuple[str, str], LockedPackage] = {}
    project: dict[str, Any] | None = None
    markers: dict[tuple[str, str], list[str]] = {}
    # Packages the project overrides away (``[tool.uv] override-dependencies`` with an
    # impossible marker) stay in the lock but are never installed: leave them out.
    never = {
        o["name"]
        for o in data.get("manifest", {}).get("overrides", [])
        if o.get("marker") == "sys_platform == 'never'"
    }
    for entry in data["package"]:
        if entry["name"] in never:
            continue
        source = entry.get("source", {})
        if "editable" in source or "virtual" in source:
            project = entry
            continue
        package = LockedPackage(
            name=entry["name"],
            version=entry["version"],
            source=next(iter(source.values()), ""),
            dependencies=tuple(sorted({d["name"] for d in entry.get("dependencies", [])} - never)),
            artifacts=_artifacts(entry),
        )
        packages[package.key] = package
    if project is None:
        raise ValueError(f"{path}: the project itself is not in the lock")
    # A package gets the markers of the edges that pull it in, unless one edge is unconditional
    # (a Windows-only or Python-version-specific package says so in the SOUP list).
    unconditional: set[tuple[str, str]] = set()
    edges = [*project.get("dependencies", [])]
    edges += [d for group in project.get("dev-dependencies", {}).values() for d in group]
    edges += [d for entry in data["package"] for d in entry.get("dependencies", [])]
    for dependency in edges:
        keys = [
            p.key
            for p in packages.values()
            if p.name == dependency["name"] and dependency.get("version", p.version) == p.version
        ]
        for key in keys:
            if "marker" in dependency:
                markers.setdefault(key, []).append(dependency["marker"])
            else:
                unconditional.add(key)
    for key, marks in markers.items():
        if key in unconditional:
            continue
        marks = sorted(set(marks))
        old = packages[key]
        packages[key] = LockedPackage(
            old.name, old.version, old.source, old.dependencies, old.artifacts, tuple(marks)
        )
    dev = project.get("dev-dependencies", {})
    return LockFile(
        project=project["name"],
        requires_python=data.get("requires-python", ""),
        packages=packages,
        direct_runtime=tuple(sorted({d["name"] for d in project.get("dependencies", [])})),
        direct_dev=tuple(sorted({d["name"] for group in dev.values() for d in group})),
    )
