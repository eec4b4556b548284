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
