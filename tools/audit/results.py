"""A pytest plugin that records every test's outcome and requirement IDs as JSON.

Loaded by ``tests/conftest.py`` on every run; writes ``build/test-results.json`` (or the
path in ``HEADROOM_TEST_RESULTS``). The audit reads it; parsing junit XML would lose the
markers. A test's outcome folds its setup, call and teardown: ``failed`` if any phase
failed, else ``passed`` if the call passed, else ``skipped``; a collected test without a
report (``-x`` stopped the run first) is ``not run``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RESULTS_ENV", "RESULTS_FILE", "ResultRecorder", "load_results"]

RESULTS_FILE = "build/test-results.json"
RESULTS_ENV = "HEADROOM_TEST_RESULTS"
FORMAT = 1

_RANK = {"not run": 0, "skipped": 1, "passed": 2, "failed": 3}


def _requirements(item: pytest.Item) -> tuple[str, ...]:
    ids: set[str] = set()
    for mark in item.iter_markers("requirement"):
        ids.update(str(arg) for arg in mark.args)
    return tuple(sorted(ids))


class ResultRecorder:
    """Collects one session's items and outcomes and writes them when it finishes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = datetime.now(UTC)
        self.items: dict[str, tuple[str, ...]] = {}
        self.outcomes: dict[str, str] = {}
        self.durations: dict[str, float] = {}
        self.deselected = 0

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = {item.nodeid: _requirements(item) for item in session.items}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            outcome = "failed"
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            outcome = "not run"
        if _RANK[outcome] > _RANK[self.outcomes.get(report.nodeid, "not run")]:
            self.outcomes[report.nodeid] = outcome
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration

    def full_run(self) -> bool:
        """The whole suite as configured: testpaths, no -k/-m, nothing deselected."""
        option = self.config.option
        return (
            self.config.args_source is pytest.Config.ArgsSource.TESTPATHS
            and not getattr(option, "keyword", "")
            and not getattr(option, "markexpr", "")
            and self.deselected == 0
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        tests = [
            {
                "nodeid": nodeid,
                "outcome": self.outcomes.get(nodeid, "not run"),
                "requirements": list(ids),
                "duration": round(self.durations.get(nodeid, 0.0), 3),
            }
            for nodeid, ids in self.items.items()
        ]
        document: dict[str, Any] = {
            "format": FORMAT,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "exitstatus": int(exitstatus),
            "full_run": self.full_run(),
            "args": list(self.config.invocation_params.args),
            "python": sys.version.split()[0],
            "ci": bool(os.environ.get("CI")),
            "tests": tests,
        }
        path = Path(os.environ.get(RESULTS_ENV) or self.config.rootpath / RESULTS_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ResultRecorder(config), "headroom-test-results")


def load_results(path: Path) -> dict[str, Any]:
    """The recorded run; a clear error when there is none or it is of another format."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no test results; run `uv run pytest` first")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: format {document.get('format')!r}, expected {FORMAT}")
    return document
