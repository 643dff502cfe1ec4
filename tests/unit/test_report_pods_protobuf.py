"""Pods as protobuf: the same pages recorded from a real API server as protobuf and as JSON.

``tests/fixtures/pods-protobuf/`` (made by its ``capture.py``) holds six pods
over two pages of ``limit=4``: init containers with a sidecar, a RuntimeClass
overhead, limits without requests, odd quantities, no resources, an unbound
pod and a Succeeded one. Both encodings must fold into the same figures.

Worked by hand, node-a: ``plain`` 500m, 1Gi; ``init-and-sidecar`` CPU
max(100m + 300m + 0 + 250m sidecar, 2 + 250m) = 2.25, memory max(129e6 + 256Mi
+ 128Mi, 64Mi + 128Mi, 1e3) = 129,000,000 + 384Mi; ``finished`` not counted.
node-b: ``overhead`` 1 + 250m, 512Mi + 120Mi; ``best-effort`` nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.internal import api_implementation

from headroom.kube.client import ApiError, KubeClient
from headroom.kube.config import KubeConfig
from headroom.report.build import ReportBuilder
from headroom.report.fetch import list_pages
from headroom.report.pods_protobuf import PROTOBUF, decode_pod_page

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pods-protobuf"
MiB = 2**20
GiB = 2**30


def pages(suffix: str) -> list[bytes]:
    return [(FIXTURES / f"page-{n}.{suffix}").read_bytes() for n in (1, 2)]


def fold(items: list[dict[str, Any]]) -> dict[str, tuple[float, int, int]]:
    builder = ReportBuilder(now=datetime(2026, 11, 26, tzinfo=UTC))
    for node in ("node-a", "node-b"):
        builder.add_node({"metadata": {"name": node}, "status": {"allocatable": {"cpu": "4"}}})
    for item in items:
        builder.add_pod(item)
    return {
        n.name: (n.requestedCpuCores, n.requestedMemoryBytes, n.pods) for n in builder.build().nodes
    }


def json_items() -> list[dict[str, Any]]:
    return [item for page in pages("json") for item in json.loads(page)["items"]]


def protobuf_items() -> list[dict[str, Any]]:
    return [item for page in pages("pb") for item in decode_pod_page(page)[0]]


@pytest.mark.requirement("FR-007")
def test_the_protobuf_parser_is_upb() -> None:
    """The pure-Python parser would be slower than ``json.loads``: the point would be lost."""
    assert api_implementation.Type() == "upb"


@pytest.mark.requirement("FR-007")
def test_protobuf_pages_fold_into_the_json_pages_figures() -> None:
    expected = {
        "node-a": (2.75, GiB + 129_000_000 + 384 * MiB, 2),
        "node-b": (1.25, 632 * MiB, 2),
    }
    assert fold(json_items()) == expected
    assert fold(protobuf_items()) == expected


@pytest.mark.requirement("FR-007")
def test_protobuf_pods_have_the_json_shape_of_the_fields_read() -> None:
    by_name = {p["metadata"]["name"]: p for p in protobuf_items()}
    assert sorted(by_name) == sorted(p["metadata"]["name"] for p in json_items())
    for pod in json_items():
        got = by_name[pod["metadata"]["name"]]
        spec = pod["spec"]
        assert got["metadata"]["namespace"] == pod["metadata"]["namespace"] == "pods-fixture"
        assert got["spec"]["nodeName"] == spec.get("nodeName")
        assert got["status"]["phase"] == pod["status"].get("phase")
        assert got["spec"].get("overhead") == spec.get("overhead")
        for kind in ("containers", "initContainers"):
            assert [
                (c.get("resources"), c.get("restartPolicy")) for c in got["spec"].get(kind, [])
            ] == [(c["resources"], c.get("restartPolicy")) for c in spec.get(kind, [])]


@pytest.mark.requirement("FR-007")
def test_the_continue_token_is_read() -> None:
    first, last = pages("pb")
    assert decode_pod_page(first)[1] == json.loads(pages("json")[0])["metadata"]["continue"]
    assert len(decode_pod_page(first)[0]) == 4
    assert decode_pod_page(last)[1] == ""


@pytest.mark.requirement("FR-007")
@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b'{"kind": "PodList"}', "not a Kubernetes protobuf answer"),
        (b"k8s\x00\xff\xff\xff", "malformed protobuf PodList"),
        ((FIXTURES / "status-404.pb").read_bytes(), "PodList"),  # a Status
    ],
    ids=["json", "garbage", "status"],
)
def test_what_is_not_a_protobuf_pod_list_is_refused(body: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        decode_pod_page(body)


class PagedClient(KubeClient):
    """Answers each GET with the next recorded (content type, body); errors as the server's."""

    def __init__(self, answers: list[tuple[int, str, bytes]]) -> None:
        super().__init__(KubeConfig(server="https://127.0.0.1:6443", token="t"))
        self.answers = answers
        self.accepted: list[str] = []

    def _send_once(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str, bytes, str | None, str]:
        self.accepted.append(headers["Accept"])
        status, content_type, body = self.answers.pop(0)
        return status, "", body, None, content_type


@pytest.mark.requirement("FR-007")
def test_list_pages_reads_protobuf_and_falls_back_to_json_by_content_type() -> None:
    first_pb, _ = pages("pb")
    _, last_json = pages("json")
    client = PagedClient([(200, PROTOBUF, first_pb), (200, "application/json", last_json)])
    got = list(list_pages(client, "/api/v1/pods", decode_protobuf=decode_pod_page))
    assert [len(page) for page in got] == [4, 2]
    assert client.accepted == [f"{PROTOBUF}, application/json"] * 2
    assert fold([item for page in got for item in page]) == fold(json_items())


@pytest.mark.requirement("FR-007")
def test_a_protobuf_error_status_gives_its_reason_and_message() -> None:
    client = PagedClient([(404, PROTOBUF, (FIXTURES / "status-404.pb").read_bytes())])
    with pytest.raises(ApiError) as raised:
        client.get_encoded("/api/v1/namespaces/pods-fixture/pods/missing", PROTOBUF)
    error = raised.value
    assert (error.status, error.reason, error.message) == (
        404,
        "NotFound",
        'pods "missing" not found',
    )


@pytest.mark.requirement("FR-007")
def test_an_expired_protobuf_list_says_to_run_again() -> None:
    client = PagedClient([(410, PROTOBUF, b"k8s\x00\x12\x02\x1a\x00")])
    with pytest.raises(ApiError, match="run again") as raised:
        list(list_pages(client, "/api/v1/pods", decode_protobuf=decode_pod_page))
    assert raised.value.status == 410


@pytest.mark.requirement("FR-007")
def test_pod_level_resources_are_read_from_protobuf_pods() -> None:
    from headroom.report.pods_protobuf import _message_classes

    classes = _message_classes()
    envelope: Any = classes["Unknown"]()
    envelope.typeMeta.kind = "PodList"
    pod = envelope.raw.items.add()
    pod.metadata.name, pod.metadata.namespace = "pod-level", "default"
    pod.spec.nodeName = "node-a"
    pod.spec.containers.add().name = "app"
    pod.spec.resources.requests["cpu"].string = "1"
    pod.spec.resources.requests["memory"].string = "2Gi"
    pod.status.phase = "Running"

    (item,), _ = decode_pod_page(b"k8s\x00" + envelope.SerializeToString())

    assert item["spec"]["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
    assert fold([item])["node-a"] == (1.0, 2 * GiB, 1)
