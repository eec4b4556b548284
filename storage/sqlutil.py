"""Small SQL helpers shared by the repository: dialect upserts, chunking of IN lists, epoch buckets in SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Connection, DateTime, Table, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

T = TypeVar("T")


def insert(conn: Connection, table: Table) -> Any:
    """The dialect's ``INSERT`` that supports ``ON CONFLICT`` (PostgreSQL or SQLite)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {name}")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    size = max(1, size)
    for i in range(0, len(items), size):
        yield items[i : i + size]


class epoch_to_time(FunctionElement):
    """A timestamp column value from whole epoch seconds, stored the way the dialect stores ``DateTime``."""

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "epoch_to_time"


@compiles(epoch_to_time, "postgresql")
def _epoch_to_time_pg(element: epoch_to_time, compiler: Any, **kw: Any) -> str:
    return f"to_timestamp({compiler.process(element.clauses, **kw)})"


@compiles(epoch_to_time, "sqlite")
def _epoch_to_time_sqlite(element: epoch_to_time, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy's SQLite DateTime text, so range comparisons on the column stay plain string comparisons.
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {compiler.process(element.clauses, **kw)}, 'unixepoch')"


class epoch_seconds(FunctionElement):
    """Whole seconds since 1970-01-01 UTC of a timestamp column, on SQLite and PostgreSQL."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (we always store UTC).
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(extract(epoch FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


def bucket_epoch(column: ColumnElement[Any], window_s: int) -> ColumnElement[int]:
    """Epoch second at which the ``window_s`` tumbling window holding ``column`` starts (a floor, also < 1970)."""
    w = literal_column(str(int(window_s)), BigInteger())  # a literal, so GROUP BY matches the SELECT
    e = epoch_seconds(column)
    return e - ((e % w) + w) % w
