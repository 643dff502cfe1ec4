"""Reading and parsing single cgroup interface files, cheaply.

Every collection cycle reads a few files per pod (PR-001, PR-003), so these
helpers use bare ``os.open``/``os.read`` and search the bytes for the one key
wanted instead of building dictionaries. They raise ``OSError`` when a file is
gone (a pod deleted mid-read) and ``ValueError`` when it is not what the
kernel writes; callers decide what either means. :class:`OpenFiles` keeps
files open across cycles: the kernel regenerates a cgroup or proc file on
every read from offset 0, so one ``pread`` replaces open, read and close.
"""

from __future__ import annotations

import os

__all__ = [
    "UNLIMITED_V1_BYTES",
    "OpenFiles",
    "keyed_value",
    "parse_cpu_max",
    "parse_memory_max",
    "read_bytes",
    "read_int",
    "read_keyed_value",
]

UNLIMITED_V1_BYTES = 1 << 62
"""cgroup v1 writes ``PAGE_COUNTER_MAX * PAGE_SIZE`` (about 2^63, less with
larger pages) for "no limit"; anything this large is no limit at all."""

_READ_SIZE = 16384


def read_bytes(path: str) -> bytes:
    """The whole content of a small kernel file (cgroup files fit in one read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) < _READ_SIZE:
            return data
        chunks = [data]
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_int(path: str) -> int:
    """A file holding one integer (``memory.current``, ``cpuacct.usage``)."""
    return int(read_bytes(path))


def keyed_value(data: bytes, key: bytes) -> int:
    """The value of ``key`` in flat-keyed content (``cpu.stat``, ``memory.stat``).

    Lines are ``<key> <integer>``; the key must match a whole line start, so
    ``inactive_file`` does not match ``total_inactive_file``.
    """
    needle = key + b" "
    if data.startswith(needle):
        start = len(needle)
    else:
        found = data.find(b"\n" + needle)
        if found < 0:
            raise ValueError(f"no {key.decode()!r} line")
        start = found + 1 + len(needle)
    end = data.find(b"\n", start)
    return int(data[start:] if end < 0 else data[start:end])


def read_keyed_value(path: str, key: bytes) -> int:
    """One key of a flat-keyed file, read from ``path``."""
    return keyed_value(read_bytes(path), key)


def parse_cpu_max(data: bytes) -> float | None:
    """cgroup v2 ``cpu.max`` (``"<quota|max> <period>"``) as cores; None = unlimited."""
    fields = data.split()
    if not fields or len(fields) > 2:
        raise ValueError(f"unexpected cpu.max content {data!r}")
    if fields[0] == b"max":
        return None
    quota = int(fields[0])
    period = int(fields[1]) if len(fields) == 2 else 100_000
    if quota < 0 or period <= 0:
        return None
    return quota / period


def parse_memory_max(data: bytes) -> int | None:
    """cgroup v2 ``memory.max`` (bytes or ``max``); None = unlimited."""
    text = data.strip()
    if text == b"max":
        return None
    value = int(text)
    return None if value >= UNLIMITED_V1_BYTES else value


class OpenFiles:
    """Files kept open across cycles, each read again from offset 0 with one ``pread``."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._used: set[str] = set()

    def read(self, path: str) -> bytes:
        """The file's whole content now; OSError (and the file forgotten) when it is gone."""
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._used.add(path)
        try:
            data = os.pread(fd, _READ_SIZE, 0)
            while len(data) % _READ_SIZE == 0 and data:
                more = os.pread(fd, _READ_SIZE, len(data))
                if not more:
                    break
                data += more
        except OSError:
            self._close(path)
            raise
        return data

    def _close(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        self._used.discard(path)
        if fd is not None:
            os.close(fd)

    def sweep(self) -> None:
        """Close the files not read since the last sweep (their pods are gone)."""
        for path in [path for path in self._fds if path not in self._used]:
            self._close(path)
        self._used.clear()

    def close(self) -> None:
        """Close every file."""
        for path in list(self._fds):
            self._close(path)
