"""``python -m tools.audit``: write the audit pack into ``build/audit/`` (see the package doc)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tools.audit.lock import read_lock
from tools.audit.markers import find_marked_tests
from tools.audit.matrix import build_matrix
from tools.audit.render import soup_markdown, traceability_markdown
from tools.audit.requirements import FIGURES, read_requirements
from tools.audit.results import RESULTS_FILE, load_results
from tools.audit.sbom import write_sbom
from tools.audit.soup import as_dicts, soup_rows

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.audit", description=__doc__)
    parser.add_argument("--results", type=Path, default=ROOT / RESULTS_FILE)
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "audit")
    parser.add_argument("--no-sbom", action="store_true", help="skip the SBOM (faster)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)

    requirements = read_requirements(ROOT / "docs" / "requirements.md")
    matrix = build_matrix(
        requirements, find_marked_tests(ROOT), load_results(args.results), FIGURES
    )
    shown = args.results.resolve()
    shown_name = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    (output / "traceability.md").write_text(traceability_markdown(matrix, str(shown_name)))
    (output / "traceability.json").write_text(json.dumps(matrix.to_json(), indent=1) + "\n")

    lock = read_lock(ROOT / "uv.lock")
    runtime, dev = soup_rows(lock), soup_rows(lock, dev=True)
    (output / "soup.md").write_text(soup_markdown(runtime, dev, lock.requires_python))
    soup = {"runtime": as_dicts(runtime), "dev": as_dicts(dev)}
    (output / "soup.json").write_text(json.dumps(soup, indent=1) + "\n")
    unhashed = [r.name for r in runtime + dev if not r.hashes.startswith("sha256")]

    if not args.no_sbom:
        components = write_sbom(ROOT, lock, output / "sbom.cdx.json", ROOT / "build")
        print(f"sbom.cdx.json: {components} components, CycloneDX valid")
    passed = sum(1 for row in matrix.rows if row.result == "passed")
    print(
        f"traceability: {passed}/{len(matrix.rows)} requirements passed"
        f" ({'full' if matrix.run['full_run'] else 'partial'} run)"
    )
    print(f"soup: {len(runtime)} runtime, {len(dev)} dev/test packages")
    problems = matrix.problems() + [f"{name}: locked without a hash" for name in unhashed]
    if not matrix.run["full_run"]:
        not_run = [row.id for row in matrix.rows if row.result == "not run"]
        if not_run:
            print(f"note: a partial run; not run here: {', '.join(not_run)}")
    for problem in problems:
        print(f"AUDIT FAILED: {problem}", file=sys.stderr)
    print(
        f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}/ "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
