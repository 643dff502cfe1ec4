"""Leader election with a ``coordination.k8s.io/v1`` Lease (the controller-runtime way).

kopf's own peering pauses every peer of equal priority, and has no Lease-based
election, so Headroom runs both replicas fully (watching, indexing, computing,
which keeps a standby warm) and lets only the Lease holder write. The decision
is pure (:func:`decide`); :class:`LeaseElector` does the I/O with optimistic
concurrency, so two candidates can never both believe they hold it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from headroom.kube.client import ApiError, KubeClient

__all__ = ["LeaseElector", "LeaseView", "decide"]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseView:
    """What matters in a Lease: who holds it and until when."""

    holder: str | None
    renewed_at: datetime | None
    duration_seconds: int

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> LeaseView:
        spec = body.get("spec") or {}
        renewed = spec.get("renewTime")
        return cls(
            holder=spec.get("holderIdentity") or None,
            renewed_at=datetime.fromisoformat(renewed.replace("Z", "+00:00")) if renewed else None,
            duration_seconds=int(spec.get("leaseDurationSeconds") or 15),
        )


def decide(view: LeaseView, me: str, now: datetime) -> bool:
    """Whether ``me`` may (re)take the lease now: it is mine, free or expired."""
    if view.holder in (None, me) or view.renewed_at is None:
        return True
    return now >= view.renewed_at + timedelta(seconds=view.duration_seconds)


class LeaseElector:
    """Acquire and renew one Lease; ``is_leader`` is what the writer consults."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration_seconds: int = 15,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration_seconds = duration_seconds
        self.is_leader = False
        self._last_renewal: datetime | None = None

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _spec(self, now: datetime, previous: dict[str, Any] | None) -> dict[str, Any]:
        """The spec we write; ``previous`` is None when creating the Lease.

        As in client-go, a transition is counted on every update that changes
        the holder (a released Lease has none), never on creation.
        """
        before = previous or {}
        taking_over = before.get("holderIdentity") != self.identity
        transitions = int(before.get("leaseTransitions") or 0)
        if previous is not None and taking_over:
            transitions += 1
        acquired = _format(now) if taking_over else before.get("acquireTime", _format(now))
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": acquired,
            "renewTime": _format(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self, now: datetime | None = None) -> bool:
        """One round of the election; returns whether we lead afterwards."""
        now = now or _now()
        try:
            body = self.client.get(self.path)
        except ApiError as error:
            if error.status != 404:
                return self._failed(now, error)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {},
            }
            try:
                self.client.create(
                    self.path.rsplit("/", 1)[0], {**body, "spec": self._spec(now, None)}
                )
            except ApiError as create_error:
                return self._failed(now, create_error)
            return self._won(now)
        if not decide(LeaseView.from_body(body), self.identity, now):
            if self.is_leader:
                log.warning("lost the lease to %s", body["spec"].get("holderIdentity"))
            self.is_leader = False
            return False
        body["spec"] = self._spec(now, body.get("spec") or {})
        try:
            self.client.replace(self.path, body)  # resourceVersion guards the race
        except ApiError as error:
            return self._failed(now, error)
        return self._won(now)

    def _won(self, now: datetime) -> bool:
        if not self.is_leader:
            log.info("%s now leads (lease %s/%s)", self.identity, self.namespace, self.name)
        self.is_leader = True
        self._last_renewal = now
        return True

    def _failed(self, now: datetime, error: ApiError) -> bool:
        """A failed round: keep leading only while our last renewal is still valid."""
        log.warning("lease round failed: %s", error)
        if self.is_leader and self._last_renewal is not None:
            # Step down before the lease can expire for others: never two writers.
            margin = timedelta(seconds=self.duration_seconds * 2 / 3)
            self.is_leader = now < self._last_renewal + margin
        else:
            self.is_leader = False
        return self.is_leader

    def release(self) -> None:
        """Give the lease up on shutdown so a standby takes over at once."""
        if not self.is_leader:
            return
        try:
            body = self.client.get(self.path)
            if (body.get("spec") or {}).get("holderIdentity") == self.identity:
                body["spec"]["holderIdentity"] = None
                body["spec"]["renewTime"] = None
                self.client.replace(self.path, body)
        except ApiError as error:
            log.warning("could not release the lease: %s", error)
        self.is_leader = False
