"""serving.dedup.unique: distinct values in first-seen order and where each input went."""

from __future__ import annotations

from serving.dedup import unique


def test_unique_keeps_first_seen_order_and_maps_every_input() -> None:
    values = [b"img-a", None, b"img-b", b"img-a", None]
    distinct, pos = unique(values)
    assert distinct == [b"img-a", None, b"img-b"]
    assert [distinct[p] for p in pos] == values


def test_unique_of_nothing() -> None:
    assert unique([]) == ([], [])
