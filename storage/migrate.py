"""Bring a database to the newest schema (``alembic upgrade head``) from code; no alembic.ini needed.

Safe to call from every process on start: it is a no-op at head, and on PostgreSQL concurrent callers
queue on an advisory lock (on SQLite, on the write lock) and run the migrations in one transaction.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from storage.engine import display_url, is_postgres, make_engine, transaction
from storage.tables import Base

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x6D6F6F64_6D696772  # "moodmigr": one key for every moodstream database


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    """The newest revision id shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _with_engine(url: str | None, engine: Engine | None) -> tuple[Engine, bool]:
    return (engine, False) if engine is not None else (make_engine(url), True)


def upgrade(url: str | None = None, *, engine: Engine | None = None) -> None:
    """Upgrade the database at ``url`` (default: settings) or ``engine`` to head; idempotent."""
    eng, owned = _with_engine(url, engine)
    try:
        with transaction(eng) as conn:
            if is_postgres(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        log.info("database %s is at schema %s", display_url(eng.url), head_revision())
    finally:
        if owned:
            eng.dispose()


def current_revision(url: str | None = None, *, engine: Engine | None = None) -> str | None:
    """The revision the database is at (None when never migrated)."""
    eng, owned = _with_engine(url, engine)
    try:
        with transaction(eng) as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if owned:
            eng.dispose()


def schema_diffs(url: str | None = None, *, engine: Engine | None = None) -> list[Any]:
    """Differences between the database and ``storage.tables`` (empty when they agree)."""
    eng, owned = _with_engine(url, engine)
    try:
        with transaction(eng) as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return [d for d in compare_metadata(ctx, Base.metadata) if not _is_alembic_version(d)]
    finally:
        if owned:
            eng.dispose()


def _is_alembic_version(diff: Any) -> bool:
    """compare_metadata reports Alembic's own bookkeeping table as extra; that is expected."""
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version"
