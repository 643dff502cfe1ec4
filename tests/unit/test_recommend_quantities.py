"""CT: Kubernetes quantities in and out, rounding to steps, what a pod asks for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from headroom.recommend.quantities import (
    format_cpu,
    format_memory,
    parse_cpu_cores,
    parse_memory_bytes,
    parse_quantity,
    pod_requests,
    round_up_cpu_cores,
    round_up_memory_bytes,
    sum_container_requests,
)

MI = 2**20
GI = 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250m", Decimal("0.25")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("0.1", Decimal("0.1")),
        (".5", Decimal("0.5")),
        ("1.", Decimal(1)),
        ("+3", Decimal(3)),
        ("-1", Decimal(-1)),
        ("100n", Decimal("1e-7")),
        ("100u", Decimal("1e-4")),
        ("1k", Decimal(1000)),
        ("500M", Decimal(500_000_000)),
        ("2G", Decimal(2 * 10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),  # E alone is exa ...
        ("1e3", Decimal(1000)),  # ... e/E with digits is an exponent
        ("1E3", Decimal(1000)),
        ("2.5e-3", Decimal("0.0025")),
        ("129e6", Decimal(129_000_000)),
        ("128974848", Decimal(128_974_848)),
        ("1Ki", Decimal(1024)),
        ("123Mi", Decimal(123 * MI)),  # 123 × 1048576 = 128974848
        ("1Gi", Decimal(GI)),
        ("1.5Gi", Decimal(1536 * MI)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        (2, Decimal(2)),
        (0.5, Decimal("0.5")),
    ],
)
def test_parse_quantity(text: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "abc",
        "1.2.3",
        "1KiB",
        "1gi",  # suffixes are case sensitive
        "1K",  # kilo is a lower-case k
        " 1",
        "1 Gi",
        "--1",
        "1e",
        "e3",
        "0x10",
        "1e9999",  # exponent beyond three digits
        "10E",  # 10¹⁹ is beyond int64
        "m",
        "Mi",
        "1mi",
        float("nan"),
        float("inf"),
        True,
        None,
        [1],
    ],
)
def test_garbage_is_a_clear_value_error(garbage: Any) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(garbage)


@pytest.mark.parametrize(
    ("text", "cores"),
    [("250m", 0.25), ("2", 2.0), ("1.5", 1.5), ("1500m", 1.5), ("100u", 0.0001), ("0", 0.0)],
)
def test_parse_cpu_cores(text: str, cores: float) -> None:
    assert parse_cpu_cores(text) == cores


@pytest.mark.parametrize(
    ("text", "memory"),
    [
        ("1Gi", 1_073_741_824),
        ("500M", 500_000_000),
        ("1e3", 1000),
        ("128974848", 128_974_848),
        ("129e6", 129_000_000),
        ("123Mi", 128_974_848),
        ("1k", 1000),
        ("1Ki", 1024),
        ("500m", 1),  # half a byte rounds up to a whole one, as the API server's Value()
        ("1.5Ki", 1536),
    ],
)
def test_parse_memory_bytes(text: str, memory: int) -> None:
    assert parse_memory_bytes(text) == memory


@pytest.mark.parametrize("parse", [parse_cpu_cores, parse_memory_bytes])
def test_negative_requests_are_refused(parse: Any) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse("-1")


@pytest.mark.parametrize(
    ("cores", "text"),
    [
        (0.25, "250m"),
        (1.0, "1"),
        (2.0, "2"),
        (1.5, "1500m"),  # the API server's canonical form: millicores, not "1.5"
        (0.0, "0"),
        (0.29, "290m"),  # 0.29 × 1000 = 290.00000000000006 in floats: noise is forgiven
        (0.0001, "1m"),  # below a millicore rounds up to one
        (0.2501, "251m"),
    ],
)
def test_format_cpu(cores: float, text: str) -> None:
    assert format_cpu(cores) == text


@pytest.mark.parametrize(
    ("memory", "text"),
    [
        (512 * MI, "512Mi"),
        (GI, "1Gi"),
        (1536 * MI, "1536Mi"),  # not a whole Gi: the largest exact unit
        (3 * 1024, "3Ki"),
        (1000, "1000"),
        (0, "0"),
        (2**40, "1Ti"),
        (1023.5, "1Ki"),  # a fractional byte rounds up: 1024 = 1Ki
        (1025, "1025"),
    ],
)
def test_format_memory(memory: int, text: str) -> None:
    assert format_memory(memory) == text


@pytest.mark.parametrize(
    ("cores", "rounded"),
    [
        (0.0, 0.0),
        (0.001, 0.01),  # 1m → 10m
        (0.01, 0.01),
        (0.207, 0.21),  # 207m → 210m (10m steps up to 1 core)
        (0.29, 0.29),  # float noise does not push 290m to 300m
        (0.991, 1.0),  # 991m → 1000m
        (1.0, 1.0),
        (1.001, 1.05),  # 1001m → 1050m (50m steps above 1 core)
        (1.05, 1.05),
        (2.26, 2.3),
        (63.99, 64.0),
    ],
)
def test_round_up_cpu(cores: float, rounded: float) -> None:
    assert round_up_cpu_cores(cores) == rounded


@pytest.mark.parametrize(
    ("memory", "rounded"),
    [
        (0, 0),
        (1, 16 * MI),
        (500 * MI, 512 * MI),  # 500 / 16 = 31.25 → 32 × 16Mi
        (512 * MI, 512 * MI),
        (GI - 1, GI),
        (GI, GI),
        (GI + 1, GI + 64 * MI),  # above 1Gi: 64Mi steps → 1088Mi
        (1.1 * GI, 1152 * MI),  # 1126.4Mi → 18 × 64Mi = 1152Mi
        (474.34 * MI, 480 * MI),  # 474.34 / 16 = 29.6 → 30 × 16Mi
    ],
)
def test_round_up_memory(memory: float, rounded: int) -> None:
    assert round_up_memory_bytes(memory) == rounded


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_rounding_refuses_nonsense(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_up_cpu_cores(bad)
    with pytest.raises(ValueError, match="finite"):
        round_up_memory_bytes(bad)


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests}, **extra}


@pytest.mark.parametrize(
    ("containers", "init", "expected"),
    [
        # one container
        ([container("250m", "512Mi")], [], (0.25, 512 * MI)),
        # two containers add up: 250m + 750m = 1; 512Mi + 1Gi = 1536Mi
        ([container("250m", "512Mi"), container("750m", "1Gi")], [], (1.0, 1536 * MI)),
        # nobody asks for memory: None, not 0
        ([container("100m")], [], (0.1, None)),
        ([{"name": "bare"}], [], (None, None)),
        ([], [], (None, None)),
        # a container without a request counts 0 beside one with
        ([container("100m", "64Mi"), {"name": "bare"}], [], (0.1, 64 * MI)),
        # init containers run before: max(sum regular = 300m, largest init = 1) = 1;
        # memory max(128Mi, 64Mi) = 128Mi
        (
            [container("100m", "64Mi"), container("200m", "64Mi")],
            [container("1", "64Mi"), container("500m", "32Mi")],
            (1.0, 128 * MI),
        ),
        # a sidecar (restartPolicy Always) keeps running: regular 300m + sidecar 100m = 400m;
        # the init after it needs 250m + 100m = 350m; max = 400m. Memory: 64 + 16 = 80Mi vs
        # 100 + 16 = 116Mi → 116Mi
        (
            [container("300m", "64Mi")],
            [container("100m", "16Mi", restartPolicy="Always"), container("250m", "100Mi")],
            (0.4, 116 * MI),
        ),
        # an init container before the sidecar does not carry it: max(300m + 100m, 350m) = 400m
        (
            [container("300m")],
            [container("350m"), container("100m", restartPolicy="Always")],
            (0.4, None),
        ),
        # only an init container names memory
        ([container("100m")], [container(memory="1Gi")], (0.1, GI)),
    ],
)
def test_sum_container_requests_like_the_scheduler(
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]],
    expected: tuple[float | None, int | None],
) -> None:
    cpu, memory = sum_container_requests(containers, init)
    assert (None if cpu is None else pytest.approx(cpu)) == expected[0]
    assert memory == expected[1]


def test_a_limit_stands_in_for_a_missing_request() -> None:
    # the API server defaults requests to limits when it creates the pod
    limited = {"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}
    assert sum_container_requests([limited]) == (2.0, GI)
    both = {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}}
    assert sum_container_requests([both]) == (1.0, GI)


def test_a_bad_quantity_in_a_container_raises() -> None:
    with pytest.raises(ValueError, match="quantity"):
        sum_container_requests([container("lots")])


def test_pod_requests_adds_the_overhead() -> None:
    spec = {
        "containers": [container("250m", "512Mi")],
        "initContainers": [container("1", "64Mi")],
        "overhead": {"cpu": "100m", "memory": "16Mi"},
    }
    # max(250m, 1) + 100m = 1100m; max(512Mi, 64Mi) + 16Mi = 528Mi
    cpu, memory = pod_requests(spec)
    assert cpu == pytest.approx(1.1) and memory == 528 * MI
    assert pod_requests({"containers": [{"name": "bare"}]}) == (None, None)


@pytest.mark.requirement("FR-007")
def test_pod_level_resources_stand_for_the_whole_pod() -> None:
    # PodLevelResources: 1 CPU / 2Gi at pod level, nothing per container
    spec = {"containers": [{"name": "app"}, {"name": "proxy"}]}
    spec["resources"] = {"requests": {"cpu": "1", "memory": "2Gi"}}
    assert pod_requests(spec) == (1.0, 2 * GI)


def test_a_pod_level_figure_replaces_the_containers_sum_only_for_its_resource() -> None:
    spec = {
        "containers": [container("250m", "512Mi"), container("250m", "256Mi")],
        "resources": {"limits": {"memory": "1Gi"}},  # the request defaults to the limit
        "overhead": {"cpu": "100m", "memory": "16Mi"},
    }
    # CPU: containers 500m + overhead 100m; memory: pod level 1Gi + overhead 16Mi
    cpu, memory = pod_requests(spec)
    assert cpu == pytest.approx(0.6) and memory == GI + 16 * MI
