"""Who may read the agent's admin endpoint: the cluster's RBAC decides.

The caller sends ``Authorization: Bearer <token>``. The agent asks the API
server who that is (a TokenReview) and whether that user may ``get`` the
non-resource URL (a SubjectAccessReview with the reviewed user's name, uid,
groups and extra), the way the kubelet and kube-rbac-proxy guard their
endpoints. So a ClusterRole rule ``nonResourceURLs: ["/system/resources"],
verbs: ["get"]`` bound to a subject is what grants access, and nothing is
exposed anonymously (REQUIREMENTS: the admin endpoint requires authentication).

Decisions are cached briefly, keyed by a hash of the token and the path, so a
scraper polling every few seconds costs the API server two reviews per TTL,
not per request: allowed for 10 s, refused for 5 s, at most 1,024 entries.
When a review cannot be made the answer is ``UNAVAILABLE`` and is not cached:
the endpoint never fails open.

The decision and the cache are pure (the reviewer and the clock come in), so
they are tested without a server; :class:`KubeReviewer` is the thin shell over
the agent's own :class:`~headroom.kube.client.KubeClient`.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from headroom.kube.client import ApiError, KubeClient

__all__ = [
    "AccessReviewer",
    "Authorizer",
    "Decision",
    "DecisionCache",
    "KubeReviewer",
    "ReviewUnavailable",
    "UserInfo",
    "access_allowed",
    "decide",
    "user_from_token_review",
]

log = logging.getLogger(__name__)

ALLOW_TTL_SECONDS = 10.0
DENY_TTL_SECONDS = 5.0
MAX_CACHE_ENTRIES = 1024


class Decision(enum.Enum):
    """The outcome of one request's check; the value is the HTTP status it maps to."""

    ALLOWED = 200
    UNAUTHENTICATED = 401
    FORBIDDEN = 403
    UNAVAILABLE = 503


class ReviewUnavailable(Exception):
    """A review could not be made (API server away, or the agent may not review)."""


@dataclass(frozen=True)
class UserInfo:
    """The user a TokenReview found, as a SubjectAccessReview wants it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class AccessReviewer(Protocol):
    """The two questions asked of the API server; each returns the review's ``status``."""

    def review_token(self, token: str) -> Mapping[str, Any]:
        """TokenReview ``status`` for ``token``; raise ReviewUnavailable when it failed."""
        ...

    def review_access(self, user: UserInfo, path: str) -> Mapping[str, Any]:
        """SubjectAccessReview ``status`` for ``get`` on ``path``; raise ReviewUnavailable."""
        ...


def user_from_token_review(status: Mapping[str, Any]) -> UserInfo | None:
    """The authenticated user, or ``None`` when the token was not accepted."""
    user = status.get("user") or {}
    if status.get("authenticated") is not True or not user.get("username"):
        return None
    extra = {
        str(k): tuple(str(v) for v in values) for k, values in (user.get("extra") or {}).items()
    }
    return UserInfo(
        username=str(user["username"]),
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=extra,
    )


def access_allowed(status: Mapping[str, Any]) -> bool:
    """Only an explicit ``allowed: true`` (and no ``denied``) allows."""
    return status.get("allowed") is True and status.get("denied") is not True


def decide(reviewer: AccessReviewer, token: str, path: str) -> Decision:
    """Authenticate ``token``, then authorise ``get`` on ``path``; never fails open."""
    try:
        user = user_from_token_review(reviewer.review_token(token))
        if user is None:
            return Decision.UNAUTHENTICATED
        allowed = access_allowed(reviewer.review_access(user, path))
    except ReviewUnavailable as error:
        log.warning("cannot review access to %s: %s", path, error)
        return Decision.UNAVAILABLE
    if not allowed:
        log.info("refused %s to %s", path, user.username)
        return Decision.FORBIDDEN
    return Decision.ALLOWED


class DecisionCache:
    """Recent decisions by (token hash, path), with a TTL per outcome and a size bound."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        allow_ttl: float = ALLOW_TTL_SECONDS,
        deny_ttl: float = DENY_TTL_SECONDS,
        max_entries: int = MAX_CACHE_ENTRIES,
    ) -> None:
        self.clock = clock
        self.allow_ttl = allow_ttl
        self.deny_ttl = deny_ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(token: str, path: str) -> tuple[str, str]:
        """Tokens are never kept, only their SHA-256."""
        return hashlib.sha256(token.encode()).hexdigest(), path

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, path: str) -> Decision | None:
        """The cached decision, or ``None`` when absent or expired."""
        key = self.key(token, path)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, decision = entry
            if self.clock() >= expires_at:
                del self._entries[key]
                return None
            return decision

    def put(self, token: str, path: str, decision: Decision) -> None:
        """Remember a decision; ``UNAVAILABLE`` is not a decision and is never kept."""
        if decision is Decision.UNAVAILABLE:
            return
        now = self.clock()
        ttl = self.allow_ttl if decision is Decision.ALLOWED else self.deny_ttl
        key = self.key(token, path)
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self.max_entries:
                for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                    del self._entries[stale]
            while len(self._entries) >= self.max_entries:
                self._entries.popitem(last=False)
            self._entries[key] = (now + ttl, decision)


class Authorizer:
    """Decide a request from its bearer token and path, through the cache."""

    def __init__(self, reviewer: AccessReviewer, cache: DecisionCache | None = None) -> None:
        self.reviewer = reviewer
        self.cache = cache if cache is not None else DecisionCache()

    def authorize(self, token: str, path: str) -> Decision:
        """Blocking (it may ask the API server): call it off the event loop."""
        cached = self.cache.get(token, path)
        if cached is not None:
            return cached
        decision = decide(self.reviewer, token, path)
        self.cache.put(token, path, decision)
        return decision


class KubeReviewer:
    """TokenReview and SubjectAccessReview through the agent's own API client.

    The agent's identity needs ``create`` on ``tokenreviews`` and
    ``subjectaccessreviews`` (the built-in ClusterRole ``system:auth-delegator``).
    """

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def _create_status(self, path: str, body: dict[str, Any]) -> Mapping[str, Any]:
        try:
            answer = self.client.create(path, body)
        except (ApiError, OSError) as error:  # OSError: our own token file unreadable
            raise ReviewUnavailable(str(error)) from error
        status: Mapping[str, Any] = answer.get("status") or {}
        return status

    def review_token(self, token: str) -> Mapping[str, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        return self._create_status("/apis/authentication.k8s.io/v1/tokenreviews", body)

    def review_access(self, user: UserInfo, path: str) -> Mapping[str, Any]:
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": "get"},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        return self._create_status("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
