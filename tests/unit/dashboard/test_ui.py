"""Page helpers: Markdown escaping, bucket edges."""

from __future__ import annotations

import pytest

from dashboard import ui


@pytest.mark.parametrize("raw", ["<script>alert(1)</script>", "[x](javascript:alert(1))", "**b** _i_ `c` #h",
                                 "a\\b", "| t | - + ! ~ $x$"])
def test_escape_md_escapes_every_control_character(raw: str) -> None:
    out = ui.escape_md(raw)
    unescaped = out.replace("\\\\", "").replace("\\", "")
    assert unescaped == raw.replace("\\", "")
    for ch in "<>[]()*_`#|!~$":
        assert out.count(ch) == out.count("\\" + ch)


def test_bucket_edges_cover_the_range() -> None:
    edges = ui.bucket_edges(3600, "minute")
    assert 60 <= len(edges) <= 61 and edges.tz is not None


def test_default_view_follows_the_data() -> None:
    from datetime import UTC, datetime, timedelta

    from dashboard.ui import DEFAULT_VIEW, RANGES, default_view

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def view(first_ago: timedelta, last_ago: timedelta = timedelta(seconds=5)) -> tuple[str, str]:
        return default_view({"first": now - first_ago, "last": now - last_ago, "n": 10}, now)

    assert view(timedelta(minutes=4)) == ("Last hour", "minute")  # a four-minute demo: by minute
    assert view(timedelta(minutes=59)) == ("Last hour", "minute")
    assert view(timedelta(hours=3)) == ("Last 6 hours", "minute")
    assert view(timedelta(hours=30)) == DEFAULT_VIEW == ("Last 24 hours", "hour")
    assert view(timedelta(days=3), timedelta(days=2)) == ("Last 7 days", "hour")  # still shows the newest posts
    assert view(timedelta(days=20), timedelta(days=10)) == ("Last 30 days", "day")
    assert view(timedelta(days=90), timedelta(days=60)) == ("Last 30 days", "day")
    assert default_view(None, now) == default_view({"first": None, "last": None, "n": 0}, now) == DEFAULT_VIEW
    assert all(label in RANGES for label, _ in [view(timedelta(minutes=m)) for m in (1, 100, 1000, 10_000)])
