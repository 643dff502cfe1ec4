"""The first request after the real API server closed an idle connection succeeds.

kube-apiserver closes a keep-alive connection after 90 s without a request (its
secure serving's idle timeout; no flag shortens it), so this test idles 95 s once.
Before the fix the agent's first review after such a pause failed and the
endpoint answered 503 "cannot review the request now"; a scraper every 2 minutes
saw every scrape fail. The local-server tests (tests/unit/test_kube_idle.py) cover
the race and the resend rules in milliseconds.
"""

from __future__ import annotations

import time

import pytest

from headroom.agent.auth import Authorizer, Decision, DecisionCache, KubeReviewer
from headroom.kube.client import KubeClient
from headroom.kube.config import from_kubeconfig
from tests.controlplane.cluster import ControlPlane
from tests.integration.kube_helpers import unique

#: Longer than kube-apiserver's idle timeout (90 s).
IDLE_SECONDS = 95.0


@pytest.mark.requirement("SR-003", "AG-002")
def test_first_review_after_the_api_servers_idle_close_is_answered(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    namespace = unique("idle")
    cp.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    cp.api("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "r"}})
    token = cp.request_token(namespace, "r")
    client = KubeClient(from_kubeconfig(cp.kubeconfig), timeout=5.0)
    # No cache: every call asks the API server, as the first request after a TTL does.
    authorizer = Authorizer(KubeReviewer(client), DecisionCache(allow_ttl=0, deny_ttl=0))
    try:
        assert authorizer.authorize(token, "/metrics") is Decision.FORBIDDEN  # reviewed: 2 calls
        assert (client.reconnects, client.resent) == (0, 0)
        time.sleep(IDLE_SECONDS)
        assert authorizer.authorize(token, "/metrics") is Decision.FORBIDDEN  # not UNAVAILABLE
        # The server had closed the kept connection: the client saw it, or resent once.
        assert client.reconnects + client.resent == 1
        assert client.get("/version")["major"]
    finally:
        client.close()
        cp.api("DELETE", f"/api/v1/namespaces/{namespace}")
