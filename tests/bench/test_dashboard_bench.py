"""Benchmark: every dashboard page's queries on 1,000,000 predictions in PostgreSQL (prints figures; no asserts
on time). Run with ``.venv/bin/pytest -m bench -s tests/bench/test_dashboard_bench.py``.

The posts are spread evenly over the last 30 days (about 33,000 a day), each with one or two of 600 hashtags;
``trend_windows`` holds their per-minute windows (global and per hashtag) and the summary tables of
``storage.rollups`` (hourly/daily rollups, per-minute modality and pipeline windows) what the stream worker would
have written.
A page's time is the sum of its queries' times, warm (median of 3 runs after one cold run), the way the
dashboard runs them on a cache miss, over connections set up like the dashboard's (``queries.custom_plans``).

``MOODSTREAM_BENCH_REUSE=1`` keeps the seeded database (``moodstream_bench`` on the test server) between runs:
it is migrated to head (new migrations backfill their tables) and seeded only when it does not hold the bench's
rows; times are then measured relative to the data's own "now". ``MOODSTREAM_BENCH_DETAIL=1`` also prints each
query's warm time.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from moodstream.labels import EMOTIONS, SENTIMENTS
from storage import queries as q
from storage.rollups import rebuild_summaries
from testkit import dashboard_seed

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]
REUSE_DB = "moodstream_bench"

N = 1_000_000
SPAN_DAYS = 30
TAGS = 300
SENT_PROBS = '{"negative": 0.1, "neutral": 0.2, "positive": 0.7}'
EMO_PROBS = ('{"anger": 0.05, "disgust": 0.05, "fear": 0.05, "joy": 0.6, "sadness": 0.1, "surprise": 0.1, '
             '"neutral": 0.05}')
MODS = ('{"text": {"sentiment": ' + SENT_PROBS + ', "emotion": ' + EMO_PROBS + ', "faces": null}, '
        '"image": {"sentiment": ' + SENT_PROBS + ', "emotion": ' + EMO_PROBS + ', "faces": 1}}')

_WINDOW = "to_timestamp(floor(extract(epoch FROM p.created_at) / 60) * 60)"
_WINDOW_AGG = (f"count(*), {', '.join(f'count(*) FILTER (WHERE p.sentiment = {s!r})' for s in SENTIMENTS)}, "
               "round(avg(p.sentiment_score)::numeric, 6)::float8, json_build_object("
               + ", ".join(f"{e!r}, count(*) FILTER (WHERE p.emotion = {e!r})" for e in EMOTIONS) + "), now()")
# The worker's per-minute windows (storage.trends), derived from the generated predictions in one statement.
TREND_WINDOWS_SQL = f"""
    INSERT INTO trend_windows (window_start, hashtag, window_s, volume, negative, neutral, positive, mean_score,
                               emotions, updated_at)
    SELECT {_WINDOW}, '', 60, {_WINDOW_AGG} FROM predictions p GROUP BY 1
    UNION ALL
    SELECT {_WINDOW}, h.hashtag, 60, {_WINDOW_AGG}
    FROM post_hashtags h JOIN predictions p ON p.post_id = h.post_id GROUP BY 1, h.hashtag"""

SEED_SQL = [
    f"""INSERT INTO posts (id, created_at, text, author, lang, source, has_image)
        SELECT 'b' || g, now() - (g * interval '{SPAN_DAYS * 86400 / N} seconds'), 'bench caption #tag' || (g % {TAGS}),
               'u' || (g % 5000), 'en', 'bench', g % 3 <> 0
        FROM generate_series(1, {N}) g""",
    f"""INSERT INTO predictions (post_id, created_at, processed_at, model_version, fusion, sentiment, sentiment_score,
                                 emotion, sentiment_probs, emotion_probs, text_sentiment, text_emotion,
                                 image_sentiment, image_emotion, modalities, faces, confidence, latency_ms, cached)
        SELECT 'b' || g, ts, ts + interval '1 second', 'pack-1', 'late',
               (ARRAY['negative','neutral','positive'])[1 + (g * 7) % 3], ((g * 7919) % 2001 - 1000) / 1000.0,
               (ARRAY['anger','disgust','fear','joy','sadness','surprise','neutral'])[1 + (g * 13) % 7],
               CAST('{SENT_PROBS}' AS json), CAST('{EMO_PROBS}' AS json),
               (ARRAY['negative','neutral','positive'])[1 + (g * 7) % 3],
               (ARRAY['anger','disgust','fear','joy','sadness','surprise','neutral'])[1 + (g * 13) % 7],
               CASE WHEN g % 3 <> 0 THEN (ARRAY['negative','neutral','positive'])[1 + (g * 11) % 3] END,
               CASE WHEN g % 3 <> 0 THEN (ARRAY['anger','disgust','fear','joy','sadness','surprise','neutral'])
                                         [1 + (g * 17) % 7] END,
               CAST('{MODS}' AS json), CASE WHEN g % 3 <> 0 THEN g % 4 END, 0.34 + (g % 66) / 100.0,
               5 + (g * 31) % 200 + random(), g % 5 = 0
        FROM (SELECT g, now() - (g * interval '{SPAN_DAYS * 86400 / N} seconds') AS ts
              FROM generate_series(1::bigint, {N}) g) s""",
    f"""INSERT INTO post_hashtags (post_id, hashtag, created_at)
        SELECT id, 'tag' || (substr(id, 2)::int % {TAGS}), created_at FROM posts WHERE source = 'bench'
        UNION ALL
        SELECT id, 'topic' || ((substr(id, 2)::int * 7) % {TAGS}), created_at FROM posts
        WHERE source = 'bench' AND substr(id, 2)::int % 2 = 0""",
    """INSERT INTO dead_letters (source_key, post_id, stage, reason, failed_at)
        SELECT 'posts:0:' || g, NULL, 'validate', 'not valid JSON: Expecting value', now() - g * interval '1 minute'
        FROM generate_series(1, 5000) g""",
    TREND_WINDOWS_SQL,
    "VACUUM ANALYZE",  # what autovacuum does to a table after bulk inserts (sets the visibility map)
]


def pages(now: datetime, span: timedelta, bucket: str) -> dict[str, list[Callable[[Connection], object]]]:
    start, end = now - span, now
    return {
        "Trends": [lambda c: q.sentiment_summary(c, start, end), lambda c: q.sentiment_over_time(c, start, end, bucket),
                   lambda c: q.search_hashtags(c, "", 50, start, end),
                   lambda c: q.flag_rates(c, start, end, bucket)],
        "Trends excluding uncertain": [lambda c: q.sentiment_summary(c, start, end, exclude_uncertain=True),
                                       lambda c: q.sentiment_over_time(c, start, end, bucket,
                                                                       exclude_uncertain=True)],
        "Trends #tag7": [lambda c: q.sentiment_summary(c, start, end, ["tag7"]),
                         lambda c: q.sentiment_over_time(c, start, end, bucket, ["tag7"])],
        "Emotions": [*(lambda c, m=m: q.emotion_over_time(c, start, end, bucket, m)
                       for m in ("fused", "text", "image")),
                     lambda c: q.emotion_by_modality(c, start, end)],
        "Hashtags": [*(lambda c, o=o: q.top_hashtags(c, start, end, 10, o, 3)
                       for o in ("volume", "positive", "negative")),
                     lambda c: q.hashtag_movers(c, start, end, 10),
                     lambda c: q.hashtag_sparklines(c, [f"tag{i}" for i in range(20)], start, end, bucket)],
        "Posts": [lambda c: q.recent_posts(c, 24), lambda c: q.recent_posts(c, 24, "negative", "anger", "tag7", 0.8),
                  lambda c: q.get_post(c, "b123456"), lambda c: q.recent_posts(c, 24, uncertain_only=True),
                  lambda c: q.recent_posts(c, 24, conflict_only=True)],
        "Alerts": [lambda c: q.alerts(c, start, 200)],
        "Pipeline": [lambda c: q.pipeline_stats(c, start, end, bucket)],
        "search 'ta'": [lambda c: q.search_hashtags(c, "ta", 50)],
    }


def _time(conn: Connection, calls: list[Callable[[Connection], object]]) -> tuple[float, float, list[float]]:
    """Cold time, median warm time, and each call's median warm time."""
    cold = time.perf_counter()
    for call in calls:
        call(conn)
    cold = time.perf_counter() - cold
    warm, each = [], [[] for _ in calls]
    for _ in range(3):
        t = time.perf_counter()
        for i, call in enumerate(calls):
            t0 = time.perf_counter()
            call(conn)
            each[i].append(time.perf_counter() - t0)
        warm.append(time.perf_counter() - t)
    return cold, statistics.median(warm), [statistics.median(e) for e in each]


@pytest.fixture
def bench_url(request: pytest.FixtureRequest) -> str:
    """A private database (dropped afterwards), or the kept ``moodstream_bench`` with MOODSTREAM_BENCH_REUSE."""
    if not os.environ.get("MOODSTREAM_BENCH_REUSE"):
        return request.getfixturevalue("pg_url")
    admin = make_url(os.environ.get("MOODSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": REUSE_DB}).first():
            c.execute(text(f'CREATE DATABASE "{REUSE_DB}"'))
    engine.dispose()
    return admin.set(database=REUSE_DB).render_as_string(hide_password=False)


def _seed(engine) -> None:
    t = time.perf_counter()
    with engine.begin() as c:
        for sql in SEED_SQL[:-1]:
            c.execute(text(sql))
        rebuild_summaries(c)  # what the worker's upserts keep beside the windows
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(SEED_SQL[-1]))
    print(f"\nseeded in {time.perf_counter() - t:.1f} s")


def test_dashboard_queries_on_a_million_predictions(bench_url: str) -> None:
    engine = create_engine(bench_url)
    dashboard_seed.create_schema(engine)
    with engine.connect() as c:
        seeded = c.execute(text("SELECT count(*) FROM predictions")).scalar() == N
    if not seeded:
        _seed(engine)
    else:  # a kept database: tables a new migration just backfilled get the statistics autovacuum would give them
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE trend_rollups, modality_windows, pipeline_windows"))
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM predictions")).scalar()
        tags = c.execute(text("SELECT count(*) FROM post_hashtags")).scalar()
        windows = c.execute(text("SELECT count(*), sum(volume) FILTER (WHERE hashtag = '') FROM trend_windows")).one()
        rollups = c.execute(text("SELECT count(*), sum(volume) FILTER (WHERE hashtag = '' AND window_s = 86400) "
                                 "FROM trend_rollups")).one()
        modality = c.execute(text("SELECT sum(volume) FROM modality_windows")).scalar()
        pipeline = c.execute(text("SELECT sum(processed) FROM pipeline_windows")).scalar()
        last = c.execute(text("SELECT max(created_at) FROM predictions")).scalar()
    print(f"\n{n:,} predictions, {tags:,} hashtag rows, {windows[0]:,} trend windows, {rollups[0]:,} rollups"
          f"{' (reused)' if seeded else ''}")
    assert n == N == windows[1] == rollups[1] == modality == pipeline

    engine.dispose()
    engine = q.custom_plans(create_engine(bench_url))  # connections set up as the dashboard's engine sets them up
    now = last + timedelta(seconds=SPAN_DAYS * 86400 / N)  # the seed's "now" (its newest post is one step back)
    detail = bool(os.environ.get("MOODSTREAM_BENCH_DETAIL"))
    print(f"{'page':<14} {'range':>8} {'bucket':>7} {'cold s':>8} {'warm s':>8}")
    worst = 0.0
    with engine.connect() as conn:
        for label, span, bucket in (("24 h", timedelta(hours=24), "hour"), ("7 d", timedelta(days=7), "hour"),
                                    ("30 d", timedelta(days=30), "day"), ("1 h", timedelta(hours=1), "minute")):
            for page, calls in pages(now, span, bucket).items():
                cold, warm, each = _time(conn, calls)
                worst = max(worst, cold)
                print(f"{page:<14} {label:>8} {bucket:>7} {cold:>8.3f} {warm:>8.3f}"
                      + (f"   [{', '.join(f'{x:.3f}' for x in each)}]" if detail else ""))
    print(f"slowest page (cold): {worst:.3f} s")
    engine.dispose()
