"""Headless Chromium (Debian's ``chromium`` package) for tests of the HTML page.

No network: the page is a local file and Chromium's background fetches are
switched off. With ``CI`` set a missing Chromium is a failure, otherwise a
skip that says how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

__all__ = ["Element", "chromium", "dump_dom", "parse_dom", "screenshot"]

_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The Chromium binary, or skip (fail under CI) with how to get it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    how = "no chromium on PATH (Debian/Ubuntu: apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(how, pytrace=False)
    pytest.skip(how)


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (``--dump-dom``)."""
    return _run(["--dump-dom", url], profile).stdout


def screenshot(url: str, out: Path, profile: Path, size: tuple[int, int]) -> Path:
    """A PNG of the page at the given window size."""
    _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", url], profile)
    assert out.is_file(), f"chromium wrote no screenshot to {out}"
    return out


class Element:
    """One element of the dumped DOM: tag, attributes, text inside, children."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[Element]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        """Descendants with this tag whose attributes (``class_`` is one class) match."""
        found = []
        for el in self.walk()[1:]:
            if el.tag != tag:
                continue
            ok = True
            for key, value in attrs.items():
                name = key.rstrip("_").replace("_", "-")
                if name == "class":
                    ok = ok and value in el.classes()
                else:
                    ok = ok and el.attrs.get(name) == value
            if ok:
                found.append(el)
        return found


_VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "col", "source", "path", "line"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(el)
        if tag not in _VOID:
            self.current = el

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        node: Element | None = self.current
        while node is not None:
            node.text_parts.append(data)
            node = node.parent


def parse_dom(text: str) -> Element:
    """A small tree of the DOM Chromium dumped (stdlib only)."""
    builder = _Builder()
    builder.feed(text)
    return builder.root
