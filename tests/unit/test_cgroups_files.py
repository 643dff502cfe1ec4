"""Parsing single cgroup interface files (the cheap helpers every cycle uses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headroom.collection.cgroupfiles import (
    keyed_value,
    parse_cpu_max,
    parse_memory_max,
    read_bytes,
    read_int,
)

MEMORY_STAT_V1 = b"cache 10\ninactive_file 3\ntotal_cache 20\ntotal_inactive_file 7\n"


def test_keyed_value_matches_whole_keys_only() -> None:
    assert keyed_value(MEMORY_STAT_V1, b"inactive_file") == 3
    assert keyed_value(MEMORY_STAT_V1, b"total_inactive_file") == 7
    assert keyed_value(MEMORY_STAT_V1, b"cache") == 10
    assert keyed_value(b"usage_usec 42", b"usage_usec") == 42


def test_keyed_value_missing_key_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="file"):
        keyed_value(MEMORY_STAT_V1, b"file")


@pytest.mark.parametrize(
    ("content", "cores"),
    [
        (b"max 100000\n", None),
        (b"max\n", None),
        (b"50000 100000\n", 0.5),
        (b"250000 100000\n", 2.5),
        (b"1000 1000\n", 1.0),
    ],
)
def test_cpu_max(content: bytes, cores: float | None) -> None:
    assert parse_cpu_max(content) == cores


@pytest.mark.parametrize("content", [b"", b"1 2 3\n", b"half 100000\n"])
def test_cpu_max_garbled(content: bytes) -> None:
    with pytest.raises(ValueError, match=r"cpu\.max|invalid literal"):
        parse_cpu_max(content)


@pytest.mark.parametrize(
    ("content", "limit"),
    [(b"max\n", None), (b"268435456\n", 268435456), (b"9223372036854771712\n", None)],
)
def test_memory_max(content: bytes, limit: int | None) -> None:
    assert parse_memory_max(content) == limit


def test_read_bytes_reads_files_larger_than_one_chunk(tmp_path: Path) -> None:
    big = tmp_path / "memory.stat"
    content = b"".join(b"key%d %d\n" % (i, i) for i in range(5000))
    big.write_bytes(content)

    assert read_bytes(str(big)) == content
    assert keyed_value(read_bytes(str(big)), b"key4999") == 4999


def test_read_int(tmp_path: Path) -> None:
    (tmp_path / "memory.current").write_text("123456\n")

    assert read_int(str(tmp_path / "memory.current")) == 123456
    with pytest.raises(FileNotFoundError):
        read_int(str(tmp_path / "gone"))
