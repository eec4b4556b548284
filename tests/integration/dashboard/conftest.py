"""Fixtures for the dashboard tests: a database seeded with known predictions, and the app's environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

APP = Path(__file__).resolve().parents[3] / "dashboard" / "app.py"


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def seeded(db_url: str, seedlib: ModuleType, now: datetime) -> Iterator[tuple[str, list]]:
    """(url, posts): a database on both backends holding ``standard_posts``."""
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    seedlib.create_schema(engine)
    posts = seedlib.standard_posts(now)
    seedlib.seed(engine, posts, now)
    engine.dispose()
    yield db_url, posts


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Point the dashboard at a URL (``app_env(url, password=None)``); caches cleared before and after."""
    from moodstream.config import get_settings

    def _clear() -> None:
        import streamlit as st

        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()

    def _set(url: str, password: str | None = None) -> None:
        monkeypatch.setenv("MOODSTREAM_DATABASE_URL", url)
        monkeypatch.delenv("MOODSTREAM_DATABASE_READONLY_URL", raising=False)
        if password is None:
            monkeypatch.delenv("MOODSTREAM_DASHBOARD_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("MOODSTREAM_DASHBOARD_PASSWORD", password)
        _clear()

    _clear()
    yield _set
    _clear()
