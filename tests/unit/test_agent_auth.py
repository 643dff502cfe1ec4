"""The admin endpoint's TokenReview + SubjectAccessReview decision and its cache (fake clock)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from headroom.agent.auth import (
    Authorizer,
    Decision,
    DecisionCache,
    KubeReviewer,
    ReviewUnavailable,
    UserInfo,
    access_allowed,
    decide,
    user_from_token_review,
)
from headroom.kube.client import ApiError, ApiUnavailable

READER = {
    "authenticated": True,
    "user": {
        "username": "system:serviceaccount:ops:reader",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
    },
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeReviewer:
    """Tokens ``reader`` (allowed), ``nobody`` (refused); anything else is not a token."""

    def __init__(self) -> None:
        self.token_reviews: list[str] = []
        self.access_reviews: list[tuple[UserInfo, str]] = []
        self.down = False

    def review_token(self, token: str) -> Mapping[str, Any]:
        self.token_reviews.append(token)
        if self.down:
            raise ReviewUnavailable("connection refused")
        if token in ("reader", "nobody"):
            return {"authenticated": True, "user": {"username": token, "groups": ["g"]}}
        return {"authenticated": False, "error": "invalid bearer token"}

    def review_access(self, user: UserInfo, path: str) -> Mapping[str, Any]:
        self.access_reviews.append((user, path))
        return {"allowed": user.username == "reader" and path == "/system/resources"}


def test_user_from_token_review_passes_everything_a_subject_access_review_needs() -> None:
    user = user_from_token_review(READER)
    assert user == UserInfo(
        username="system:serviceaccount:ops:reader",
        uid="u-1",
        groups=("system:serviceaccounts", "system:authenticated"),
        extra={"authentication.kubernetes.io/pod-name": ("p",)},
    )


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize(
    "status",
    [
        {"authenticated": False, "error": "invalid"},
        {},
        {"authenticated": True, "user": {}},
        {"authenticated": "true", "user": {"username": "x"}},
    ],
)
def test_anything_but_an_authenticated_user_is_no_user(status: dict[str, Any]) -> None:
    assert user_from_token_review(status) is None


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        ({"allowed": True}, True),
        ({"allowed": False}, False),
        ({"allowed": True, "denied": True}, False),
        ({"allowed": False, "evaluationError": "webhook down"}, False),
        ({}, False),
    ],
)
def test_only_an_explicit_allow_allows(status: dict[str, Any], allowed: bool) -> None:
    assert access_allowed(status) is allowed


@pytest.mark.requirement("SR-003")
def test_decide_maps_reviews_to_status_codes() -> None:
    reviewer = FakeReviewer()
    assert decide(reviewer, "reader", "/system/resources") is Decision.ALLOWED
    assert decide(reviewer, "reader", "/metrics") is Decision.FORBIDDEN
    assert decide(reviewer, "nobody", "/system/resources") is Decision.FORBIDDEN
    assert decide(reviewer, "forged", "/system/resources") is Decision.UNAUTHENTICATED
    assert [path for _, path in reviewer.access_reviews] == [
        "/system/resources",
        "/metrics",
        "/system/resources",
    ], "an unauthenticated token is never authorised"
    reviewer.down = True
    assert decide(reviewer, "reader", "/system/resources") is Decision.UNAVAILABLE


def test_allow_is_cached_for_10_seconds_per_token_and_path() -> None:
    clock, reviewer = FakeClock(), FakeReviewer()
    authorizer = Authorizer(reviewer, DecisionCache(clock))
    for _ in range(5):
        assert authorizer.authorize("reader", "/system/resources") is Decision.ALLOWED
    assert len(reviewer.token_reviews) == 1
    authorizer.authorize("reader", "/metrics")  # another path: its own decision
    assert len(reviewer.token_reviews) == 2
    clock.now += 9.9
    authorizer.authorize("reader", "/system/resources")
    assert len(reviewer.token_reviews) == 2
    clock.now += 0.1
    authorizer.authorize("reader", "/system/resources")
    assert len(reviewer.token_reviews) == 3


@pytest.mark.parametrize(
    ("token", "decision"), [("nobody", Decision.FORBIDDEN), ("x", Decision.UNAUTHENTICATED)]
)
def test_refusals_are_cached_for_5_seconds(token: str, decision: Decision) -> None:
    clock, reviewer = FakeClock(), FakeReviewer()
    authorizer = Authorizer(reviewer, DecisionCache(clock))
    assert authorizer.authorize(token, "/system/resources") is decision
    clock.now += 4.9
    assert authorizer.authorize(token, "/system/resources") is decision
    assert len(reviewer.token_reviews) == 1
    clock.now += 0.1
    authorizer.authorize(token, "/system/resources")
    assert len(reviewer.token_reviews) == 2


@pytest.mark.requirement("SR-003")
def test_unavailable_is_never_cached_and_never_allows() -> None:
    clock, reviewer = FakeClock(), FakeReviewer()
    authorizer = Authorizer(reviewer, DecisionCache(clock))
    reviewer.down = True
    assert authorizer.authorize("reader", "/system/resources") is Decision.UNAVAILABLE
    reviewer.down = False
    assert authorizer.authorize("reader", "/system/resources") is Decision.ALLOWED


def test_cache_is_bounded_dropping_expired_then_oldest_and_keeps_no_token() -> None:
    clock = FakeClock()
    cache = DecisionCache(clock, max_entries=3)
    cache.put("t-old", "/p", Decision.FORBIDDEN)  # expires after 5 s
    clock.now += 1
    cache.put("t1", "/p", Decision.ALLOWED)
    cache.put("t2", "/p", Decision.ALLOWED)
    clock.now += 5  # t-old expired
    cache.put("t3", "/p", Decision.ALLOWED)
    assert len(cache) == 3
    assert [cache.get(t, "/p") for t in ("t1", "t2", "t3")] == [Decision.ALLOWED] * 3
    cache.put("t4", "/p", Decision.ALLOWED)  # full of live entries: the oldest goes
    assert len(cache) == 3
    assert cache.get("t1", "/p") is None
    assert cache.get("t4", "/p") is Decision.ALLOWED
    assert all("t4" not in hashed for hashed, _ in cache._entries)


class RecordingClient:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((path, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_kube_reviewer_sends_the_reviewed_user_with_the_non_resource_url() -> None:
    client = RecordingClient({"status": {"allowed": True}})
    reviewer = KubeReviewer(client)  # type: ignore[arg-type]
    user = user_from_token_review(READER)
    assert user is not None
    assert reviewer.review_access(user, "/metrics") == {"allowed": True}
    path, body = client.sent[0]
    assert path == "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    assert body["spec"] == {
        "user": "system:serviceaccount:ops:reader",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }
    reviewer.review_token("tok")
    assert client.sent[1] == (
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "tok"}},
    )


@pytest.mark.requirement("SR-003")
@pytest.mark.parametrize(
    "error",
    [
        ApiUnavailable("refused"),
        ApiError(403, "Forbidden", "cannot create tokenreviews"),
        OSError("no token file"),
    ],
)
def test_kube_reviewer_failures_are_unavailable(error: Exception) -> None:
    reviewer = KubeReviewer(RecordingClient(error))  # type: ignore[arg-type]
    with pytest.raises(ReviewUnavailable):
        reviewer.review_token("tok")
