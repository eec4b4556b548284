"""The dashboard's read queries on a real SQLite file and a real PostgreSQL database, against a known seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import create_engine, event, func, select

from moodstream.clock import as_utc, window_start
from moodstream.labels import EMOTIONS, SENTIMENTS
from storage import queries as q
from testkit import dashboard_seed

pytestmark = pytest.mark.integration



@pytest.fixture
def db(db_url: str):
    """(engine, posts, now) with the standard seed."""
    lib = dashboard_seed
    now = datetime.now(UTC)
    engine = create_engine(db_url)
    lib.create_schema(engine)
    posts = lib.standard_posts(now)
    lib.seed(engine, posts, now)
    yield engine, posts, now
    engine.dispose()


def _recent(posts, now, hours=24):
    return [p for p in posts if p.created_at >= now - timedelta(hours=hours)]


def test_sentiment_over_time_matches_seed(db) -> None:
    engine, posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        rows = q.sentiment_over_time(c, start, end, "hour")
        summary = q.sentiment_summary(c, start, end)
    recent = _recent(posts, now)
    assert sum(r["volume"] for r in rows) == len(recent) == summary["volume"] == 20
    for s in SENTIMENTS:
        assert sum(r[s] for r in rows) == sum(p.sentiment == s for p in recent) == summary[s]
    assert summary["mean_score"] == pytest.approx(sum(p.score for p in recent) / len(recent))
    for r in rows:
        assert r["bucket"].tzinfo is not None
        assert r["bucket"].minute == r["bucket"].second == 0
        assert r["negative"] + r["neutral"] + r["positive"] == r["volume"]


@pytest.mark.parametrize("bucket", ["minute", "hour", "day"])
def test_buckets_truncate_in_sql(db, bucket: str) -> None:
    engine, posts, now = db
    start, end = now - timedelta(days=3), now + timedelta(minutes=1)
    with engine.connect() as c:
        rows = q.sentiment_over_time(c, start, end, bucket)
    size = q.BUCKET_SECONDS[bucket]
    expected: dict[datetime, int] = {}
    for p in posts:
        ts = p.created_at.timestamp()
        key = datetime.fromtimestamp(ts - ts % size, UTC)
        expected[key] = expected.get(key, 0) + 1
    assert {r["bucket"]: r["volume"] for r in rows} == expected


def test_bucket_rejects_unknown_unit(db) -> None:
    engine, _, now = db
    with engine.connect() as c, pytest.raises(ValueError):
        q.sentiment_over_time(c, now - timedelta(hours=1), now, "second'; DROP TABLE posts; --")


def test_hashtag_filter_counts_each_post_once(db) -> None:
    engine, posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        rows = q.sentiment_over_time(c, start, end, "day", hashtags=["rain", "#News"])
    sel = [p for p in _recent(posts, now) if {"rain", "news"} & set(p.hashtags)]
    assert sum(r["volume"] for r in rows) == len(sel) == 8  # p15 has both tags, counted once
    assert sum(r["negative"] for r in rows) == sum(p.sentiment == "negative" for p in sel)


@pytest.mark.parametrize("modality", ["fused", "text", "image"])
def test_emotion_over_time_per_modality(db, modality: str) -> None:
    engine, posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        rows = q.emotion_over_time(c, start, end, "hour", modality=modality)
        by_mod = q.emotion_by_modality(c, start, end)
    attr = {"fused": "emotion", "text": "text_emotion", "image": "image_emotion"}[modality]
    recent = [p for p in _recent(posts, now) if getattr(p, attr)]
    for e in EMOTIONS:
        n = sum(getattr(p, attr) == e for p in recent)
        assert sum(r[e] for r in rows) == n == by_mod["counts"][modality][e]
    assert sum(r["volume"] for r in rows) == len(recent)


def test_emotion_by_modality_agreement(db) -> None:
    engine, posts, now = db
    with engine.connect() as c:
        out = q.emotion_by_modality(c, now - timedelta(hours=24), now + timedelta(minutes=1))
    both = [p for p in _recent(posts, now) if p.text_sentiment and p.image_sentiment]
    assert out["both"] == len(both)
    assert out["agree_sentiment"] == sum(p.text_sentiment == p.image_sentiment for p in both)
    assert out["agree_emotion"] == len(both)


def test_top_hashtags_orders(db) -> None:
    engine, posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        by_volume = q.top_hashtags(c, start, end, 10)
        positive = q.top_hashtags(c, start, end, 2, order="positive")
        negative = q.top_hashtags(c, start, end, 1, order="negative", min_volume=3)
    counts: dict[str, int] = {}
    for p in _recent(posts, now):
        for t in p.hashtags:
            counts[t] = counts.get(t, 0) + 1
    assert [(r["hashtag"], r["volume"]) for r in by_volume] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [r["hashtag"] for r in positive] == ["sun", "cats"]
    assert negative[0]["hashtag"] == "rain" and negative[0]["negative"] == 5
    cats = next(r for r in by_volume if r["hashtag"] == "cats")
    sel = [p for p in _recent(posts, now) if "cats" in p.hashtags]
    assert cats["mean_score"] == pytest.approx(sum(p.score for p in sel) / len(sel))


def test_hashtag_movers_against_previous_period(db) -> None:
    engine, _posts, now = db
    with engine.connect() as c:
        rows = q.hashtag_movers(c, now - timedelta(hours=24), now + timedelta(minutes=1), 10)
    by_tag = {r["hashtag"]: r for r in rows}
    assert by_tag["old"]["volume"] == 0 and by_tag["old"]["previous"] == 4 and by_tag["old"]["change"] == -4
    assert by_tag["cats"]["volume"] == 6 and by_tag["cats"]["previous"] == 0
    assert by_tag["news"]["volume"] == 4 and by_tag["news"]["previous"] == 3
    assert by_tag["old"]["mean_score"] is None
    changes = [abs(r["change"]) for r in rows]
    assert changes == sorted(changes, reverse=True)


def test_sparklines(db) -> None:
    engine, _posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        rows = q.hashtag_sparklines(c, ["cats", "rain", "nope"], start, end, "minute")
        assert q.hashtag_sparklines(c, [], start, end, "minute") == []
    assert sum(r["volume"] for r in rows if r["hashtag"] == "cats") == 6
    assert sum(r["volume"] for r in rows if r["hashtag"] == "rain") == 5
    assert {r["hashtag"] for r in rows} == {"cats", "rain"}


def test_recent_posts_filters(db) -> None:
    engine, posts, _now = db
    with engine.connect() as c:
        newest = q.recent_posts(c, 5)
        negative = q.recent_posts(c, 50, sentiment="negative")
        joy_cats = q.recent_posts(c, 50, emotion="joy", hashtag="#CATS")
        confident = q.recent_posts(c, 50, min_confidence=0.85)
    assert [r["id"] for r in newest] == ["p00", "p01", "p02", "p03", "p04"]
    assert newest[0]["text"].startswith("<script>")
    assert newest[0]["thumbnail"] and newest[0]["modality_confidence"]["image"] == pytest.approx(0.6)
    assert newest[2]["modality_confidence"]["image"] is None  # text-only
    assert len(negative) == 7 and all(r["sentiment"] == "negative" for r in negative)
    assert {r["id"] for r in joy_cats} == {p.id for p in posts if p.emotion == "joy" and "cats" in p.hashtags}
    assert {r["id"] for r in confident} == {p.id for p in posts if p.confidence >= 0.85}


def test_get_post(db) -> None:
    engine, _, _ = db
    with engine.connect() as c:
        post = q.get_post(c, "p15")
        assert q.get_post(c, "' OR 1=1 --") is None
    assert post["hashtags"] == ["news", "rain"]
    assert post["sentiment_probs"]["negative"] == pytest.approx(0.92)
    assert set(post["emotion_probs"]) == set(EMOTIONS)
    assert post["modalities"]["text"]["sentiment"]["negative"] == pytest.approx(0.92)


def test_alerts_and_pipeline(db) -> None:
    engine, posts, now = db
    with engine.connect() as c:
        rows = q.alerts(c, now - timedelta(hours=1), 10)
        later = q.alerts(c, now - timedelta(minutes=20), 10)
        stats = q.pipeline_stats(c, now - timedelta(hours=24), now + timedelta(minutes=1))
    assert [r["hashtag"] for r in rows] == ["cats", "rain"] and [r["hashtag"] for r in later] == ["cats"]
    recent = _recent(posts, now)
    proc = stats["processing"]
    assert proc["processed"] == len(recent)
    assert proc["cache_hit_rate"] == pytest.approx(sum(p.cached for p in recent) / len(recent))
    lat = sorted(p.latency_ms for p in recent)  # 10, 12, ... 48
    assert proc["p50"] == pytest.approx(29.0)
    assert proc["p95"] == pytest.approx(lat[18] + 0.05 * (lat[19] - lat[18]))
    assert proc["p99"] == pytest.approx(lat[18] + 0.81 * (lat[19] - lat[18]))
    assert sum(r["processed"] for r in stats["throughput"]) == len(recent)
    assert stats["dead_letters"]["count"] == 3
    assert stats["dead_letters"]["latest"][0]["reason"].startswith("image.url scheme")
    assert [m["model_version"] for m in stats["models"]] == ["pack-1"]


def test_search_hashtags_binds_user_input(db) -> None:
    engine, _, _ = db
    with engine.connect() as c:
        assert [r["hashtag"] for r in q.search_hashtags(c, "#Ca")] == ["cats"]
        assert [r["hashtag"] for r in q.search_hashtags(c, "")][:2] == ["news", "cats"]  # 7 (3 older) vs 6
        for evil in ("%", "_ats", "' OR '1'='1", "cats'; DROP TABLE post_hashtags; --", "\\", "ca%"):
            assert q.search_hashtags(c, evil) == []
        assert q.top_hashtags(c, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC), 1)  # table still there


def test_empty_database(db_url: str) -> None:
    lib = dashboard_seed
    engine = create_engine(db_url)
    lib.create_schema(engine)
    now = datetime.now(UTC)
    with engine.connect() as c:
        assert q.has_any_posts(c) is False
        assert q.sentiment_over_time(c, now - timedelta(days=1), now, "hour") == []
        assert q.sentiment_summary(c, now - timedelta(days=1), now)["volume"] == 0
        stats = q.pipeline_stats(c, now - timedelta(days=1), now)
        assert stats["processing"]["processed"] == 0 and stats["processing"]["p50"] is None
        assert stats["dead_letters"] == {"count": 0, "latest": []}
        assert q.data_extent(c)["n"] == 0
    engine.dispose()


def test_each_query_is_one_statement_with_bound_parameters(db) -> None:
    """Every chart query is one aggregate statement (after at most one summary-table check); user strings never
    appear in the SQL text."""
    engine, _, now = db
    statements: list[tuple[str, object]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    marker = "zz'marker"
    start, end = now - timedelta(hours=24), now
    calls = [
        lambda c: q.sentiment_over_time(c, start, end, "hour", hashtags=[marker]),
        lambda c: q.emotion_over_time(c, start, end, "hour", "text", hashtags=[marker]),
        lambda c: q.emotion_by_modality(c, start, end, hashtags=[marker]),
        lambda c: q.top_hashtags(c, start, end, 5, "negative", 2),
        lambda c: q.hashtag_movers(c, start, end, 5),
        lambda c: q.hashtag_sparklines(c, [marker], start, end, "hour"),
        lambda c: q.recent_posts(c, 5, "negative", "anger", marker, 0.5),
        lambda c: q.get_post(c, marker),
        lambda c: q.search_hashtags(c, marker),
        lambda c: q.alerts(c, start, 5),
        lambda c: q.flag_rates(c, start, end, "hour"),
        lambda c: q.recent_posts(c, 5, hashtag=marker, uncertain_only=True, conflict_only=True),
    ]
    with engine.connect() as c:
        for call in calls:
            statements.clear()
            call(c)
            checks = [sql for sql, _ in statements if "p0_0" in sql]
            assert len(checks) <= 1 and len(statements) - len(checks) == 1
            assert not any("marker" in sql for sql, _ in statements)


# ------------------------------------------------------------------ trend windows vs predictions


@pytest.fixture
def windowed(db_url: str, fx):
    """(engine, t0): 300 posts over ~2.9 days written like the worker does (trend windows included).

    Posts come in pairs 23.4 s apart, so many minutes hold two posts, at off-minute seconds.
    """
    from storage.engine import make_engine
    from storage.migrate import upgrade
    from storage.repository import upsert_predictions

    upgrade(db_url)
    engine = make_engine(db_url)
    t0 = datetime(2026, 5, 1, 0, 0, 7, 250_000, tzinfo=UTC)
    records = []
    for i in range(300):
        created = t0 + timedelta(seconds=(i // 2) * 1700 + (i % 2) * 23.4)
        tags = [f"t{i % 5}", "all"] if i % 3 else [f"t{i % 7}"]
        records.append(fx.flagged(fx.make_record(i, image=i % 2 == 0, text=i % 4 != 0, hashtags=tags,
                                                 created_at=created), uncertain=i % 3 == 0, conflict=i % 5 == 1))
    upsert_predictions(engine, records, window_s=60)
    yield engine, t0
    engine.dispose()


def _same(a: object, b: object) -> None:
    """Equal, with floats to 1e-6 (trend windows store mean scores rounded to 6 digits)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (a, b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6)
    else:
        assert a == b


def _window_calls(t0: datetime) -> dict[str, object]:
    # Unaligned ends that cut through two-post minutes (posts at t0 + k*1700 s and 23.4 s later).
    start = t0 + timedelta(seconds=10 * 1700 + 11)
    end = t0 + timedelta(seconds=120 * 1700 + 3.5)
    mid = start + timedelta(hours=24)  # a 24 h range with data in the previous period too
    return {
        "over_time_hour": lambda c: q.sentiment_over_time(c, start, end, "hour"),
        "over_time_day_tag": lambda c: q.sentiment_over_time(c, start, end, "day", ["#T1"]),
        "over_time_minute_long": lambda c: q.sentiment_over_time(c, start, end, "minute"),
        "over_time_two_tags": lambda c: q.sentiment_over_time(c, start, end, "hour", ["t1", "all"]),
        "summary": lambda c: q.sentiment_summary(c, start, end),
        "summary_tag": lambda c: q.sentiment_summary(c, start, end, ["all"]),
        "emotions_fused": lambda c: q.emotion_over_time(c, start, end, "hour"),
        "emotions_fused_tag": lambda c: q.emotion_over_time(c, start, end, "day", "fused", ["t2"]),
        "emotions_text": lambda c: q.emotion_over_time(c, start, end, "hour", "text"),
        "top_volume": lambda c: q.top_hashtags(c, start, end, 10),
        "top_positive": lambda c: q.top_hashtags(c, start, end, 10, "positive", 3),
        "top_negative": lambda c: q.top_hashtags(c, start, end, 10, "negative", 3),
        "movers": lambda c: q.hashtag_movers(c, mid, end, 10),
        "sparklines": lambda c: q.hashtag_sparklines(c, ["t1", "all", "none"], start, end, "hour"),
        "search": lambda c: q.search_hashtags(c, "", 50, start, end),
        "search_prefix": lambda c: q.search_hashtags(c, "#T", 50, start, end),
        "search_all_time": lambda c: q.search_hashtags(c, "t", 50),
        "emotions_fused_day": lambda c: q.emotion_over_time(c, start, end, "day"),
        "emotions_image": lambda c: q.emotion_over_time(c, start, end, "hour", "image"),
        "emotions_text_minute_long": lambda c: q.emotion_over_time(c, start, end, "minute", "text"),
        "by_modality": lambda c: q.emotion_by_modality(c, start, end),
        "pipeline_minute": lambda c: q.pipeline_stats(c, start, end),
        "pipeline_hour": lambda c: q.pipeline_stats(c, start, end, "hour"),
        "pipeline_day": lambda c: q.pipeline_stats(c, start, end, "day"),
        "flag_rates_hour": lambda c: q.flag_rates(c, start, end, "hour"),
        "flag_rates_day": lambda c: q.flag_rates(c, start, end, "day"),
        "flag_rates_minute_long": lambda c: q.flag_rates(c, start, end, "minute"),
    }


SUMMARY_ROWS = ("TrendWindowRow", "TrendRollupRow", "ModalityWindowRow", "PipelineWindowRow")


def test_trend_windows_and_predictions_give_the_same_numbers(windowed) -> None:
    """Each long-range read answered from the summary tables (daily and hourly rollups, 60 s windows, partial
    minutes from predictions) equals the same read from predictions alone."""
    from storage import tables
    from storage import windowed as wd

    engine, t0 = windowed
    calls = _window_calls(t0)
    start, end = t0 + timedelta(seconds=10 * 1700 + 11), t0 + timedelta(seconds=120 * 1700 + 3.5)
    with engine.connect() as c:
        plan = q._trend_plan(c, [start, end], None)
        assert plan is not None and set(plan.spans) == {wd.DAY, wd.HOUR, wd.MINUTE} and plan.edges
        assert set(q._trend_plan(c, [start, end], "hour").spans) == {wd.HOUR, wd.MINUTE}
        assert wd.plan_for(c, [start, end], "hour", wd.MODALITY_CHECKS) is not None
        assert wd.plan_for(c, [start, end], "hour", wd.PIPELINE_CHECKS) is not None
        from_windows = {name: call(c) for name, call in calls.items()}
    with engine.begin() as c:
        for row in SUMMARY_ROWS:
            c.execute(getattr(tables, row).__table__.delete())
    with engine.connect() as c:
        assert q._trend_plan(c, [start, end], "hour") is None  # no summaries: predictions
        assert wd.plan_for(c, [start, end], "hour", wd.MODALITY_CHECKS) is None
        assert wd.plan_for(c, [start, end], "hour", wd.PIPELINE_CHECKS) is None
        from_predictions = {name: call(c) for name, call in calls.items()}
    for name in calls:
        assert from_windows[name], name  # every call has data to compare
        _same(from_windows[name], from_predictions[name])
    summary = from_windows["summary"]
    assert summary["volume"] == sum(r["volume"] for r in from_windows["over_time_hour"])
    assert {r["hashtag"] for r in from_windows["search_prefix"]} == {f"t{i}" for i in range(7)}


def test_windows_missing_at_an_end_fall_back_to_predictions(windowed) -> None:
    """Posts loaded without their summaries (here: the newest minute's windows, and the rollups and modality and
    pipeline windows holding it, removed) are still counted."""
    from storage import windowed as wd
    from storage.tables import ModalityWindowRow, PipelineWindowRow, TrendRollupRow, TrendWindowRow

    engine, t0 = windowed
    start, end = t0, t0 + timedelta(days=4)
    with engine.connect() as c:
        expected = q.sentiment_summary(c, start, end)
        pipeline = q.pipeline_stats(c, start, end, "hour")
        emotions = q.emotion_by_modality(c, start, end)
    tw, tr = TrendWindowRow.__table__, TrendRollupRow.__table__
    tm, tp = ModalityWindowRow.__table__, PipelineWindowRow.__table__
    with engine.begin() as c:
        last = as_utc(c.execute(select(func.max(tw.c.window_start))).scalar_one())
        c.execute(tw.delete().where(tw.c.window_start == last))
        c.execute(tr.delete().where(tr.c.window_start.in_([window_start(last, wd.HOUR), window_start(last, wd.DAY)])))
        c.execute(tm.delete().where(tm.c.window_start == last))
        c.execute(tp.delete().where(tp.c.window_start == select(func.max(tp.c.window_start)).scalar_subquery()))
    with engine.connect() as c:
        assert q._trend_plan(c, [start, end], None) is None
        assert wd.plan_for(c, [start, end], "hour", wd.MODALITY_CHECKS) is None
        assert wd.plan_for(c, [start, end], "hour", wd.PIPELINE_CHECKS) is None
        assert q.sentiment_summary(c, start, end) == expected
        _same(q.pipeline_stats(c, start, end, "hour"), pipeline)
        assert q.emotion_by_modality(c, start, end) == emotions
        assert expected["volume"] == 300 == pipeline["processing"]["processed"]


def test_window_split_of_a_range() -> None:
    from storage.windowed import MINUTE, Plan, split

    t = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    plan = split([t + timedelta(seconds=30), t + timedelta(minutes=10, seconds=5)], (MINUTE,))
    assert plan.spans == {MINUTE: [(t + timedelta(minutes=1), t + timedelta(minutes=10))]}
    assert plan.edges == [(t + timedelta(seconds=30), t + timedelta(minutes=1)),
                          (t + timedelta(minutes=10), t + timedelta(minutes=10, seconds=5))]
    # an interior cut inside a minute leaves that minute to predictions
    plan = split([t, t + timedelta(minutes=5, seconds=1), t + timedelta(minutes=9)], (MINUTE,))
    assert plan.spans == {MINUTE: [(t, t + timedelta(minutes=5)), (t + timedelta(minutes=6), t + timedelta(minutes=9))]}
    assert plan.edges == [(t + timedelta(minutes=5), t + timedelta(minutes=6))]
    assert split([t, t + timedelta(seconds=59)], (MINUTE,)) == Plan({}, [(t, t + timedelta(seconds=59))])


def test_split_takes_days_then_hours_then_minutes() -> None:
    from storage.windowed import DAY, HOUR, MINUTE, levels_for, split

    day = datetime(2026, 5, 2, tzinfo=UTC)
    start = day - timedelta(hours=2, minutes=3, seconds=10)  # 21:56:50 the day before
    end = day + timedelta(days=2, hours=1, minutes=2, seconds=3)
    plan = split([start, end], (DAY, HOUR, MINUTE))
    assert plan.spans == {
        DAY: [(day, day + timedelta(days=2))],
        HOUR: [(day - timedelta(hours=2), day), (day + timedelta(days=2), day + timedelta(days=2, hours=1))],
        MINUTE: [(day - timedelta(hours=2, minutes=3), day - timedelta(hours=2)),
                 (day + timedelta(days=2, hours=1), day + timedelta(days=2, hours=1, minutes=2))],
    }
    assert plan.edges == [(start, day - timedelta(hours=2, minutes=3)),
                          (day + timedelta(days=2, hours=1, minutes=2), end)]
    covered = sorted([s for spans in plan.spans.values() for s in spans] + plan.edges)
    assert covered[0][0] == start and covered[-1][1] == end
    assert all(a[1] == b[0] for a, b in pairwise(covered))  # no gap, no overlap
    assert levels_for("hour", (DAY, HOUR, MINUTE)) == (HOUR, MINUTE) and levels_for(None, (DAY,)) == (DAY,)
    # no summary row straddles a cut (the movers' period boundary): off-minute cuts sit between edges
    mid = day + timedelta(hours=5, seconds=1)
    plan = split([start, mid, end], (DAY, HOUR, MINUTE))
    for spans in plan.spans.values():
        assert not any(a < mid < b for a, b in spans)
    assert any(a < mid < b for a, b in plan.edges)  # predictions rows are posts: merging edges is harmless


def test_recent_posts_flag_filters_and_evidence(db) -> None:
    engine, posts, _now = db
    with engine.connect() as c:
        uncertain = q.recent_posts(c, 50, uncertain_only=True)
        conflict = q.recent_posts(c, 50, conflict_only=True)
        both = q.recent_posts(c, 50, uncertain_only=True, conflict_only=True)
        newest = q.recent_posts(c, 3)
    assert {r["id"] for r in uncertain} == {p.id for p in posts if p.uncertain} == {"p05", "p08", "p09", "p10", "p11"}
    assert {r["id"] for r in conflict} == {p.id for p in posts if p.conflict} == {"p00", "p15"}
    assert both == [] and all(r["uncertain"] and not r["conflict"] for r in uncertain)
    ev = newest[0]["evidence"]  # p00: text and image, conflicting
    assert ev["text"] == {"label": "positive", "confidence": pytest.approx(0.9)}
    assert ev["image"] == {"label": "neutral", "confidence": pytest.approx(0.6), "faces": 1}
    assert ev["fused"] == {"label": "positive", "confidence": pytest.approx(0.9)}
    assert newest[2]["evidence"]["image"] is None and newest[2]["evidence"]["text"]["label"] == "positive"


def test_flag_rates_and_exclude_uncertain(db) -> None:
    engine, posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    recent = _recent(posts, now)
    sure = [p for p in recent if not p.uncertain]
    with engine.connect() as c:
        rates = q.flag_rates(c, start, end, "minute")
        all_rows = q.sentiment_over_time(c, start, end, "hour")
        rows = q.sentiment_over_time(c, start, end, "hour", exclude_uncertain=True)
        summary = q.sentiment_summary(c, start, end, exclude_uncertain=True)
        tagged = q.sentiment_summary(c, start, end, ["news"], exclude_uncertain=True)
    assert sum(r["volume"] for r in rates) == 20
    assert sum(r["uncertain"] for r in rates) == sum(p.uncertain for p in recent) == 5
    assert sum(r["conflict"] for r in rates) == sum(p.conflict for p in recent) == 2
    for r in rates:
        assert r["uncertain_rate"] == pytest.approx(r["uncertain"] / r["volume"])
        assert r["conflict_rate"] == pytest.approx(r["conflict"] / r["volume"])
    assert sum(r["volume"] for r in all_rows) == 20
    assert sum(r["volume"] for r in rows) == summary["volume"] == len(sure) == 15
    for s in SENTIMENTS:
        assert summary[s] == sum(p.sentiment == s for p in sure)
    assert summary["mean_score"] == pytest.approx(sum(p.score for p in sure) / len(sure))
    assert tagged["volume"] == sum(1 for p in sure if "news" in p.hashtags)


def test_flag_rates_from_modality_windows_equal_predictions(db) -> None:
    """With the worker's summaries in place, hour buckets read modality_windows: the same counts."""
    from storage.engine import make_engine
    from storage.repository import recompute_trend_windows

    engine, _posts, now = db
    start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
    with engine.connect() as c:
        before = q.flag_rates(c, start, end, "hour")
    eng = make_engine(engine.url.render_as_string(hide_password=False))
    recompute_trend_windows(eng, None)
    eng.dispose()
    reads: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: reads.append(a[2]))
    with engine.connect() as c:
        after = q.flag_rates(c, start, end, "hour")
    assert any("modality_windows" in sql for sql in reads)
    assert after == before and sum(r["uncertain"] for r in after) == 5
