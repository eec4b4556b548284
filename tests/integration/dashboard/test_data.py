"""The dashboard's database access: read-only on SQLite, one clear error when the database is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from dashboard import data

pytestmark = pytest.mark.integration


def test_sqlite_is_opened_read_only(tmp_path: Path, seedlib) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    rw = create_engine(url)
    seedlib.create_schema(rw)
    seedlib.seed(rw, seedlib.standard_posts(), extras=False)
    rw.dispose()
    engine = data.engine.__wrapped__(url) if hasattr(data.engine, "__wrapped__") else data.engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM predictions")).scalar() == 24
        with pytest.raises(OperationalError, match=r"readonly|read-only|query_only"):
            c.execute(text("DELETE FROM predictions"))
    engine.dispose()


def test_postgres_readonly_session(pg_url: str, seedlib) -> None:
    rw = create_engine(pg_url)
    seedlib.create_schema(rw)
    rw.dispose()
    engine = data.engine.__wrapped__(pg_url) if hasattr(data.engine, "__wrapped__") else data.engine(pg_url)
    with engine.connect() as c, pytest.raises(Exception, match="read-only"):
        c.execute(text("DELETE FROM predictions"))
    engine.dispose()


def test_postgres_reads_are_never_prepared(pg_url: str, seedlib) -> None:
    """Each run of a query gets a plan for its own parameters (no generic plan after repeated runs)."""
    rw = create_engine(pg_url)
    seedlib.create_schema(rw)
    rw.dispose()
    engine = data.engine.__wrapped__(pg_url) if hasattr(data.engine, "__wrapped__") else data.engine(pg_url)
    with engine.connect() as c:
        for _ in range(12):
            c.execute(text("SELECT count(*) FROM predictions WHERE sentiment = :s"), {"s": "negative"})
        assert c.connection.dbapi_connection.prepare_threshold is None
        assert c.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
    engine.dispose()


def test_down_database_is_one_line_without_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from moodstream.config import get_settings
    from ops.localhost import free_port

    port = free_port()
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", f"postgresql+psycopg://u:hunter2@127.0.0.1:{port}/x")
    get_settings.cache_clear()
    try:
        state, why = data.status()
    finally:
        get_settings.cache_clear()
    assert state == "down" and "hunter2" not in why and "\n" not in why and str(port) in why
