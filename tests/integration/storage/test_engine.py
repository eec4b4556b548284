"""Engines on real SQLite files and the real PostgreSQL: pragmas, read-only, TLS settings, clear errors."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from moodstream.config import Settings
from ops.localhost import free_port
from storage.engine import DatabaseUnavailable, make_engine, normalize_url, ping, transaction

pytestmark = pytest.mark.integration



def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, settings=Settings())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()


def test_sqlite_creates_parent_dir_and_commits(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'dir' / 'db.sqlite'}"
    engine = make_engine(url, settings=Settings())
    with transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        raise RuntimeError("roll back")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    engine.dispose()


def test_sqlite_readonly_refuses_writes(sqlite_url: str) -> None:
    rw = make_engine(sqlite_url, settings=Settings())
    with transaction(rw) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    ro = make_engine(sqlite_url, readonly=True, settings=Settings())
    with ro.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    with pytest.raises(DBAPIError, match="readonly"), transaction(ro) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    rw.dispose()
    ro.dispose()


def test_readonly_uses_readonly_url_from_settings(sqlite_url: str, tmp_path) -> None:
    other = f"sqlite:///{tmp_path / 'ro.db'}"
    engine = make_engine(readonly=True, settings=Settings(database_url=sqlite_url, database_readonly_url=other))
    assert engine.url.database == str(tmp_path / "ro.db")
    assert make_engine(settings=Settings(database_url=sqlite_url)).url.database == str(tmp_path / "moodstream.db")


def test_postgres_driver_is_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_postgres_readonly_refuses_writes(pg_url: str) -> None:
    engine = make_engine(pg_url, readonly=True, settings=Settings())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(DBAPIError, match="read-only"), transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x int)")
    engine.dispose()


def test_postgres_sslmode_is_passed_through(pg_url: str) -> None:
    # The local server has no TLS: 'require' must fail, 'disable' must connect. Either proves the pass-through.
    with pytest.raises(DatabaseUnavailable, match="SSL"):
        ping(make_engine(pg_url, settings=Settings(database_sslmode="require")))
    ping(make_engine(pg_url, settings=Settings(database_sslmode="disable")))


def test_unreachable_postgres_is_one_masked_line() -> None:
    url = f"postgresql+psycopg://moody:s3cret-pw@127.0.0.1:{free_port()}/nope"
    engine = make_engine(url, settings=Settings())
    with pytest.raises(DatabaseUnavailable) as err, transaction(engine):
        pass
    msg = str(err.value)
    assert "\n" not in msg
    assert "s3cret-pw" not in msg and "moody:***@127.0.0.1" in msg
    assert "unavailable" in msg


def test_unreachable_sqlite_is_database_unavailable(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    engine = make_engine(url, readonly=True, settings=Settings())  # read-only never creates the directory
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        ping(engine)


def test_password_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="storage.engine")
    make_engine("postgresql://moody:s3cret-pw@db.example:5432/x", settings=Settings())
    assert "s3cret-pw" not in caplog.text and "moody:***@db.example" in caplog.text
