"""The audit pack's own logic: markers in sources, the results plugin, the matrix verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tools.audit.lock import LockedPackage, LockFile
from tools.audit.markers import MarkedTest, find_marked_tests
from tools.audit.matrix import build_matrix
from tools.audit.sbom import _add_locked_hashes

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest

pytestmark = pytest.mark.requirement("SC-001")


@pytest.mark.requirement("FR-001", "FR-002")
def test_passes():
    pass


@pytest.mark.requirement("FR-002")
def test_fails():
    assert False


@pytest.mark.requirement("FR-003")
@pytest.mark.parametrize("n", [1, 2])
def test_skips(n):
    pytest.skip("not here")


class TestGroup:
    @pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.requirement("AG-001"))])
    def test_case(self, n):
        pass
"""


def write_sample(root: Path) -> None:
    (root / "tests").mkdir()
    (root / "tests" / "test_sample.py").write_text(textwrap.dedent(SAMPLE))


def test_markers_are_found_wherever_they_are_written(tmp_path: Path) -> None:
    write_sample(tmp_path)
    found = {(m.node, m.ids) for m in find_marked_tests(tmp_path)}
    file = "tests/test_sample.py"
    assert found == {
        (file, ("SC-001",)),
        (f"{file}::test_passes", ("FR-001", "FR-002")),
        (f"{file}::test_fails", ("FR-002",)),
        (f"{file}::test_skips", ("FR-003",)),
        (f"{file}::TestGroup::test_case", ("AG-001",)),
    }


def test_an_id_that_is_not_a_literal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\nID = 'FR-001'\n\n@pytest.mark.requirement(ID)\ndef test_x():\n    pass\n"
    )
    with pytest.raises(ValueError, match="string literals"):
        find_marked_tests(tmp_path)


def run_sample(tmp_path: Path, *args: str) -> dict[str, Any]:
    write_sample(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nmarkers = ["requirement(*ids): x"]\n'
    )
    results = tmp_path / "out" / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEADROOM_TEST_RESULTS": str(results)}
    env.pop("CI", None)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tools.audit.results",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(results.read_text())
    return document


def test_the_plugin_records_outcomes_and_ids_of_a_full_run(tmp_path: Path) -> None:
    run = run_sample(tmp_path)
    tests = {t["nodeid"]: (t["outcome"], t["requirements"]) for t in run["tests"]}
    file = "tests/test_sample.py"
    assert tests == {
        f"{file}::test_passes": ("passed", ["FR-001", "FR-002", "SC-001"]),
        f"{file}::test_fails": ("failed", ["FR-002", "SC-001"]),
        f"{file}::test_skips[1]": ("skipped", ["FR-003", "SC-001"]),
        f"{file}::test_skips[2]": ("skipped", ["FR-003", "SC-001"]),
        f"{file}::TestGroup::test_case[1]": ("passed", ["SC-001"]),
        f"{file}::TestGroup::test_case[2]": ("passed", ["AG-001", "SC-001"]),
    }
    assert run["full_run"] is True and run["exitstatus"] == 1


@pytest.mark.parametrize("args", [("-k", "passes"), ("tests/test_sample.py",)])
def test_a_selection_is_not_a_full_run(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert run_sample(tmp_path, *args)["full_run"] is False


def test_tests_after_a_stop_are_recorded_as_not_run(tmp_path: Path) -> None:
    run = run_sample(tmp_path, "-x")
    outcomes = [t["outcome"] for t in run["tests"]]
    assert outcomes == ["passed", "failed", "not run", "not run", "not run", "not run"]


REQUIREMENTS = {"FR-001": "a", "FR-002": "b", "FR-003": "c", "FR-004": "d"}


def verdicts(full_run: bool) -> tuple[dict[str, str], list[str]]:
    tests = [
        {"nodeid": "t.py::test_a", "outcome": "passed", "requirements": ["FR-001", "FR-002"]},
        {"nodeid": "t.py::test_b[1]", "outcome": "passed", "requirements": ["FR-002"]},
        {"nodeid": "t.py::test_b[2]", "outcome": "failed", "requirements": ["FR-002"]},
        {"nodeid": "t.py::test_c", "outcome": "skipped", "requirements": ["FR-003", "XX-999"]},
    ]
    marked = [
        MarkedTest("t.py::test_a", ("FR-001",), 1),
        MarkedTest("u.py::test_d", ("FR-001",), 1),
    ]
    run = {"full_run": full_run, "tests": tests}
    matrix = build_matrix(REQUIREMENTS, marked, run, {"FR-001": ("bench.py",)})
    return {row.id: row.result for row in matrix.rows}, matrix.problems()


def test_matrix_verdicts() -> None:
    results, problems = verdicts(full_run=True)
    assert results == {
        "FR-001": "passed",
        "FR-002": "failed",
        "FR-003": "not run",
        "FR-004": "no test",
    }
    assert problems == [
        "FR-002: failed",
        "FR-003: not run",
        "FR-004: no test",
        "XX-999: unknown requirement ID, named by t.py::test_c",
    ]


def test_not_run_is_only_a_problem_after_a_full_run() -> None:
    _, problems = verdicts(full_run=False)
    assert "FR-003: not run" not in problems and "FR-004: no test" in problems


def test_sbom_components_must_be_the_locked_ones() -> None:
    package = LockedPackage(
        "psutil", "7.2.2", "https://pypi.org/simple", (), (("p.whl", "sha256:ab"),)
    )
    lock = LockFile("headroom", ">=3.11", {package.key: package}, ("psutil",), ())
    bom: dict[str, Any] = {"components": [{"name": "psutil", "version": "7.2.2"}]}
    assert _add_locked_hashes(bom, lock) == 1
    reference = bom["components"][0]["externalReferences"][0]
    assert reference["hashes"] == [{"alg": "SHA-256", "content": "ab"}]
    assert reference["url"] == "https://pypi.org/simple/psutil/"
    with pytest.raises(ValueError, match=r"not in uv\.lock"):
        _add_locked_hashes({"components": [{"name": "psutil", "version": "7.0"}]}, lock)
