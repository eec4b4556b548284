"""UTC and tumbling windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from moodstream.clock import as_utc, from_epoch, window_epoch, window_start


def test_window_start():
    assert window_start(datetime(2024, 1, 1, 12, 3, 59, tzinfo=UTC), 60) == datetime(2024, 1, 1, 12, 3, tzinfo=UTC)


def test_window_epoch_floors_to_window() -> None:
    t = datetime(2026, 5, 1, 12, 0, 59, 999_999, tzinfo=UTC)
    assert from_epoch(window_epoch(t, 60)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert from_epoch(window_epoch(t + timedelta(microseconds=1), 60)) == datetime(2026, 5, 1, 12, 1, tzinfo=UTC)
    assert from_epoch(window_epoch(t, 3600)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_window_epoch_before_1970_is_a_floor() -> None:
    assert window_epoch(datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC), 60) == -60


def test_window_epoch_other_timezone() -> None:
    t = datetime(2026, 5, 1, 14, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert from_epoch(window_epoch(t, 60)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_as_utc_naive_is_utc_and_offsets_convert() -> None:
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))).hour == 0


def test_as_utc_reads_iso_strings_and_passes_none() -> None:
    assert as_utc("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc("2026-01-01 00:00:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc(None) is None
