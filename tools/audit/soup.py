"""The SOUP list: every locked dependency with its version, licence, role and hashes.

Licences come from the installed distributions' metadata (``License-Expression``, else a
short ``License`` field, else the trove classifiers), so the list is built offline from
what is really installed at the locked versions. Roles and purposes of the direct
runtime dependencies are stated here, by hand, and reviewed with every new dependency
(a unit test fails when ``pyproject.toml`` gains one that has no entry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import metadata

from tools.audit.lock import LockedPackage, LockFile

__all__ = ["PURPOSES", "SoupRow", "licence_of", "soup_rows"]

# Direct runtime dependencies: (role, why we depend on it). Role is where it is loaded:
# "agent", "controller", "both", or "cli" (`headroom report`, `agent --once` output).
PURPOSES: dict[str, tuple[str, str]] = {
    "aiohttp": ("controller", "kopf's and the controller list-watch's HTTP client"),
    "cryptography": (
        "agent",
        "the admin endpoint's self-signed TLS certificate, made at start (imported only then)",
    ),
    "kopf": ("controller", "operator framework: handlers, life cycle, Events"),
    "numpy": ("controller", "vectorised fit of replicas over all nodes"),
    "nvidia-ml-py": (
        "agent",
        "NVIDIA's NVML binding: GPU figures, imported only where libnvidia-ml.so.1 is",
    ),
    "prometheus-client": ("both", "Prometheus metrics of agent and controller"),
    "protobuf": ("cli", "decodes the Pods `headroom report` asks for as protobuf (upb parser)"),
    "psutil": ("agent", "node CPU, memory and disk figures from the host's procfs"),
    "pydantic": ("both", "API models, validation, CRD generation (the agent: only `--once`)"),
    "pydantic-settings": ("controller", "controller settings from the environment"),
    "pyyaml": ("both", "kubeconfig parsing, CRD and YAML output"),
    "rich": ("cli", "terminal tables of `headroom report`"),
    "tabulate": ("cli", "table output of `agent --once`"),
}


@dataclass(frozen=True)
class SoupRow:
    name: str
    version: str
    licence: str
    role: str
    purpose: str
    hashes: str
    markers: str


def licence_of(name: str, version: str) -> str:
    """The licence the installed distribution declares; says so when it is not installed."""
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return "(not installed here)"
    if distribution.version != version:
        return f"(not installed here: {distribution.version} is)"
    meta = distribution.metadata
    expression = (meta.get_all("License-Expression") or [""])[0]
    if expression:
        return str(expression)
    declared = str((meta.get_all("License") or [""])[0]).strip()
    if declared and "\n" not in declared and len(declared) <= 60 and declared != "UNKNOWN":
        return declared
    classifiers = [
        c.rsplit("::", 1)[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.count("::") >= 2
    ]
    return " OR ".join(classifiers) if classifiers else "UNKNOWN"


def _hashes(package: LockedPackage) -> str:
    if not package.artifacts:
        return "none"
    if package.hashed:
        return f"sha256 × {len(package.artifacts)}"
    return f"MISSING ({sum(1 for _, h in package.artifacts if not h)} unhashed)"


def _roots_of(lock: LockFile, roots: tuple[str, ...]) -> dict[str, set[str]]:
    """For each package: the direct dependencies (of ``roots``) that pull it in."""
    pulled_by: dict[str, set[str]] = {}
    for root in roots:
        for package in lock.closure((root,)):
            pulled_by.setdefault(package.name, set()).add(root)
    return pulled_by


def soup_rows(lock: LockFile, *, dev: bool = False) -> list[SoupRow]:
    """Runtime dependencies (``dev=False``) or the development and test tools."""
    packages = lock.dev_only() if dev else lock.runtime()
    roots = lock.direct_dev if dev else lock.direct_runtime
    pulled_by = _roots_of(lock, roots)
    rows = []
    for package in packages:
        if dev:
            role = "dev"
            purpose = (
                "development / test tool"
                if package.name in roots
                else "required by " + ", ".join(sorted(pulled_by.get(package.name, ())))
            )
        elif package.name in PURPOSES:
            role, purpose = PURPOSES[package.name]
        else:
            parents = sorted(pulled_by.get(package.name, ()))
            roles = {PURPOSES[p][0] for p in parents if p in PURPOSES}
            role = roles.pop() if len(roles) == 1 else "both"
            purpose = "required by " + ", ".join(parents)
        rows.append(
            SoupRow(
                name=package.name,
                version=package.version,
                licence=licence_of(package.name, package.version),
                role=role,
                purpose=purpose,
                hashes=_hashes(package),
                markers=" or ".join(package.markers),
            )
        )
    return rows


def as_dicts(rows: list[SoupRow]) -> list[dict[str, str]]:
    return [asdict(row) for row in rows]
