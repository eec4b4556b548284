"""Commit timing on a real PostgreSQL and Tansu: the trigger reports commits (not inserts), and ``drive`` keeps the
closed-loop backlog bounded while every post sent in the window gets a latency."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from moodstream.schema import Modalities, ModalityOut, Post, Prediction, emotion_out, sentiment_out
from ops.bench.commits import CommitLog, install_trigger
from ops.bench.drive import Load, drive
from storage.records import PostRecord

pytestmark = pytest.mark.integration


def _record(post: Post) -> PostRecord:
    s, e = (0.1, 0.2, 0.7), (0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)
    pred = Prediction(post_id=post.id, model_version="t", created_at=post.created_at,
                      processed_at=datetime.now(UTC), sentiment=sentiment_out(s), emotion=emotion_out(e),
                      modalities=Modalities(text=ModalityOut(sentiment=sentiment_out(s).probs,
                                                             emotion=emotion_out(e).probs)),
                      fusion="late", latency_ms=1.0)
    return PostRecord(post=post, prediction=pred)


@pytest.fixture
def bench_db(pg_url: str) -> tuple[Any, str]:
    from sqlalchemy.engine import make_url

    from storage.engine import make_engine
    from storage.migrate import upgrade

    upgrade(pg_url)
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    install_trigger(dsn)
    return make_engine(pg_url), dsn


def test_a_row_is_reported_at_commit_not_at_insert(bench_db: tuple[Any, str]) -> None:
    from sqlalchemy import text

    from storage.repository import upsert_predictions

    engine, dsn = bench_db
    post = Post(id="c1", created_at=datetime.now(UTC), text="hello")

    async def scenario() -> tuple[bool, bool, float]:
        log = await CommitLog().start(dsn)
        try:
            log.mark_sent("c1")
            log.mark_sent("never")
            with engine.begin() as conn:  # rolled back: no notification may arrive
                conn.execute(text("INSERT INTO posts (id, created_at, has_image) VALUES ('c1', now(), false)"))
                conn.rollback()
            await log.wait_change(1.0)
            seen_after_rollback = "c1" in log.committed
            await asyncio.to_thread(upsert_predictions, engine, [_record(post)])
            for _ in range(50):
                if "c1" in log.committed:
                    break
                await log.wait_change(0.2)
            return seen_after_rollback, "c1" in log.committed, float(log.latencies_ms(["c1", "never"])[0])
        finally:
            await log.stop()

    rolled_back_seen, committed_seen, latency = asyncio.run(scenario())
    assert not rolled_back_seen
    assert committed_seen
    assert latency > 0


def test_closed_loop_drive_bounds_the_backlog_and_times_every_post(bench_db: tuple[Any, str], broker: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from moodstream.schema import parse_post
    from storage.repository import upsert_predictions
    from streams.topics import create_topics

    engine, dsn = bench_db
    topic = "bench-drive-test"
    create_topics(broker, [topic], 1)
    window = 5
    outstanding_seen: list[int] = []

    def posts():
        k = 0
        while True:
            yield {"id": f"d{k}", "text": f"post {k}"}
            k += 1

    async def consumer(log: CommitLog, stop: asyncio.Event) -> None:
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id="bench-drive-test",
                             auto_offset_reset="earliest")
        await c.start()
        try:
            while not stop.is_set():
                batch = await c.getmany(timeout_ms=200)
                for msgs in batch.values():
                    for m in msgs:
                        outstanding_seen.append(log.outstanding)
                        post = parse_post(m.value)
                        await asyncio.sleep(0.02)  # a slow consumer
                        await asyncio.to_thread(upsert_predictions, engine, [_record(post)])
        finally:
            await c.stop()

    async def scenario() -> dict[str, Any]:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        log = await CommitLog().start(dsn)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer(log, stop))
        try:
            return await drive(producer, topic, posts(), log, Load(window=window), warm_s=0.5, seconds=3.0,
                               label="test", first_timeout_s=60, drain_s=30)
        finally:
            stop.set()
            await task
            await log.stop()
            await producer.stop()

    row = asyncio.run(scenario())
    assert row["committed"] > 0 and row["posts_per_s"] > 0
    assert row["not_committed"] == 0 and row["sent_in_window"] > 0
    assert row["p50_ms"] is not None and row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert max(outstanding_seen) <= window
    assert json.dumps(row)  # JSON-serialisable, as --json writes it
