"""Expert selection by label selector, as kubectl -l writes it."""

from __future__ import annotations

import pytest

from headroom.controller.selector import LabelSelector, SelectorError


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("headroom.dev/expert=true", {"headroom.dev/expert": "true"}, True),
        ("headroom.dev/expert=true", {"headroom.dev/expert": "false"}, False),
        ("headroom.dev/expert==true", {"headroom.dev/expert": "true"}, True),
        ("tier!=batch", {}, True),
        ("tier!=batch", {"tier": "batch"}, False),
        ("tier in (gpu, cpu)", {"tier": "gpu"}, True),
        ("tier notin (gpu,cpu)", {"tier": "gpu"}, False),
        ("expert", {"expert": ""}, True),
        ("!legacy", {"legacy": "yes"}, False),
        ("a=1,b in (x,y),!c", {"a": "1", "b": "y"}, True),
    ],
)
def test_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["", "a=b=c", "in (x)", "a in x", "=value"])
def test_nonsense_is_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        LabelSelector.parse(bad)
