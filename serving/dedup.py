"""Within-batch deduplication: a caption or image that occurs twice in one model batch is computed once."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

H = TypeVar("H", bound=Hashable)


def unique(values: Sequence[H]) -> tuple[list[H], list[int]]:
    """The distinct values in first-seen order, and for each input the index of its value among them."""
    index: dict[H, int] = {}
    pos = [index.setdefault(v, len(index)) for v in values]
    return list(index), pos
