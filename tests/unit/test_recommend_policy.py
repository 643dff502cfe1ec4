"""CT: sizing defaults and per-Deployment annotation overrides; bad values never raise."""

from __future__ import annotations

from typing import Any

import pytest

from headroom.api.capacityrecommendation import SizingPolicy
from headroom.recommend.policy import (
    ANNOTATION_KEYS,
    CPU_MARGIN,
    MAX_REPLICAS,
    MEMORY_MARGIN,
    MIN_REPLICAS,
    TARGET_UTILIZATION,
    SizingDefaults,
    policy_from_annotations,
)

DEFAULTS = SizingDefaults()


def test_the_exact_keys() -> None:
    assert ANNOTATION_KEYS == (
        "headroom.dev/target-utilization",
        "headroom.dev/cpu-margin",
        "headroom.dev/memory-margin",
        "headroom.dev/min-replicas",
        "headroom.dev/max-replicas",
    )


def test_no_annotations_give_the_defaults() -> None:
    for given in (None, {}, {"unrelated": "x", "headroom.dev/expert": "true"}):
        policy, problems = policy_from_annotations(DEFAULTS, given)
        assert policy == DEFAULTS.policy()
        assert problems == []
    assert DEFAULTS.policy() == SizingPolicy(
        targetUtilizationPercent=70,
        cpuMarginPercent=15,
        memoryMarginPercent=15,
        minReplicas=1,
        maxReplicas=100,
    )


@pytest.mark.requirement("CT-001")
def test_good_overrides_apply() -> None:
    policy, problems = policy_from_annotations(
        DEFAULTS,
        {
            TARGET_UTILIZATION: "60%",
            CPU_MARGIN: "20",
            MEMORY_MARGIN: " 12.5 ",
            MIN_REPLICAS: "2",
            MAX_REPLICAS: "8",
        },
    )
    assert problems == []
    assert policy == SizingPolicy(
        targetUtilizationPercent=60,
        cpuMarginPercent=20,
        memoryMarginPercent=12.5,
        minReplicas=2,
        maxReplicas=8,
    )


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        (TARGET_UTILIZATION, "100", "targetUtilizationPercent", 100.0),
        (TARGET_UTILIZATION, "0.5", "targetUtilizationPercent", 0.5),
        (CPU_MARGIN, "0", "cpuMarginPercent", 0.0),
        (MEMORY_MARGIN, "1000", "memoryMarginPercent", 1000.0),
        (MIN_REPLICAS, "100", "minReplicas", 100),
        (MAX_REPLICAS, "1", "maxReplicas", 1),
    ],
)
def test_edge_values_are_accepted(key: str, value: str, field: str, expected: Any) -> None:
    policy, problems = policy_from_annotations(DEFAULTS, {key: value})
    assert problems == []
    assert getattr(policy, field) == expected


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("key", "value", "field", "default"),
    [
        (TARGET_UTILIZATION, "0", "targetUtilizationPercent", 70.0),
        (TARGET_UTILIZATION, "101", "targetUtilizationPercent", 70.0),
        (TARGET_UTILIZATION, "seventy", "targetUtilizationPercent", 70.0),
        (TARGET_UTILIZATION, "nan", "targetUtilizationPercent", 70.0),
        (TARGET_UTILIZATION, "", "targetUtilizationPercent", 70.0),
        (TARGET_UTILIZATION, "7_0", "targetUtilizationPercent", 70.0),  # float() would say 70
        (TARGET_UTILIZATION, "５０", "targetUtilizationPercent", 70.0),  # and 50
        (TARGET_UTILIZATION, "5e1", "targetUtilizationPercent", 70.0),
        (CPU_MARGIN, "-5", "cpuMarginPercent", 15.0),
        (CPU_MARGIN, "inf", "cpuMarginPercent", 15.0),
        (MEMORY_MARGIN, "1001", "memoryMarginPercent", 15.0),
        (MEMORY_MARGIN, "15%%", "memoryMarginPercent", 15.0),
        (MIN_REPLICAS, "0", "minReplicas", 1),
        (MIN_REPLICAS, "2.5", "minReplicas", 1),
        (MIN_REPLICAS, "-1", "minReplicas", 1),
        (MAX_REPLICAS, "ten", "maxReplicas", 100),
        (MAX_REPLICAS, "１０", "maxReplicas", 100),  # full-width digits are not ASCII digits
    ],
)
def test_bad_values_are_problems_and_use_the_default(
    key: str, value: str, field: str, default: Any
) -> None:
    policy, problems = policy_from_annotations(DEFAULTS, {key: value})
    assert getattr(policy, field) == default
    assert len(problems) == 1
    assert key in problems[0] and repr(value) in problems[0] and "default" in problems[0]


def test_one_bad_value_leaves_the_good_ones() -> None:
    policy, problems = policy_from_annotations(
        DEFAULTS, {TARGET_UTILIZATION: "lots", CPU_MARGIN: "30"}
    )
    assert policy.targetUtilizationPercent == 70 and policy.cpuMarginPercent == 30
    assert len(problems) == 1


@pytest.mark.parametrize(
    "annotations",
    [
        {MIN_REPLICAS: "5", MAX_REPLICAS: "3"},
        {MIN_REPLICAS: "150"},  # above the default maximum of 100
        {MAX_REPLICAS: "0"},  # bad on its own: reported once, the default used
    ],
)
def test_min_above_max_reverts_both_to_the_defaults(annotations: dict[str, str]) -> None:
    policy, problems = policy_from_annotations(DEFAULTS, annotations)
    assert (policy.minReplicas, policy.maxReplicas) == (1, 100)
    assert len(problems) == 1


def test_min_above_max_names_both() -> None:
    _, problems = policy_from_annotations(DEFAULTS, {MIN_REPLICAS: "5", MAX_REPLICAS: "3"})
    assert problems == [
        "headroom.dev/min-replicas 5 is above headroom.dev/max-replicas 3; using the defaults 1–100"
    ]


def test_a_likely_typo_is_reported() -> None:
    policy, problems = policy_from_annotations(
        DEFAULTS, {"headroom.dev/target-utilisation": "50", "headroom.dev/max-replica": "4"}
    )
    assert policy == DEFAULTS.policy()
    assert problems == [
        "unknown annotation headroom.dev/max-replica ignored: "
        "did you mean headroom.dev/max-replicas?",
        "unknown annotation headroom.dev/target-utilisation ignored: "
        "did you mean headroom.dev/target-utilization?",
    ]


def test_the_policy_uses_the_given_defaults() -> None:
    defaults = SizingDefaults(target_utilization_percent=50, min_replicas=2, max_replicas=4)
    policy, problems = policy_from_annotations(defaults, {MAX_REPLICAS: "x"})
    assert (policy.targetUtilizationPercent, policy.minReplicas, policy.maxReplicas) == (50, 2, 4)
    assert "using the default 4" in problems[0]


@pytest.mark.requirement("CT-006")
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_utilization_percent": 0}, "target utilisation"),
        ({"cpu_percentile": 101}, "CPU percentile"),
        ({"memory_margin_percent": -1}, "memory margin"),
        ({"min_replicas": 5, "max_replicas": 4}, "replicas"),
        ({"min_replicas": 0}, "replicas"),
        ({"min_cpu_cores": 2.0, "max_cpu_cores": 1.0}, "CPU bounds"),
        ({"min_memory_bytes": 0}, "memory bounds"),
        ({"window_seconds": 0}, "window"),
    ],
)
def test_bad_defaults_fail_at_start(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SizingDefaults(**changes)
