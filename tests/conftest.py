"""Fixtures shared by every test: the real Tansu broker, a private PostgreSQL database, a SQLite file.

PostgreSQL: the server on 127.0.0.1:5432 (override with MOODSTREAM_TEST_PG); each test session gets
its own database, dropped at the end, so runs never collide.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest_plugins = ["testkit.stream_fixtures"]

PG_ADMIN_URL = os.environ.get("MOODSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _restore_float_state() -> Iterator[None]:
    """Undo process-wide float settings a model may make (``VisionModel.load`` flushes denormals for speed),
    so later tests, e.g. hypothesis generating floats, see standard IEEE-754 behaviour."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (the real labelled datasets)."""
    from moodstream.config import Settings

    try:
        found = Settings(_env_file=None).datasets
    except FileNotFoundError as e:
        pytest.fail(str(e))
    if not found.is_dir():
        pytest.fail(f"datasets not found at {found}; set MOODSTREAM_DATA_DIR")
    return found


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A real Tansu broker for the whole session; yields its bootstrap address."""
    from ops.broker import EmbeddedBroker

    with EmbeddedBroker() as b:
        yield b.bootstrap


def _admin_engine():
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped afterwards)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"moodstream_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"moodstream_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'moodstream.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on a SQLite file and once on a private PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'moodstream.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Any]:
    """A migrated database on ``db_url`` (SQLite file, then a private PostgreSQL database)."""
    from storage.engine import make_engine
    from storage.migrate import upgrade

    upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def fx() -> ModuleType:
    """Record factories (Post, Prediction, PostRecord) of the storage tests."""
    from testkit import factories

    return factories


@pytest.fixture(scope="session")
def seedlib() -> ModuleType:
    """The dashboard seed: a schema and a known set of stored predictions."""
    from testkit import dashboard_seed

    return dashboard_seed
