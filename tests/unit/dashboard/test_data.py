"""Read-only database URLs of the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import data
from moodstream.config import Settings


def test_readonly_url_for_sqlite_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert data.readonly_url(url) == f"sqlite:///file:{tmp_path / 'm.db'}?mode=ro&uri=true"
    assert data.readonly_url("sqlite://") == "sqlite://"
    pg = "postgresql+psycopg://ro:pw@db/moodstream"
    assert data.readonly_url(pg) == pg
    assert data.sqlite_file(url) == tmp_path / "m.db"
    assert data.sqlite_file(data.readonly_url(url)) == tmp_path / "m.db"
    assert data.sqlite_file(pg) is None and data.sqlite_file("sqlite://") is None


def test_readonly_role_url_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(database_url="postgresql+psycopg://rw@db/m", database_readonly_url="postgresql+psycopg://ro@db/m")
    monkeypatch.setattr(data, "get_settings", lambda: s)
    assert data.database_url() == "postgresql+psycopg://ro@db/m"
