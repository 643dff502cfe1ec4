"""Stamp a release into a copy of the chart: version, appVersion, image repository and digest.

Run by .github/workflows/release.yml after the image is pushed, so the packaged chart
pins the exact image it was released with (``image.digest``; the tag stays informative)::

    python -m tools.release_chart CHART_DIR VERSION REPOSITORY sha256:DIGEST

Each value is replaced at the one place it belongs, and the script fails when that place
is not found exactly once (a reshaped values.yaml must not ship a chart without a digest).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["stamp"]

_SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _replace_once(text: str, pattern: str, replacement: str, what: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{what}: expected one match of {pattern!r}, found {count}")
    return new


def stamp(chart: Path, version: str, repository: str, digest: str) -> None:
    """Write ``version``, ``repository`` and ``digest`` into ``chart`` (in place)."""
    if not _SEMVER.match(version):
        raise ValueError(f"version {version!r} is not SemVer (tag the release vX.Y.Z)")
    if not _DIGEST.match(digest):
        raise ValueError(f"digest {digest!r} is not sha256:<64 hex>")
    chart_yaml = chart / "Chart.yaml"
    text = chart_yaml.read_text()
    text = _replace_once(text, r"^version: .*$", f"version: {version}", "Chart.yaml version")
    text = _replace_once(text, r"^appVersion: .*$", f'appVersion: "{version}"', "appVersion")
    chart_yaml.write_text(text)
    values = chart / "values.yaml"
    text = values.read_text()
    image = r"(^image:\n(?:(?:  .*|\s*)\n)*?)"
    text = _replace_once(
        text, image + r"  repository: .*$", rf"\g<1>  repository: {repository}", "image.repository"
    )
    text = _replace_once(text, image + r"  tag: .*$", rf'\g<1>  tag: "{version}"', "image.tag")
    text = _replace_once(
        text, image + r"  digest: .*$", rf'\g<1>  digest: "{digest}"', "image.digest"
    )
    values.write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        stamp(Path(args[0]), args[1], args[2], args[3])
    except ValueError as error:
        print(f"release_chart: {error}", file=sys.stderr)
        return 1
    print(f"{args[0]}: {args[1]}, {args[2]}@{args[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
