"""Time as the whole project counts it: aware UTC datetimes and epoch-aligned tumbling windows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@overload
def as_utc(value: datetime | str) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | str | None) -> datetime | None:
    """``value`` (a datetime or an ISO-8601 string) as an aware UTC datetime; naive means UTC (SQLite's way)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_epoch(ts: datetime, window_s: int) -> int:
    """The epoch second at which the ``window_s`` tumbling window holding ``ts`` starts (a floor, also < 1970)."""
    delta = as_utc(ts) - EPOCH
    seconds = delta.days * 86_400 + delta.seconds  # whole seconds, floored
    return seconds - seconds % window_s


def from_epoch(seconds: int) -> datetime:
    """An epoch second as an aware UTC datetime."""
    return datetime.fromtimestamp(int(seconds), UTC)


def window_start(ts: datetime, window_s: int) -> datetime:
    """Start of the ``window_s``-second tumbling window (epoch aligned, UTC) that holds ``ts``."""
    return from_epoch(window_epoch(ts, window_s))
