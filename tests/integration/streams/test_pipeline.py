"""``streams.pipeline.Pipeline`` in-process, on the real Tansu broker, PostgreSQL and the committed models.

Each test drives ``process`` with batches of raw records, as the Faust agent would, and checks the report, the
stored rows, the dead letters and both output topics.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from moodstream.config import Settings
from ops.localhost import free_port
from storage.engine import make_engine
from storage.migrate import upgrade
from streams.classifier import make_client
from streams.pipeline import BatchReport, Pipeline
from streams.records import RawRecord
from streams.worker import build_pipeline
from testkit.stream_helpers import read_topic, rows, settings_from

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models() -> Any:
    """The real in-process model pipeline from the committed pack (loaded once for the module)."""
    from serving.pipeline import load_pipeline

    return load_pipeline(Settings(_env_file=None))


@pytest.fixture
def settings(stream_env: dict[str, str]) -> Settings:
    return settings_from(stream_env)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    upgrade(settings.database_url)
    eng = make_engine(settings.database_url, settings=settings)
    yield eng
    eng.dispose()


def _pipeline(settings: Settings, engine: Engine, classifier: Any) -> Pipeline:
    return build_pipeline(settings, classifier, engine=engine)


def _records(settings: Settings, values: list[bytes | None], first_offset: int = 0) -> list[RawRecord]:
    return [RawRecord(value=v, topic=settings.topic_posts, partition=0, offset=first_offset + i)
            for i, v in enumerate(values)]


def _post(post_id: str, text: str | None = None, image: bytes | None = None) -> bytes:
    body: dict[str, Any] = {"id": post_id, "created_at": datetime.now(UTC).isoformat()}
    if text is not None:
        body["text"] = text
    if image is not None:
        body["image"] = {"b64": base64.b64encode(image).decode()}
    return json.dumps(body).encode()


def _photo() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG")
    return buf.getvalue()


def _run(pipeline: Pipeline, records: list[RawRecord]) -> BatchReport:
    async def go() -> BatchReport:
        try:
            return await pipeline.process(records)
        finally:
            await pipeline.outputs.close()
            await pipeline.classifier.close()

    return asyncio.run(go())


def test_valid_and_rejected_posts(settings: Settings, engine: Engine, models: Any) -> None:
    pipe = _pipeline(settings, engine, make_client("inprocess", settings, models))
    values = [_post("p1", "What a wonderful morning, I love it #sun"),
              _post("p2", "This is terrible, I hate waiting #train"),
              _post("p3", "lunch", _photo()),
              _post("p4", None, _photo()),
              b"{not json",
              json.dumps({"id": "p6", "text": "no time"}).encode(),
              None]
    rep = _run(pipe, _records(settings, values))

    assert (rep.consumed, rep.persisted, rep.dead, rep.classified) == (7, 4, 3, 4)
    assert {d.stage for d in rep.dead_letters} == {"validate"}
    assert {r[0] for r in rows(engine, "SELECT post_id FROM predictions")} == {"p1", "p2", "p3", "p4"}
    labels = dict(rows(engine, "SELECT post_id, sentiment FROM predictions"))
    assert labels["p1"] == "positive" and labels["p2"] == "negative"
    assert len(rows(engine, "SELECT 1 FROM dead_letters")) == 3
    assert len(read_topic(settings.kafka_brokers, settings.topic_predictions, 4)) == 4
    dlq = read_topic(settings.kafka_brokers, settings.topic_dlq, 3)
    assert len(dlq) == 3 and all(json.loads(m.value)["stage"] == "validate" for m in dlq)


def test_cached_duplicated_and_replayed(settings: Settings, engine: Engine, models: Any) -> None:
    client = make_client("inprocess", settings, models)
    first = _run(_pipeline(settings, engine, client), _records(settings, [_post("a", "same words #x")]))
    assert (first.classified, first.cached) == (1, 0)

    pipe = _pipeline(settings, engine, make_client("inprocess", settings, models))  # a fresh worker, empty cache
    batch = [_post("b", "other words"), _post("c", "other words"),  # same content: classified once
             _post("d", "old copy"), _post("d", "new copy")]  # same id: the last copy wins
    rep = _run(pipe, _records(settings, batch, first_offset=10))
    assert (rep.classified, rep.deduplicated, rep.persisted) == (2, 1, 3)
    texts = dict(rows(engine, "SELECT id, text FROM posts"))
    assert texts["d"] == "new copy"

    # The same batch again (a redelivery after a crash): the cache answers, rows stay one per post.
    rep = _run(pipe, _records(settings, batch, first_offset=10))
    assert (rep.classified, rep.cached, rep.persisted) == (0, 3, 3)
    counts = rows(engine, "SELECT post_id, count(*) FROM predictions GROUP BY post_id")
    assert sorted(counts) == [("a", 1), ("b", 1), ("c", 1), ("d", 1)]


def test_classifier_down_dead_letters_every_post_with_the_reason(settings: Settings, engine: Engine) -> None:
    down = settings.model_copy(update={"serve_url": f"http://127.0.0.1:{free_port()}", "serve_retries": 0,
                                       "serve_outage_max_s": 0.0})
    pipe = _pipeline(down, engine, make_client("http", down))
    rep = _run(pipe, _records(down, [_post("x1", "hello"), _post("x2", "world")]))

    assert (rep.persisted, rep.dead) == (0, 2)
    assert all(d.stage == "classify" and "classification failed" in d.reason for d in rep.dead_letters)
    assert rows(engine, "SELECT count(*) FROM predictions") == [(0,)]
    stored = rows(engine, "SELECT stage, reason FROM dead_letters")
    assert len(stored) == 2 and all(stage == "classify" for stage, _ in stored)


def test_closed_trend_windows_are_published_as_stored(settings: Settings, engine: Engine, models: Any) -> None:
    """A closed minute's windows (global and per hashtag) go to the trends topic; late data for that minute, here
    through a second worker's pipeline, publishes its windows again as they are stored then."""
    minute = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)

    def post(pid: str, text: str, second: int) -> bytes:
        return json.dumps({"id": pid, "text": text,
                           "created_at": (minute + timedelta(seconds=second)).isoformat()}).encode()

    _run(_pipeline(settings, engine, make_client("inprocess", settings, models)),
         _records(settings, [post("t1", "Love this sunny day #sun #beach", 5), post("t2", "Hate the rain #rain", 9)]))
    first = [json.loads(m.value) for m in read_topic(settings.kafka_brokers, settings.topic_trends, 4)]
    assert {m["hashtag"]: m["volume"] for m in first} == {"": 2, "sun": 1, "beach": 1, "rain": 1}
    assert {m["window_start"] for m in first} == {minute.isoformat()}

    _run(_pipeline(settings, engine, make_client("inprocess", settings, models)),
         _records(settings, [post("t3", "More sun please #sun", 30)], first_offset=2))
    published = [json.loads(m.value) for m in read_topic(settings.kafka_brokers, settings.topic_trends, 8)]
    latest = {m["hashtag"]: m["volume"] for m in published}  # in publish order: the last copy wins
    assert len(published) == 8 and latest == {"": 3, "sun": 2, "beach": 1, "rain": 1}
