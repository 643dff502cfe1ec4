"""Integration tests against a real control plane (etcd + kube-apiserver + KCM).

Every test in this directory gets the ``integration`` marker. The session-scoped
``control_plane`` fixture starts the plane once, with the repository's CRDs
(``crds/``) installed.

Binaries: see tests/controlplane/binaries.py. With ``CI`` set, a missing binary
or a failure to build or start is a hard failure, never a skip. Outside CI the
fixture builds the binaries when Go is available (10-30 minutes once; set
``HEADROOM_NO_BUILD=1`` to skip instead), and skips with one line saying how to
get them otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.binaries import (
    HOW_TO_GET_BINARIES,
    BinariesUnavailableError,
    ClientBinaries,
    ServerBinaries,
    extract_client_binaries,
    find_server_binaries,
    go_available,
)
from tests.controlplane.cluster import ControlPlane
from tests.integration.chart_release import Release, install, uninstall

INTEGRATION_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEGRATION_DIR.parents[1]
CRDS_DIR = REPO_ROOT / "crds"


def in_ci() -> bool:
    """Whether we run under CI (``CI`` set to any non-empty value)."""
    return bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


def _binaries() -> tuple[ServerBinaries, ClientBinaries]:
    """Find (or, where allowed, build) the binaries; skip or fail as the rules say."""
    ci = in_ci()
    may_build = (ci or not os.environ.get("HEADROOM_NO_BUILD")) and go_available()
    try:
        server = find_server_binaries(build=False)
    except BinariesUnavailableError as missing:
        if not may_build:
            if ci:
                pytest.fail(f"control-plane binaries unavailable in CI: {missing}", pytrace=False)
            pytest.skip(f"no control-plane binaries: {HOW_TO_GET_BINARIES}")
        try:
            server = find_server_binaries(build=True)
        except BinariesUnavailableError as exc:
            # Go is here, so this is a real failure (in CI and out of it).
            pytest.fail(f"building control-plane binaries failed: {exc}", pytrace=False)
    try:
        client = extract_client_binaries()
    except BinariesUnavailableError as exc:
        if ci:
            pytest.fail(f"kubectl/helm unavailable in CI: {exc}", pytrace=False)
        pytest.skip(f"kubectl/helm unavailable: {exc}")
    return server, client


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A started control plane with the repository's CRDs installed (session-wide)."""
    server, client = _binaries()
    plane = ControlPlane(server, client)
    # A start failure raises (with the servers' log tails): an error, never a skip.
    plane.start()
    try:
        crds = plane.install_crds(CRDS_DIR)
        print(
            f"\ncontrol plane {plane.server} ready in {plane.timings['total']:.1f}s "
            f"({server.source}); CRDs installed: {', '.join(crds) or 'none'}",
            file=sys.stderr,
        )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def headroom_release(control_plane: ControlPlane) -> Iterator[Release]:
    """The Helm chart installed once (``helm install``, no ``--wait``: no kubelet runs pods)."""
    release = install(control_plane)
    try:
        yield release
    finally:
        uninstall(control_plane, release)
