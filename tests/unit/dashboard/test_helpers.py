"""Pure helpers of the dashboard: Markdown escaping, read-only URLs, the password check, charts, the CLI line."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from dashboard import auth, charts, data, ui
from moodstream.config import Settings
from moodstream.labels import EMOTIONS, SENTIMENTS
from ops.cli import dashboard as cli
from storage import queries


@pytest.mark.parametrize("raw", ["<script>alert(1)</script>", "[x](javascript:alert(1))", "**b** _i_ `c` #h",
                                 "a\\b", "| t | - + ! ~ $x$"])
def test_escape_md_escapes_every_control_character(raw: str) -> None:
    out = ui.escape_md(raw)
    unescaped = out.replace("\\\\", "").replace("\\", "")
    assert unescaped == raw.replace("\\", "")
    for ch in "<>[]()*_`#|!~$":
        assert out.count(ch) == out.count("\\" + ch)


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


def test_password_check_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(dashboard_password=SecretStr("pä55 word"))
    monkeypatch.setattr(auth, "get_settings", lambda: s)
    assert auth.required() and auth.check("pä55 word")
    for wrong in ("", "pä55 word ", "PÄ55 WORD", "pä55"):
        assert not auth.check(wrong)
    monkeypatch.setattr(auth, "get_settings", lambda: Settings(dashboard_password=None))
    assert not auth.required()


def test_percentile_matches_linear_interpolation() -> None:
    rng = random.Random(1)
    values = sorted(rng.uniform(1, 500) for _ in range(1001))
    cuts = statistics.quantiles(values, n=100, method="inclusive")  # linear, like percentile_cont
    for q in (0.5, 0.95, 0.99):
        assert queries._percentile(values, q) == pytest.approx(cuts[round(q * 100) - 1])
    assert queries._percentile([], 0.5) is None and queries._percentile([7.0], 0.99) == 7.0


def test_modality_confidence() -> None:
    mods = {"text": {"sentiment": {"negative": 0.1, "neutral": 0.2, "positive": 0.7}}, "image": None}
    out = queries.modality_confidence(mods, {"negative": 0.3, "neutral": 0.1, "positive": 0.6})
    assert out == {"text": 0.7, "image": None, "fused": 0.6}


def test_charts_build_valid_specs() -> None:
    now = datetime.now(UTC)
    buckets = [now - timedelta(hours=h) for h in range(3)]
    sent = pd.DataFrame({"bucket": buckets, "negative": [1, 2, 3], "neutral": [0, 1, 0], "positive": [4, 0, 1],
                         "volume": [5, 3, 4], "mean_score": [0.5, -0.4, -0.2]})
    for chart in charts.sentiment_trend(sent, "t"):
        assert chart.to_dict()
    emo = pd.DataFrame({"bucket": buckets, **{e: [1, 0, 2] for e in EMOTIONS}, "volume": [7, 0, 14]})
    assert charts.emotion_mix(emo, "e").to_dict()
    assert charts.emotion_shares_by_modality({"text": dict.fromkeys(EMOTIONS, 1)}).to_dict()
    tp = pd.DataFrame({"bucket": buckets, "processed": [5, 3, 4], "cached": [1, 0, 2]})
    assert charts.throughput(tp).to_dict() and charts.throughput(tp.iloc[:0]).to_dict()
    probs = {"fused": dict.fromkeys(SENTIMENTS, 1 / 3), "text": None, "image": dict.fromkeys(SENTIMENTS, 0.2)}
    spec = charts.probabilities(probs, SENTIMENTS, "p").to_dict()
    assert spec["mark"]["type"] == "bar"


def test_bucket_edges_cover_the_range() -> None:
    edges = ui.bucket_edges(3600, "minute")
    assert 60 <= len(edges) <= 61 and edges.tz is not None


def test_cli_runs_streamlit_headless_on_the_packaged_app() -> None:
    cmd = cli.streamlit_command("127.0.0.1", 8999)
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]) == cli.app_path() and cli.app_path().is_file()
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--server.port") + 1] == "8999"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"


def test_dashboard_command_is_registered() -> None:
    from typer.testing import CliRunner

    from ops.cli import app

    out = CliRunner().invoke(app, ["dashboard", "--help"])
    assert out.exit_code == 0 and "--port" in out.output and "--host" in out.output
