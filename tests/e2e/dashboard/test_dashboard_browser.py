"""``moodstream dashboard`` on a free port, driven by headless Chromium: the Trends page renders its chart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

pytestmark = pytest.mark.e2e

CHART = "document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length"
TEXT = "document.body ? document.body.innerText : ''"
SETTLED = ("document.querySelectorAll('[data-testid=stSkeleton]').length === 0 && "
           "document.querySelectorAll('[data-testid=stStatusWidget]').length === 0")


def seeded_sqlite(tmp_path: Path, seed) -> str:
    url = f"sqlite:///{tmp_path / 'moodstream.db'}"
    engine = create_engine(url)
    seed.create_schema(engine)
    now = datetime.now(UTC)
    seed.seed(engine, seed.standard_posts(now), now)
    engine.dispose()
    return url


def test_trends_page_renders_its_chart(tmp_path: Path, seedlib, start_dashboard, browser) -> None:
    base = start_dashboard(seeded_sqlite(tmp_path, seedlib))
    browser.goto(base)  # Trends is the default page
    assert browser.wait_for(CHART, 90) >= 1
    browser.wait_for(f"({TEXT}).includes('Mean score')", 30)
    browser.wait_for(SETTLED, 60)
    assert "Page not found" not in browser.eval(TEXT)
    text = browser.eval(TEXT)
    assert "Trends" in text and "40.0%" in text
    shot = browser.screenshot(tmp_path / "trends.png", 1400)
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")

    browser.goto(f"{base}/posts")
    browser.wait_for("document.querySelectorAll('img').length >= 3", 60)
    browser.wait_for(SETTLED, 60)
    text = browser.eval(TEXT)
    assert "<script>alert('xss')</script>" in text  # the caption shown literally, not executed
    assert browser.eval("document.querySelectorAll('a[href^=\"javascript:\"]').length") == 0
    print(f"screenshot: {browser.screenshot(tmp_path / 'posts.png', 1400)}")


def test_password_gate_in_the_browser(tmp_path: Path, seedlib, start_dashboard, browser) -> None:
    """The first request to a fresh server, straight to a page URL, still meets the login form only."""
    base = start_dashboard(seeded_sqlite(tmp_path, seedlib), password="open sesame")
    browser.goto(f"{base}/trends")
    browser.wait_for("document.querySelector('input[type=password]') !== null", 90)
    text = browser.eval(TEXT)
    assert "Mean score" not in text and "Posts" not in text
    assert browser.eval(CHART) == 0


def test_screenshots_of_every_page(tmp_path: Path, seedlib, start_dashboard, browser) -> None:
    """What ``python -m ops.screenshots`` does: every page rendered in Chromium, full height, one PNG each."""
    from PIL import Image

    from ops.screenshots import PAGES, capture

    base = start_dashboard(seeded_sqlite(tmp_path, seedlib))
    shots = capture(base, tmp_path / "docs", PAGES, browser=browser)
    assert [s.name for s in shots] == [f"dashboard-{p}.png" for p in PAGES]
    heights = {}
    for shot in shots:
        with Image.open(shot) as im:
            assert im.width == 1400 and im.height >= 900, shot.name
            heights[shot.stem] = im.height
            assert len(im.convert("L").getcolors(1 << 16) or []) > 50, shot.name  # not a blank page
    assert heights["dashboard-trends"] > 1400  # four charts at readable heights do not fit one screen
    browser.goto(base)
    browser.settle()
    sizes = browser.eval("Array.from(document.querySelectorAll('.vega-embed')).map(e => e.getBoundingClientRect()"
                         ".height)")
    assert len(sizes) == 4 and min(sizes) >= 200, sizes  # no chart squeezed to a strip
