"""Every dashboard page under Streamlit's AppTest, against a database seeded with known predictions.

The numbers each page shows are checked against what the seed implies (see ``seed.py``), on a SQLite file
and on PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, inspect, text
from streamlit.testing.v1 import AppTest

from moodstream.labels import EMOTIONS

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[3] / "dashboard" / "app.py"
EMPTY = "No posts yet — publish some with `moodstream publish --synthetic`"
PAGES = ("trends", "emotions", "hashtags", "posts", "alerts", "pipeline")


def open_page(page: str = "trends") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    if page != "trends":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def elements(at: AppTest, kind: str) -> list:
    return [e for e in at.main if type(e).__name__ == kind or getattr(e, "type", None) == kind]


def chart_frames(at: AppTest) -> list[dict[str, pa.Table]]:
    """Per vega-lite chart on the page: its datasets as Arrow tables, keyed by their column names."""
    out = []
    for chart in elements(at, "vega_lite_chart"):
        frames = {}
        for d in chart.proto.datasets:
            table = pa.ipc.open_stream(d.data.data).read_all()
            frames[",".join(table.column_names)] = table
        out.append(frames)
    return out


def evidence_bars(at: AppTest) -> list[tuple[str, str, str]]:
    """(caption, label, fill colour) of every confidence bar on the page, in order."""
    import re

    out = []
    for md in at.markdown:
        for m in re.finditer(r'data-label="([^"]*)".*?class="ms-caption"[^>]*>([^<]*)</div>.*?'
                             r'class="ms-fill" style="background:(#[0-9a-f]{6})', md.value):
            out.append((m.group(2).replace("&middot;", "·"), m.group(1), m.group(3)))
    return out


def share(n: int, total: int) -> str:
    return f"{n / total:.1%}"


# ---------------------------------------------------------------------------------------------- Trends


def test_trends_numbers_and_filters(seeded, seedlib, now, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page()
    exp = seedlib.expected_shares(posts, now - timedelta(hours=24), now + timedelta(minutes=1))
    m = metrics(at)
    assert m["Posts"] == "20" == str(exp["volume"])
    assert m["Positive"] == share(exp["positive"], 20) == "40.0%"
    assert m["Neutral"] == share(exp["neutral"], 20)
    assert m["Negative"] == share(exp["negative"], 20)
    assert m["Mean score"] == f"{exp['mean_score']:+.3f}"
    area, line, bars, _flags = chart_frames(at)  # share area, mean score line, volume bars, flag rates
    wide = line["bucket,negative,neutral,positive,volume,mean_score"].to_pandas()
    assert area["bucket,sentiment,posts"].num_rows == 3 * len(wide) == bars["bucket,sentiment,posts"].num_rows
    assert wide["volume"].sum() == 20 and wide["positive"].sum() == exp["positive"]
    hourly = len(wide)

    at.multiselect(key="tags").select("rain").select("news").run()  # filter: each post once
    exp = seedlib.expected_shares(posts, now - timedelta(hours=24), now + timedelta(minutes=1), ["rain", "news"])
    m = metrics(at)
    assert m["Posts"] == str(exp["volume"]) == "8"
    assert m["Negative"] == share(exp["negative"], 8) and m["Positive"] == "0.0%"

    at.sidebar.button_group(key="bucket").set_value("minute").run()  # the SQL bucket, not a resample
    wide = chart_frames(at)[1]["bucket,negative,neutral,positive,volume,mean_score"].to_pandas()
    assert wide["volume"].sum() == 8 and len(wide) == 8 and len(wide) >= hourly
    assert "Sentiment share per minute" in elements(at, "vega_lite_chart")[0].proto.spec

    at.multiselect(key="tags").set_value([]).run()
    at.sidebar.selectbox(key="range").set_value("Last 15 minutes").run()
    recent = [p for p in posts if p.created_at >= now - timedelta(minutes=15)]
    assert metrics(at)["Posts"] == str(len(recent)) == "3"


def test_trends_compare_two_hashtags(seeded, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page()
    at.toggle(key="compare").set_value(True).run()
    at.selectbox(key="cmp_a").set_value("cats").run()
    at.selectbox(key="cmp_b").set_value("rain").run()
    m = metrics(at)
    assert m["#cats Posts"] == "6" and m["#rain Posts"] == "5"
    cats = [p for p in posts if "cats" in p.hashtags]
    assert m["#cats Positive"] == share(sum(p.sentiment == "positive" for p in cats), len(cats))
    assert m["#rain Negative"] == "100.0%"
    assert len(chart_frames(at)) == 6  # three per hashtag (no flag chart in the comparison)


def test_hashtag_search_input_is_harmless(seeded, app_env) -> None:
    url, _ = seeded
    app_env(url)
    at = open_page()
    for evil in ("'; DROP TABLE post_hashtags; --", "%", "_", "\\", "<script>alert(1)</script>"):
        at.text_input(key="tags_search").input(evil).run()
        assert not at.exception and not at.error
        assert at.multiselect(key="tags").options == []
    at.text_input(key="tags_search").input("#CA").run()
    assert at.multiselect(key="tags").options == ["cats"]
    at.multiselect(key="tags").set_value(["x' OR '1'='1"]).run()  # a typed (new) option is bound too
    assert not at.exception and not at.error
    assert metrics(at)["Posts"] == "0"
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM post_hashtags")).scalar() > 0
        assert {"posts", "predictions", "post_hashtags"} <= set(inspect(c).get_table_names())
    engine.dispose()


# -------------------------------------------------------------------------------------------- Emotions


def test_emotions_by_modality(seeded, now, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page("emotions")
    recent = [p for p in posts if p.created_at >= now - timedelta(hours=24)]
    m = metrics(at)
    assert m["Posts"] == "20" and m["Top emotion"] == "joy"
    assert m["Top emotion share"] == share(sum(p.emotion == "joy" for p in recent), 20)
    both = [p for p in recent if p.text_sentiment and p.image_sentiment]
    assert m["Posts with text and image"] == str(len(both))
    assert m["Text and image agree on sentiment"] == share(sum(p.text_sentiment == p.image_sentiment for p in both),
                                                           len(both))
    table = at.dataframe[0].value
    for e in EMOTIONS:
        assert table.loc[e, "fused"] == sum(p.emotion == e for p in recent)
        assert table.loc[e, "text"] == sum(p.text_emotion == e for p in recent)
        assert table.loc[e, "image"] == sum(p.image_emotion == e for p in recent)
    assert len(chart_frames(at)) == 5  # fused mix, text / image / fused small multiples, share by modality


# -------------------------------------------------------------------------------------------- Hashtags


def test_hashtags_tables(seeded, now, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page("hashtags")
    top, positive, movers, negative = (d.value for d in at.dataframe)
    counts: dict[str, int] = {}
    for p in posts:
        if p.created_at >= now - timedelta(hours=24):
            for t in p.hashtags:
                counts[t] = counts.get(t, 0) + 1
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(zip(top["hashtag"], top["volume"], strict=True)) == expected
    assert [sum(x) for x in top["trend"]] == [n for _, n in expected]  # sparklines add up to the volume
    assert list(positive["hashtag"]) == ["sun", "cats"]
    assert list(negative["hashtag"]) == ["rain", "news"]
    old = movers.set_index("hashtag").loc["old"]
    assert (old["volume"], old["previous"], old["change"]) == (0, 4, -4)
    at.slider(key="min_volume").set_value(5).run()
    _, positive, _, negative = (d.value for d in at.dataframe)
    assert list(positive["hashtag"]) == ["cats"] and list(negative["hashtag"]) == ["rain"]


# ----------------------------------------------------------------------------------------------- Posts


def test_posts_gallery_filters_and_detail(seeded, seedlib, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page("posts")
    texts = [t.value for t in at.text]
    assert texts[0] == seedlib.XSS_CAPTION  # shown verbatim as plain text
    assert not any("<script>" in md.value for md in at.markdown)
    assert len(elements(at, "Image")) == sum(1 for p in posts[:24] if p.thumbnail)
    details = [b for b in at.button if b.label == "Details"]
    assert len(details) == len(posts)  # 24 > 20 recent + 4 old
    bars = evidence_bars(at)[:3]  # p00: text and image, conflicting
    assert bars == [("text: positive 90%", "positive", "#2ca02c"),
                    ("image: neutral 60% · 1 face", "neutral", "#9e9e9e"),
                    ("fused (calibrated): positive 90%", "positive", "#2ca02c")]

    at.selectbox(key="posts_sentiment").set_value("negative").run()
    assert len([b for b in at.button if b.label == "Details"]) == sum(p.sentiment == "negative" for p in posts)
    at.text_input(key="posts_hashtag").input("#rain").run()
    assert len([b for b in at.button if b.label == "Details"]) == 5
    at.slider(key="posts_confidence").set_value(0.85).run()
    shown = {b.key.removeprefix("open_") for b in at.button if b.label == "Details"}
    assert shown == {p.id for p in posts if "rain" in p.hashtags and p.confidence >= 0.85} == {"p13", "p15"}

    at.button(key="open_p15").click().run()
    assert at.query_params["post"] == ["p15"] or at.query_params["post"] == "p15"
    m = metrics(at)
    assert m["Sentiment"] == "negative" and m["Emotion"] == "anger" and m["Confidence"] == "92%"
    assert "#news #rain" in [t.value for t in at.text]
    sent, emo = (d.value for d in at.dataframe[:2])
    assert sent.loc["fused", "negative"] == pytest.approx(0.92)
    assert list(emo.columns) == list(EMOTIONS) and set(sent.index) == {"fused", "text", "image"}
    assert len(chart_frames(at)) == 2


def test_post_caption_with_injection_is_text(seeded, seedlib, app_env) -> None:
    url, _ = seeded
    app_env(url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/posts.py")
    at.query_params["post"] = "p00"
    at.run()
    assert seedlib.XSS_CAPTION in [t.value for t in at.text]
    assert not any("javascript:" in md.value or "<script>" in md.value for md in at.markdown)


# ---------------------------------------------------------------------------------------------- Alerts


def test_alerts_page(seeded, app_env) -> None:
    url, _ = seeded
    app_env(url)
    at = open_page("alerts")
    assert metrics(at) == {"Alerts": "2", "Turning negative": "1", "Turning positive": "1"}
    df = at.dataframe[0].value
    assert list(df["hashtag"]) == ["cats", "rain"] and list(df["delta"]) == [0.6, -0.8]
    links = elements(at, "page_link")
    assert {link.proto.label for link in links} == {"#cats", "#rain"}
    assert all("hashtag=" in link.proto.query_string for link in links)
    deliveries = at.dataframe[1].value
    assert list(deliveries["hashtag"]) == ["rain", "cats"] and list(deliveries["state"]) == ["failed", "delivered"]
    assert deliveries["last_error"][0] == "ConnectError: [Errno 111] Connection refused"
    assert any("1 alert deliveries failed for good" in w.value for w in at.warning)
    assert any("1 delivered, 0 pending, 0 retrying, 1 failed" in c.value for c in at.caption)
    at.sidebar.selectbox(key="range").set_value("Last 15 minutes").run()
    assert metrics(at)["Alerts"] == "1"
    assert list(at.dataframe[1].value["state"]) == ["delivered"] and not at.warning


def test_alert_link_preselects_the_hashtag(seeded, app_env) -> None:
    url, _ = seeded
    app_env(url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["hashtag"] = "rain"
    at.run()
    assert at.multiselect(key="tags").value == ["rain"]
    assert metrics(at)["Posts"] == "5"


# -------------------------------------------------------------------------------------------- Pipeline


def test_pipeline_page(seeded, now, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page("pipeline")
    recent = [p for p in posts if p.created_at >= now - timedelta(hours=24)]
    m = metrics(at)
    assert m["Processed"] == "20" and m["Dead letters"] == "3"
    assert m["Cache hit rate"] == share(sum(p.cached for p in recent), 20)
    assert m["Latency p50"] == "29.0 ms" and m["Model version"] == "pack-1"
    reasons = list(at.dataframe[0].value["reason"])
    assert reasons[0].startswith("image.url scheme") and len(reasons) == 3
    assert len(chart_frames(at)) == 1


# ------------------------------------------------------------------------------------ summary tables


def _page_numbers(at: AppTest) -> tuple[dict[str, str], list, list[str]]:
    """Metrics, tables (floats to 6 digits: windows store means rounded) and captions of a page."""
    def cell(v: object) -> object:
        if isinstance(v, list | tuple) or getattr(v, "ndim", 0):  # sparklines come back as arrays
            return [cell(x) for x in list(v)]
        v = v.item() if hasattr(v, "item") else v
        return None if v != v else round(v, 6) if isinstance(v, float) else v  # NaN -> None

    frames = []
    for d in at.dataframe:
        split = d.value.to_dict("split")
        frames.append({**split, "data": [[cell(v) for v in row] for row in split["data"]]})
    return metrics(at), frames, [c.value for c in at.caption]


@pytest.mark.parametrize("page", ["trends", "emotions", "hashtags", "pipeline"])
def test_pages_show_the_same_numbers_from_summary_tables(seeded, app_env, page) -> None:
    """With the trend windows and summary tables the worker keeps (rebuilt here from the seed), every number on
    the page equals the predictions-only one (the last 24 hours reads rollups, windows and edges)."""
    from storage.engine import make_engine
    from storage.repository import recompute_trend_windows
    from storage.rollups import stored_summaries

    url, _posts = seeded
    app_env(url)
    before = _page_numbers(open_page(page))
    engine = make_engine(url)
    recompute_trend_windows(engine, None)
    assert all(stored_summaries(engine).values())
    engine.dispose()
    app_env(url)  # caches cleared
    assert _page_numbers(open_page(page)) == before


# --------------------------------------------------------------------------------- gate, empty, down


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_message(sqlite_url, seedlib, app_env, page) -> None:
    engine = create_engine(sqlite_url)
    seedlib.create_schema(engine)
    engine.dispose()
    app_env(sqlite_url)
    at = open_page(page)
    assert [i.value for i in at.info] == [EMPTY + "."]
    assert not at.error and not at.metric


def test_missing_sqlite_file_is_empty_not_an_error(tmp_path, app_env) -> None:
    app_env(f"sqlite:///{tmp_path / 'nothing-here.db'}")
    at = open_page()
    assert at.info[0].value.startswith(EMPTY) and not at.error
    assert not (tmp_path / "nothing-here.db").exists()  # read-only: the dashboard never creates it


def test_password_gate(seeded, app_env) -> None:
    url, _ = seeded
    app_env(url, password="s3cret pass")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.metric and not at.title[1:] and at.title[0].value == "moodstream"
    assert not at.sidebar.selectbox and not elements(at, "vega_lite_chart")
    at.text_input(key="login_password").input("wrong")
    at.button[0].click().run()  # a form: the typed value is sent with the submit
    assert at.error[0].value == "Wrong password." and not at.metric
    with pytest.raises(ValueError):  # no page is reachable before login
        at.switch_page("views/posts.py")
    at.text_input(key="login_password").input("s3cret pass")
    at.button[0].click().run()
    assert metrics(at)["Posts"] == "20"
    at.switch_page("views/pipeline.py").run()
    assert metrics(at)["Processed"] == "20"


def test_password_gate_slows_down_after_failures(seeded, app_env) -> None:
    """Two typos are free; the third failure closes the gate for 1 s: even the right password is refused (not
    checked) until it opens again, then accepted."""
    url, _ = seeded
    app_env(url, password="s3cret pass")
    at = AppTest.from_file(str(APP), default_timeout=60).run()

    def attempt(password: str) -> None:
        at.text_input(key="login_password").input(password)
        at.button[0].click().run()

    for _ in range(2):
        attempt("wrong")
        assert at.error[0].value == "Wrong password." and not at.warning
    attempt("wrong")
    assert at.error[0].value == "Wrong password." and "next one is possible in 1 s" in at.warning[0].value
    attempt("s3cret pass")
    assert at.error[0].value.startswith("Too many failed attempts. Try again in") and not at.metric
    time.sleep(1.1)
    attempt("s3cret pass")
    assert metrics(at)["Posts"] == "20"


def test_database_down_then_recovers(pg_server_url, seedlib, app_env) -> None:
    """A database that does not exist yet: one clear error; once it is up, the next refresh shows data."""
    import uuid

    from sqlalchemy.engine import make_url

    name = f"moodstream_down_{uuid.uuid4().hex[:8]}"
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    app_env(url)
    at = open_page()
    assert len(at.error) == 1 and "unavailable" in at.error[0].value and name in at.error[0].value
    admin = create_engine(make_url(pg_server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        engine = create_engine(url)
        seedlib.create_schema(engine)
        seedlib.seed(engine, seedlib.standard_posts())
        engine.dispose()
        at.run()
        assert not at.error and metrics(at)["Posts"] == "20"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_filters_survive_page_switches_and_reruns(seeded, app_env) -> None:
    url, _posts = seeded
    app_env(url)
    at = open_page()
    at.sidebar.selectbox(key="range").set_value("Last 15 minutes").run()
    at.multiselect(key="tags").select("sun").run()
    at.switch_page("views/pipeline.py").run()
    assert metrics(at)["Processed"] == "3"
    at.run()  # a rerun (what the live refresh does to the fragment) keeps everything
    at.switch_page("views/trends.py").run()
    assert at.sidebar.selectbox(key="range").value == "Last 15 minutes"
    assert at.multiselect(key="tags").value == ["sun"]
    assert metrics(at)["Posts"] == "1"  # p01 is the only #sun post of the last 15 minutes


# ------------------------------------------------------------------------- flags, default view, empty states


def badges(at: AppTest) -> list[str]:
    return [md.value for md in at.markdown if "-badge[" in md.value]


def shown_posts(at: AppTest) -> set[str]:
    return {b.key.removeprefix("open_") for b in at.button if b.label == "Details"}


def test_posts_flag_filters_badges_and_evidence(seeded, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page("posts")
    flagged = [b for b in badges(at) if "uncertain" in b or "conflict" in b]
    assert sum("uncertain" in b for b in flagged) == sum(p.uncertain for p in posts) == 5
    assert sum("conflict" in b for b in flagged) == sum(p.conflict for p in posts) == 2
    bars = evidence_bars(at)
    assert len(bars) == 3 * len(shown_posts(at))
    for caption, label, colour in bars:  # every bar in the colour of the label it shows
        assert colour == {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c", "": "#e0e0e0"}[label]
        assert caption.split(":")[0] in ("text", "image", "fused (calibrated)")
    assert {label for _, label, _ in bars} >= {"negative", "neutral", "positive"}

    at.toggle(key="posts_uncertain").set_value(True).run()
    assert shown_posts(at) == {p.id for p in posts if p.uncertain} == {"p05", "p08", "p09", "p10", "p11"}
    assert all("uncertain" in b for b in badges(at) if "orange" in b)
    at.toggle(key="posts_uncertain").set_value(False).run()
    at.toggle(key="posts_conflict").set_value(True).run()
    assert shown_posts(at) == {p.id for p in posts if p.conflict} == {"p00", "p15"}
    at.toggle(key="posts_uncertain").set_value(True).run()
    assert shown_posts(at) == set() and "No posts match these filters" in at.info[0].value


def test_post_detail_shows_flags_and_evidence(seeded, app_env) -> None:
    url, _ = seeded
    app_env(url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/posts.py")
    at.query_params["post"] = "p15"  # negative, text and image, conflicting
    at.run()
    assert any("conflict" in b for b in badges(at)) and not any("uncertain" in b for b in badges(at))
    assert evidence_bars(at) == [("text: negative 92%", "negative", "#d62728"),
                                 ("image: neutral 60% · 1 face", "neutral", "#9e9e9e"),
                                 ("fused (calibrated): negative 92%", "negative", "#d62728")]


def test_trends_flag_rates_and_exclude_uncertain(seeded, seedlib, now, app_env) -> None:
    url, posts = seeded
    app_env(url)
    at = open_page()
    recent = [p for p in posts if p.created_at >= now - timedelta(hours=24)]
    m = metrics(at)
    assert m["Uncertain"] == share(sum(p.uncertain for p in recent), 20) == "25.0%"
    assert m["Conflicting"] == share(sum(p.conflict for p in recent), 20) == "10.0%"
    flags = chart_frames(at)[3]["bucket,flag,rate,posts,volume"].to_pandas()
    assert flags.groupby("flag")["posts"].sum().to_dict() == {"conflict": 2, "uncertain": 5}
    assert "Uncertain and conflicting posts per hour" in elements(at, "vega_lite_chart")[3].proto.spec

    at.toggle(key="exclude_uncertain").set_value(True).run()
    sure = [p for p in recent if not p.uncertain]
    exp = seedlib.expected_shares(sure, now - timedelta(hours=24), now + timedelta(minutes=1))
    m = metrics(at)
    assert m["Posts"] == str(len(sure)) == "15"
    assert m["Positive"] == share(exp["positive"], 15) and m["Neutral"] == share(exp["neutral"], 15)
    assert m["Mean score"] == f"{exp['mean_score']:+.3f}"
    wide = chart_frames(at)[1]["bucket,negative,neutral,positive,volume,mean_score"].to_pandas()
    assert wide["volume"].sum() == 15 and wide["neutral"].sum() == exp["neutral"]
    assert m["Uncertain"] == "25.0%"  # the rates still describe every post
    assert any("left out" in c.value for c in at.caption)


def _young_seed(db_url: str, seedlib, now, minutes: int) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    seedlib.create_schema(engine)
    posts = [p for p in seedlib.standard_posts(now) if p.created_at >= now - timedelta(minutes=minutes)]
    seedlib.seed(engine, posts, now, extras=False)
    engine.dispose()


def test_default_range_follows_young_data(db_url, seedlib, now, app_env) -> None:
    """A four-minute-old demo opens on the last hour by minute (not 24 h by hour); a range chosen by hand stays."""
    _young_seed(db_url, seedlib, now, 5)
    app_env(db_url)
    at = open_page()
    assert at.sidebar.selectbox(key="range").value == "Last hour"
    assert at.sidebar.button_group(key="bucket").value == "minute"
    assert "Sentiment share per minute" in elements(at, "vega_lite_chart")[0].proto.spec
    assert metrics(at)["Posts"] == "1"
    at.sidebar.selectbox(key="range").set_value("Last 7 days").run()
    at.run()
    assert at.sidebar.selectbox(key="range").value == "Last 7 days"
    at.switch_page("views/pipeline.py").run()
    assert at.sidebar.selectbox(key="range").value == "Last 7 days"


def test_empty_range_explains_itself(db_url, seedlib, now, app_env) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    seedlib.create_schema(engine)
    seedlib.seed(engine, [p for p in seedlib.standard_posts(now) if p.id.startswith("old")], now, extras=False)
    engine.dispose()
    app_env(db_url)
    at = open_page()
    at.sidebar.selectbox(key="range").set_value("Last 15 minutes").run()
    info = at.info[0].value
    assert info.startswith("No posts in the last 15 minutes.") and "UTC" in info and "longer time range" in info
    newest = max(p.created_at for p in seedlib.standard_posts(now) if p.id.startswith("old"))
    assert f"{newest:%Y-%m-%d %H:%M}" in info
    for page in ("emotions", "hashtags"):
        at.switch_page(f"views/{page}.py").run()
        assert "longer time range" in at.info[0].value
