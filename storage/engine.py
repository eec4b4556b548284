"""Engines and connections: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via psycopg 3.

``make_engine`` never connects; the first connection does. ``connect``/``transaction`` turn a database
that cannot be reached into one ``DatabaseUnavailable`` line (URL password masked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from moodstream.config import Settings, get_settings, mask_url

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message is one line and never holds a password."""

    @classmethod
    def from_error(cls, url: URL | str, err: BaseException) -> DatabaseUnavailable:
        orig = getattr(err, "orig", None) or err
        lines = [s.strip() for s in str(orig).splitlines() if s.strip()]
        reason = lines[0] if lines else type(orig).__name__
        return cls(f"database {display_url(url)} is unavailable: {reason}")


def display_url(url: URL | str) -> str:
    """A URL safe to log (password masked)."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    return mask_url(text) or ""


def normalize_url(url: str) -> URL:
    """Parse a URL; bare ``postgres://``/``postgresql://`` get the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(engine_or_url: Engine | Connection | URL) -> bool:
    """Whether an engine, connection or URL is SQLite."""
    return _dialect_name(engine_or_url) == "sqlite"


def is_postgres(engine_or_url: Engine | Connection | URL) -> bool:
    """Whether an engine, connection or URL is PostgreSQL."""
    return _dialect_name(engine_or_url) == "postgresql"


def _dialect_name(obj: Engine | Connection | URL) -> str:
    if isinstance(obj, URL):
        return obj.get_backend_name()
    return obj.dialect.name


def make_engine(url: str | None = None, *, readonly: bool = False, settings: Settings | None = None) -> Engine:
    """An engine for ``url`` (default: the settings' database URL, or its read-only URL when ``readonly``)."""
    settings = settings or get_settings()
    if url is None:
        url = (settings.database_readonly_url if readonly else None) or settings.database_url
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, readonly=readonly)
    elif backend == "postgresql":
        engine = _postgres_engine(parsed, readonly=readonly, settings=settings)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    log.info("database engine %s (%s)", display_url(parsed), "read-only" if readonly else "read-write")
    return engine


def _sqlite_engine(url: URL, *, readonly: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory and not readonly:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the "begin" hook).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if not in_memory and not readonly:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if readonly:
                cur.execute("PRAGMA query_only=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so read-then-write transactions never fail to upgrade.
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, *, readonly: bool, settings: Settings) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "moodstream"}
    if settings.database_sslmode and "sslmode" not in url.query:
        connect_args["sslmode"] = settings.database_sslmode
    if settings.database_sslrootcert and "sslrootcert" not in url.query:
        connect_args["sslrootcert"] = str(settings.database_sslrootcert)
    if readonly:
        connect_args["options"] = "-c default_transaction_read_only=on"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def connect(engine: Engine) -> Connection:
    """A connection, or ``DatabaseUnavailable`` when the database cannot be reached."""
    try:
        return engine.connect()
    except (OperationalError, InterfaceError) as e:
        raise DatabaseUnavailable.from_error(engine.url, e) from e


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction (commit on success, rollback on error); a lost connection is ``DatabaseUnavailable``."""
    with connect(engine) as conn, conn.begin():
        try:
            yield conn
        except DBAPIError as e:
            if e.connection_invalidated:
                raise DatabaseUnavailable.from_error(engine.url, e) from e
            raise


def ping(engine: Engine) -> None:
    """Raise ``DatabaseUnavailable`` unless a trivial query succeeds."""
    with connect(engine) as conn:
        conn.exec_driver_sql("SELECT 1")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)
