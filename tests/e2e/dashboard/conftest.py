"""Fixtures for the dashboard's browser test: a running ``moodstream dashboard`` and headless Chromium (CDP).

The browser driver and the server runner live in ``ops.screenshots`` (what ``python -m ops.screenshots`` uses for
the README's screenshots); these fixtures only manage their lifetimes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.screenshots import CHROMIUM_FLAGS, Browser, dashboard_server, stop, wait_http

__all__ = ["CHROMIUM_FLAGS", "Browser", "stop", "wait_http"]


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start_dashboard(db_url, password=None)`` runs ``moodstream dashboard`` on a free port; returns its URL."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:
        def _start(db_url: str, password: str | None = None) -> str:
            log = stack.enter_context(open(tmp_path / f"dashboard-{next(numbers)}.log", "wb"))
            return stack.enter_context(dashboard_server(db_url, password=password, refresh_s=30, log=log,
                                                        cwd=tmp_path))

        yield _start


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    try:
        b = Browser(tmp_path / "chromium-profile")
    except RuntimeError as e:
        pytest.fail(str(e))
    yield b
    b.close()
