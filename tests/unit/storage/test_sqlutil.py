"""Window buckets, chunking and UTC helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from moodstream.clock import as_utc, from_epoch, window_epoch
from storage.sqlutil import chunks


def test_bucket_of_floors_to_window() -> None:
    t = datetime(2026, 5, 1, 12, 0, 59, 999_999, tzinfo=UTC)
    assert from_epoch(window_epoch(t, 60)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert from_epoch(window_epoch(t + timedelta(microseconds=1), 60)) == datetime(2026, 5, 1, 12, 1, tzinfo=UTC)
    assert from_epoch(window_epoch(t, 3600)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_bucket_of_before_1970_is_a_floor() -> None:
    assert window_epoch(datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC), 60) == -60


def test_bucket_of_other_timezone() -> None:
    t = datetime(2026, 5, 1, 14, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert from_epoch(window_epoch(t, 60)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_utc() -> None:
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))).hour == 0


def test_chunks() -> None:
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
