"""429 answers: the kube client waits as long as ``Retry-After`` says, then gives up (fake clock)."""

from __future__ import annotations

import json

import pytest

from headroom.kube.client import ApiError, KubeClient, retry_after_seconds
from headroom.kube.config import KubeConfig


class ScriptedClient(KubeClient):
    """The real request logic over a scripted transport; sleeping advances a fake clock."""

    def __init__(self, answers: list[tuple[int, str | None]], **options: object) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.sent_at: list[float] = []

        def sleep(seconds: float) -> None:
            self.pauses.append(seconds)
            self.now += seconds

        super().__init__(
            KubeConfig(server="https://127.0.0.1:6443", token="t"),
            sleep=sleep,
            **options,  # type: ignore[arg-type]
        )
        self.answers = answers

    def _send_once(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes, str | None, str]:
        self.sent_at.append(self.now)
        status, retry_after = self.answers.pop(0)
        body = {"reason": "TooManyRequests" if status == 429 else "OK", "message": "m"}
        return status, "", json.dumps(body).encode(), retry_after, "application/json"


@pytest.mark.requirement("AG-002", "CT-006")
def test_a_429_is_sent_again_after_the_servers_retry_after() -> None:
    client = ScriptedClient([(429, "3"), (429, "1"), (200, None)])
    assert client.request("PUT", "/x", {"a": 1}) == {"reason": "OK", "message": "m"}
    assert client.sent_at == [0.0, 3.0, 4.0]  # never earlier than asked
    assert client.throttled == 2


@pytest.mark.requirement("AG-002", "CT-006")
def test_persistent_throttling_reaches_the_caller_with_the_pause_asked_for() -> None:
    client = ScriptedClient([(429, "2")] * 4, throttle_retries=3)
    with pytest.raises(ApiError) as raised:
        client.request("GET", "/x")
    assert raised.value.status == 429 and raised.value.retry_after == 2.0
    assert len(client.sent_at) == 4  # one try and three retries, no more
    assert client.pauses == [2.0, 2.0, 2.0]


@pytest.mark.requirement("AG-002")
def test_other_errors_are_not_retried_here() -> None:
    for status in (409, 500, 503):
        client = ScriptedClient([(status, "5"), (200, None)])
        with pytest.raises(ApiError) as raised:
            client.request("PUT", "/x", {})
        assert raised.value.status == status and raised.value.retry_after is None
        assert client.pauses == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        ("7", 7.0),
        (None, 1.0),
        ("0", 0.1),
        ("-4", 0.1),
        ("3600", 10.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),
        ("nan", 1.0),
        ("0.5", 0.5),
    ],
)
@pytest.mark.requirement("AG-002")
def test_retry_after_is_clamped_to_sane_bounds(header: str | None, seconds: float) -> None:
    assert retry_after_seconds(header) == seconds
