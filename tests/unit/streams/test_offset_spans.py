"""``offset_spans``: the per-partition offset ranges of a batch that the worker logs with "batch done"."""

from __future__ import annotations

from streams.agent import offset_spans
from streams.records import RawRecord


def _r(partition: int, offset: int) -> RawRecord:
    return RawRecord(value=b"", topic="posts", partition=partition, offset=offset)


def test_contiguous_runs_per_partition() -> None:
    recs = [_r(1, 5), _r(0, 10), _r(1, 6), _r(0, 11), _r(1, 7)]
    assert offset_spans(recs) == "0:10-11,1:5-7"


def test_a_hole_shows_as_a_second_span() -> None:
    assert offset_spans([_r(2, 0), _r(2, 1), _r(2, 4)]) == "2:0-1,2:4-4"


def test_empty_batch() -> None:
    assert offset_spans([]) == ""
