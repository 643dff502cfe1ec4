"""The node tier: the real control plane plus a real kubelet, kube-scheduler, containerd,
runc and CNI bridge on this machine; the chart installed with ``helm install`` and the
image built from the Dockerfile; real pods.

Every test in this directory gets the ``node`` marker. It needs root on Linux (cgroups,
network, mount namespaces), nftables and the binaries of tests/node/build-node.sh.
With ``CI`` set, anything missing is a failure, never a skip; outside CI the binaries
are built when Go is there (``HEADROOM_NO_BUILD=1`` skips instead), and the tier skips
with one line saying why when it cannot run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.controlplane.binaries import (
    BinariesUnavailableError,
    extract_client_binaries,
    find_server_binaries,
    go_available,
)
from tests.controlplane.cluster import ControlPlane
from tests.node.node import (
    Images,
    Node,
    build_images,
    node_bin_dir,
    node_control_plane,
    routable_ipv4,
)

NODE_TIER_DIR = Path(__file__).resolve().parent
REPO_ROOT = NODE_TIER_DIR.parents[1]


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(NODE_TIER_DIR):
            item.add_marker(pytest.mark.node)


def _cannot(reason: str) -> None:
    if in_ci():
        pytest.fail(f"node tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"node tier: {reason}")


def _prerequisites() -> None:
    if sys.platform != "linux":
        _cannot("needs Linux")
    if os.geteuid() != 0:
        _cannot("needs root (cgroups, network and mount namespaces)")
    for tool in ("unshare", "nsenter", "nft", "ip", "tar"):
        if shutil.which(tool) is None:
            _cannot(f"`{tool}` is not installed (apt-get install util-linux nftables iproute2)")


@pytest.fixture(scope="session")
def node_bins() -> Path:
    _prerequisites()
    may_build = (in_ci() or not os.environ.get("HEADROOM_NO_BUILD")) and go_available()
    try:
        return node_bin_dir(build=False)
    except BinariesUnavailableError as missing:
        if not may_build:
            _cannot(f"{missing}: run tests/node/build-node.sh")
    try:
        return node_bin_dir(build=True)
    except BinariesUnavailableError as exc:
        pytest.fail(f"building the node binaries failed: {exc}", pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def node_images(node_bins: Path) -> Images:
    """The image from the Dockerfile (buildkit, warm from its cache) and the bases."""
    images = build_images()
    print(f"\nimages built/found in {images.build_seconds:.1f}s", file=sys.stderr)
    return images


@pytest.fixture(scope="session")
def node_plane(node_bins: Path) -> Iterator[ControlPlane]:
    """A control plane that a kubelet and pods can reach (not the integration tier's)."""
    try:
        server = find_server_binaries(build=False)
        client = extract_client_binaries()
    except BinariesUnavailableError as exc:
        _cannot(f"{exc}")
        raise
    with node_control_plane(server, client, routable_ipv4()) as plane:
        yield plane


@pytest.fixture(scope="session")
def node(node_plane: ControlPlane, node_bins: Path, node_images: Images) -> Iterator[Node]:
    t0 = time.monotonic()
    the_node = Node(node_plane, node_bins, node_images, routable_ipv4())
    the_node.start()
    print(
        f"\nnode {the_node.name} Ready in {time.monotonic() - t0:.1f}s: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in the_node.timings.items()),
        file=sys.stderr,
    )
    try:
        yield the_node
    finally:
        state = the_node.host_state
        the_node.stop()
        print(f"\nnode teardown undid: {the_node.teardown_report or 'nothing'}", file=sys.stderr)
        left: list[str] = []
        if state is not None:
            # A veth goes when its network namespace does, a moment after the last process.
            deadline = time.monotonic() + 15
            while (left := state.differences()) and time.monotonic() < deadline:
                time.sleep(0.5)
        if left:
            pytest.fail(f"the node left the machine changed: {left}", pytrace=False)
