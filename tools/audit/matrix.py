"""The traceability matrix: requirement ID → the tests that name it → what they did."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tools.audit.markers import MarkedTest

__all__ = ["FAILING", "Matrix", "Row", "TestEvidence", "build_matrix"]

# A requirement's result, worst first.
NO_TEST, FAILED, NOT_RUN, PASSED = "no test", "failed", "not run", "passed"
FAILING = (NO_TEST, FAILED)

_PARAMETERS = re.compile(r"\[.*\]$")


@dataclass
class TestEvidence:
    """One test function, with the outcome of each of its cases (parametrisations)."""

    test: str
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def outcome(self) -> str:
        for outcome in ("failed", "passed", "skipped"):
            if self.outcomes[outcome]:
                return outcome
        return NOT_RUN

    def describe(self) -> str:
        cases = sum(self.outcomes.values())
        if cases <= 1:
            return self.outcome
        counts = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items()))
        return f"{self.outcome} ({cases} cases: {counts})"


@dataclass
class Row:
    id: str
    text: str
    tests: list[TestEvidence]
    figures: tuple[str, ...]

    @property
    def result(self) -> str:
        if not self.tests:
            return NO_TEST
        outcomes = {t.outcome for t in self.tests}
        if "failed" in outcomes:
            return FAILED
        return PASSED if "passed" in outcomes else NOT_RUN


@dataclass
class Matrix:
    rows: list[Row]
    unknown_ids: dict[str, list[str]]  # an ID no requirement has → the tests naming it
    run: dict[str, Any]

    def problems(self) -> list[str]:
        """What makes the audit fail; ``not run`` only counts after a full run."""
        fatal = list(FAILING) + ([NOT_RUN] if self.run.get("full_run") else [])
        found = [f"{row.id}: {row.result}" for row in self.rows if row.result in fatal]
        found += [
            f"{identifier}: unknown requirement ID, named by {', '.join(tests)}"
            for identifier, tests in sorted(self.unknown_ids.items())
        ]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "run": {k: v for k, v in self.run.items() if k != "tests"},
            "requirements": [
                {
                    "id": row.id,
                    "requirement": row.text,
                    "result": row.result,
                    "figures": list(row.figures),
                    "tests": [
                        {"test": t.test, "outcome": t.outcome, "cases": dict(t.outcomes)}
                        for t in row.tests
                    ],
                }
                for row in self.rows
            ],
            "unknown_ids": self.unknown_ids,
        }


def _function(nodeid: str) -> str:
    return _PARAMETERS.sub("", nodeid)


def build_matrix(
    requirements: dict[str, str],
    marked: list[MarkedTest],
    run: dict[str, Any],
    figures: dict[str, tuple[str, ...]],
) -> Matrix:
    """Join what the sources say (``marked``) with what the last run did (``run``).

    A test the sources mark but the run did not collect is listed as ``not run``; the IDs
    pytest saw on an item (markers inherited from classes and modules included) count too.
    """
    evidence: dict[str, dict[str, TestEvidence]] = {identifier: {} for identifier in requirements}
    unknown: dict[str, set[str]] = {}

    def add(identifier: str, test: str) -> TestEvidence:
        if identifier not in evidence:
            unknown.setdefault(identifier, set()).add(test)
            return TestEvidence(test)
        return evidence[identifier].setdefault(test, TestEvidence(test))

    ran: list[tuple[str, str, tuple[str, ...]]] = [
        (_function(t["nodeid"]), t["outcome"], tuple(t["requirements"])) for t in run["tests"]
    ]
    for test, outcome, ids in ran:
        for identifier in ids:
            add(identifier, test).outcomes[outcome] += 1
    for mark in marked:
        for identifier in mark.ids:
            seen = any(
                (test == mark.node or test.startswith(mark.node + "::")) and identifier in ids
                for test, _, ids in ran
            )
            if not seen:
                add(identifier, mark.node)
    rows = [
        Row(
            identifier,
            text,
            sorted(evidence[identifier].values(), key=lambda t: t.test),
            figures.get(identifier, ()),
        )
        for identifier, text in requirements.items()
    ]
    return Matrix(rows, {k: sorted(v) for k, v in unknown.items()}, run)
