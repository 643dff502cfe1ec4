"""Every requirement ID has a test that names it, and every ID a test names exists.

The markers are read from the sources (tools/audit/markers.py), not from this run's
collection, so an ID whose only tests are skipped or deselected still counts as tested
here; whether those tests ran and passed is the audit's question (``make audit``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.audit.markers import find_marked_tests
from tools.audit.requirements import FIGURES, ID_PATTERN, read_requirements

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = read_requirements(ROOT / "docs" / "requirements.md")
MARKED = find_marked_tests(ROOT)


def test_the_document_lists_the_product_requirements() -> None:
    assert all(ID_PATTERN.match(identifier) for identifier in REQUIREMENTS)
    for family in ("FR", "PR", "HR", "SR", "AG", "CT", "PK", "SC"):
        assert any(i.startswith(family + "-") for i in REQUIREMENTS), family


def test_every_requirement_has_a_test() -> None:
    named = {identifier for mark in MARKED for identifier in mark.ids}
    untested = [identifier for identifier in REQUIREMENTS if identifier not in named]
    assert not untested, f"no test is marked @pytest.mark.requirement(...) for {untested}"


def test_every_marker_names_a_known_requirement() -> None:
    unknown = [
        f"{mark.node} (line {mark.line}): {identifier}"
        for mark in MARKED
        for identifier in mark.ids
        if identifier not in REQUIREMENTS
    ]
    assert not unknown, "not in docs/requirements.md: " + "; ".join(unknown)


@pytest.mark.parametrize("identifier", sorted(FIGURES))
def test_benchmark_figures_name_scripts_that_exist(identifier: str) -> None:
    assert identifier in REQUIREMENTS
    for script in FIGURES[identifier]:
        assert (ROOT / script).is_file(), script
