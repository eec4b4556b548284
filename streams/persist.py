"""Database side of the worker: idempotent writes retried across outages (``storage.repository`` does the SQL)."""

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
from streams import metrics
from streams.retry import retry_forever

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error means "cannot reach it now" (retry) rather than "this data is wrong"."""
    from storage.engine import DatabaseUnavailable

    if isinstance(exc, DatabaseUnavailable | OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Store:
    """Writes predictions, dead letters, trend windows and alerts; waits out database outages."""

    def __init__(self, engine: Engine, retry_max_s: float = 30.0, window_s: int | None = None) -> None:
        self.engine = engine
        self.retry_max_s = retry_max_s
        self.window_s = window_s  # also recompute touched trend windows inside the upsert's transaction

    async def _retry(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return await retry_forever(lambda: asyncio.to_thread(fn, *args), what, transient=is_transient,
                                   cap_s=self.retry_max_s, on_retry=metrics.db_retries.inc)

    async def write_predictions(self, records: list[Any]) -> list[tuple[Any, str]]:
        """Upsert ``PostRecord``s; returns (record, reason) for rows the database rejects as data errors."""
        from storage.repository import upsert_predictions

        if not records:
            return []
        try:
            await self._retry("database", self._upsert, upsert_predictions, records)
            return []
        except Exception as e:  # a data error: find the rows that cause it, keep the rest
            log.error("batch upsert failed (%s); writing rows one by one", e)
        rejected: list[tuple[Any, str]] = []
        for rec in records:
            try:
                await self._retry("database", self._upsert, upsert_predictions, [rec])
            except Exception as e:
                rejected.append((rec, f"database rejected the row: {str(e).splitlines()[0][:300]}"))
        return rejected

    def _upsert(self, fn: Callable[..., int], records: list[Any]) -> int:
        return fn(self.engine, records, window_s=self.window_s)

    async def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        from storage.repository import insert_dead_letters

        if not letters:
            return
        try:
            await self._retry("database", insert_dead_letters, self.engine, letters)
        except Exception as e:  # a data error: the letters still go to the DLQ topic; never block the batch
            log.error("could not store %d dead letters (%s); they are still published to the dead-letter topic",
                      len(letters), str(e).splitlines()[0][:300])

    async def recompute_windows(self, window_starts: Iterable[datetime], window_s: int) -> list[dict[str, Any]]:
        """Trend windows (global + per hashtag) re-derived from stored predictions, replacing what was there."""
        from storage.repository import recompute_trend_windows

        starts = sorted(set(window_starts))
        if not starts:
            return []
        return list(await self._retry("database", recompute_trend_windows, self.engine, starts, window_s))

    async def read_windows(self, window_starts: Iterable[datetime], window_s: int) -> list[dict[str, Any]]:
        """The stored windows at ``window_starts`` (already recomputed by the upsert's transaction)."""
        starts = sorted(set(window_starts))
        if not starts:
            return []
        return list(await self._retry("database", _stored_windows, self.engine, starts, window_s))

    async def write_alerts(self, alerts: list[dict[str, Any]]) -> None:
        from storage.repository import insert_alerts

        if alerts:
            await self._retry("database", insert_alerts, self.engine, alerts)

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Any other database call, with the same retry policy."""
        return await self._retry(what, fn, *args)


def _stored_windows(engine: Engine, starts: list[datetime], window_s: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from storage.tables import TrendWindowRow as T

    cols = [c for c in T.__table__.columns if c.name != "updated_at"]
    q = select(*cols).where(T.window_start.in_(starts), T.window_s == window_s)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
