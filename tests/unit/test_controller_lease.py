"""Leader election: the pure decision, and the elector against a fake Lease API."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from headroom.controller.lease import LeaseElector, LeaseView, decide
from headroom.kube.client import ApiError

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.requirement("CT-004")
def test_decide() -> None:
    held = LeaseView(holder="a", renewed_at=NOW, duration_seconds=15)
    assert decide(held, "a", NOW)  # mine: renew
    assert not decide(held, "b", NOW + timedelta(seconds=14))  # someone else's, still valid
    assert decide(held, "b", NOW + timedelta(seconds=15))  # expired
    assert decide(LeaseView(None, None, 15), "b", NOW)  # released


class FakeLeases:
    """One Lease object with resourceVersion checks, like the API server."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def get(self, path: str) -> dict[str, Any]:
        if self.down:
            raise ApiError(503, "Unavailable", "down")
        if self.body is None:
            raise ApiError(404, "NotFound", path)
        return copy.deepcopy(self.body)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.body is not None:
            raise ApiError(409, "AlreadyExists", path)
        self.version += 1
        self.body = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return copy.deepcopy(self.body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise ApiError(503, "Unavailable", "down")
        assert self.body is not None
        if body["metadata"]["resourceVersion"] != self.body["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", path)
        self.version += 1
        self.body = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return copy.deepcopy(self.body)


def elector(api: FakeLeases, identity: str) -> LeaseElector:
    return LeaseElector(api, "ns", "lease", identity, duration_seconds=15)  # type: ignore[arg-type]


@pytest.mark.requirement("CT-004")
def test_one_leader_among_two_then_failover_after_expiry() -> None:
    api = FakeLeases()
    a, b = elector(api, "a"), elector(api, "b")
    assert a.try_acquire_or_renew(NOW)
    assert not b.try_acquire_or_renew(NOW + timedelta(seconds=1))
    assert a.try_acquire_or_renew(NOW + timedelta(seconds=5))  # renewal
    # a stops renewing (crashed); b takes over once the lease expired
    assert not b.try_acquire_or_renew(NOW + timedelta(seconds=19))
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=21))
    assert api.body is not None and api.body["spec"]["leaseTransitions"] == 1
    # a comes back and sees b holding it
    assert not a.try_acquire_or_renew(NOW + timedelta(seconds=22))


@pytest.mark.requirement("CT-004")
def test_release_hands_over_at_once() -> None:
    api = FakeLeases()
    a, b = elector(api, "a"), elector(api, "b")
    a.try_acquire_or_renew(NOW)
    a.release()
    assert not a.is_leader
    assert b.try_acquire_or_renew(NOW + timedelta(seconds=1))


@pytest.mark.requirement("CT-004")
def test_leader_steps_down_before_its_lease_could_expire_for_others() -> None:
    api = FakeLeases()
    a = elector(api, "a")
    a.try_acquire_or_renew(NOW)
    api.down = True
    assert a.try_acquire_or_renew(NOW + timedelta(seconds=5))  # still inside 2/3 of 15 s
    assert not a.try_acquire_or_renew(NOW + timedelta(seconds=11))  # stepped down
