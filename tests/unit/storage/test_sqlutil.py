"""Chunking of IN lists."""

from __future__ import annotations

from storage.sqlutil import chunks


def test_chunks() -> None:
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
