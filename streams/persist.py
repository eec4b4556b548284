"""Database side of the worker: idempotent writes and the trend reads, retried across outages.

The SQL lives in ``storage``; this module only adds the worker's retry policy and the split of a batch that the
database refuses as a whole into the rows it takes and the ones it rejects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from moodstream.schema import DeadLetter
from storage.engine import DatabaseUnavailable
from storage.records import PostRecord
from storage.repository import insert_alerts, insert_dead_letters, upsert_predictions
from storage.trends import TrendWindow, recompute_trend_windows, trailing_scores, windows_at
from streams import metrics
from streams.retry import retry_forever

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error means "cannot reach it now" (retry) rather than "this data is wrong"."""
    if isinstance(exc, DatabaseUnavailable | OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Store:
    """Writes predictions, dead letters and alerts, reads trend windows; waits out database outages."""

    def __init__(self, engine: Engine, retry_max_s: float = 30.0, window_s: int | None = None) -> None:
        self.engine = engine
        self.retry_max_s = retry_max_s
        self.window_s = window_s  # also recompute touched trend windows inside the upsert's transaction

    async def _retry(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return await retry_forever(lambda: asyncio.to_thread(fn, *args), what, transient=is_transient,
                                   cap_s=self.retry_max_s, on_retry=metrics.db_retries.inc)

    async def write_predictions(self, records: list[PostRecord]) -> list[tuple[PostRecord, str]]:
        """Upsert the records; returns (record, reason) for the rows the database rejects as data errors."""
        if not records:
            return []
        try:
            await self._retry("database", self._upsert, records)
            return []
        except Exception as e:  # a data error: find the rows that cause it, keep the rest
            log.error("batch upsert failed (%s); writing rows one by one", e)
        rejected: list[tuple[PostRecord, str]] = []
        for rec in records:
            try:
                await self._retry("database", self._upsert, [rec])
            except Exception as e:
                rejected.append((rec, f"database rejected the row: {str(e).splitlines()[0][:300]}"))
        return rejected

    def _upsert(self, records: list[PostRecord]) -> int:
        return upsert_predictions(self.engine, records, window_s=self.window_s)

    async def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        try:
            await self._retry("database", insert_dead_letters, self.engine, letters)
        except Exception as e:  # a data error: the letters still go to the DLQ topic; never block the batch
            log.error("could not store %d dead letters (%s); they are still published to the dead-letter topic",
                      len(letters), str(e).splitlines()[0][:300])

    async def recompute_windows(self, window_starts: Iterable[datetime], window_s: int) -> list[TrendWindow]:
        """Trend windows (global + per hashtag) re-derived from stored predictions, replacing what was there."""
        starts = sorted(set(window_starts))
        if not starts:
            return []
        return list(await self._retry("database", recompute_trend_windows, self.engine, starts, window_s))

    async def read_windows(self, window_starts: Iterable[datetime], window_s: int) -> list[TrendWindow]:
        """The stored windows at ``window_starts`` (already recomputed by the upsert's transaction)."""
        return await self._retry("database", windows_at, self.engine, list(window_starts), window_s)

    async def trailing_scores(self, keys: list[tuple[str, datetime]], windows: int,
                              window_s: int) -> dict[tuple[str, datetime], list[float]]:
        """Each (hashtag, window start)'s trailing window scores, newest first (one query for the batch)."""
        return await self._retry("database", trailing_scores, self.engine, keys, windows, window_s)

    async def write_alerts(self, alerts: list[dict[str, Any]], sinks: tuple[str, ...] = ()) -> None:
        """Store alerts and (same transaction) one outbox row per new alert and sink."""
        if alerts:
            await self._retry("database", insert_alerts, self.engine, alerts, sinks)
