"""N posts of every kind through a real worker → exactly the valid ones stored once, the rest dead-lettered."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import pytest

from testkit.stream_helpers import publish, read_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def jpeg(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "JPEG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_valid_stored_once_invalid_dead_lettered(stream_env, worker_factory, image_server, db):
    now = datetime.now(UTC).isoformat()
    base_url, www = image_server
    (www / "sunny.jpg").write_bytes(jpeg((250, 220, 60)))
    bright, dark = jpeg((255, 230, 90)), jpeg((10, 10, 40))

    valid = [
        {"id": "text-pos", "created_at": now, "text": "I love this, wonderful day! #sun"},
        {"id": "text-neg", "created_at": now, "text": "This is awful and I hate it #rain"},
        {"id": "image-only", "created_at": now, "image": {"b64": b64(dark)}, "hashtags": ["night"]},
        {"id": "both", "created_at": now, "text": "great view #sun", "image": {"b64": b64(bright)}},
        {"id": "by-url", "created_at": now, "text": "from the web #sun", "image": {"url": f"{base_url}/sunny.jpg"}},
        {"id": "repost-1", "created_at": now, "text": "RT @amy: I love this, wonderful day! #sun"},
        {"id": "repost-2", "created_at": now, "text": "great   view #SUN", "image": {"b64": b64(bright)}},
    ]
    invalid = {  # raw value -> part of the reason
        b"not json at all": "not valid JSON",
        b"\xff\xfe\x00garbage": "UTF-8",
        b"": "empty message",
        b"[1, 2, 3]": "not an object",
        json.dumps({"created_at": now, "text": "no id"}).encode(): "'id'",
        json.dumps({"id": "no-time", "text": "hi"}).encode(): "created_at",
        json.dumps({"id": "bad-time", "created_at": "yesterday", "text": "hi"}).encode(): "created_at",
        json.dumps({"id": "empty", "created_at": now}).encode(): "no text and no image",
        json.dumps({"id": "bad-b64", "created_at": now, "image": {"b64": "***"}}).encode(): "base64",
        json.dumps({"id": "too-long", "created_at": now, "text": "x" * 10_001}).encode(): "longer than",
        json.dumps({"id": "extra", "created_at": now, "text": "hi", "likes": 3}).encode(): "unknown field",
        json.dumps({"id": "ftp", "created_at": now, "image": {"url": "ftp://x/y.jpg"}}).encode(): "scheme",
    }
    after_validation = {  # valid Post v1, rejected later: stage -> post id
        "fetch": {"id": "url-404", "created_at": now, "text": "missing #sun", "image": {"url": f"{base_url}/no.jpg"}},
        "decode": {"id": "not-an-image", "created_at": now, "image": {"b64": b64(b"definitely not a jpeg")}},
    }
    items: list = [*valid, *invalid, *after_validation.values(), valid[0], valid[1]]  # + redeliveries

    worker = worker_factory(stream_env)
    publish(stream_env, items)
    wait_for(lambda: scalar(db, "select count(*) from predictions") == len(valid), 45,
             lambda: f"{len(valid)} predictions\n{worker.tail()}", worker=worker)
    n_dead = len(invalid) + len(after_validation)
    letters = read_topic(stream_env["MOODSTREAM_KAFKA_BROKERS"], stream_env["MOODSTREAM_TOPIC_DLQ"], n_dead)
    assert worker.alive(), worker.tail()

    from storage.repository import duplicate_post_ids

    ids = {r[0] for r in rows(db, "select post_id from predictions")}
    assert ids == {p["id"] for p in valid}
    assert duplicate_post_ids(db) == []

    bodies = [json.loads(m.value) for m in letters]
    assert len(bodies) == n_dead
    by_raw = {base64.b64decode(b["raw_b64"]): b for b in bodies}
    for raw, why in invalid.items():
        assert why in by_raw[raw]["reason"], (raw, by_raw[raw])
        assert by_raw[raw]["stage"] == "validate"
        assert by_raw[raw]["topic"] == stream_env["MOODSTREAM_TOPIC_POSTS"]
    by_id = {b["post_id"]: b for b in bodies if b["post_id"]}
    assert by_id["url-404"]["stage"] == "fetch" and "404" in by_id["url-404"]["reason"]
    assert by_id["not-an-image"]["stage"] == "decode"
    assert scalar(db, "select count(*) from dead_letters") == n_dead

    # the two reposts never reached the models (cache hit or same content in the batch)
    assert scalar(db, "select count(*) from predictions where cached") >= 2
    cached_ids = {r[0] for r in rows(db, "select post_id from predictions where cached")}
    assert cached_ids & {"text-pos", "repost-1"} and cached_ids & {"both", "repost-2"}  # partitions race

    # a later repost is a cache hit
    publish(stream_env, [{"id": "repost-3", "created_at": now, "text": "i love this, WONDERFUL day! #sun"}])
    wait_for(lambda: scalar(db, "select cached from predictions where post_id = 'repost-3'"), 20,
             lambda: f"repost-3 cached\n{worker.tail()}", worker=worker)
    assert worker.metric("moodstream_cached_total") >= 1
    assert worker.metric("moodstream_dead_lettered_total") == n_dead

    preds = read_topic(stream_env["MOODSTREAM_KAFKA_BROKERS"], stream_env["MOODSTREAM_TOPIC_PREDICTIONS"],
                       len(valid) + 1)
    assert {m.key.decode() for m in preds} == {p["id"] for p in valid} | {"repost-3"}
    sentiment = {r[0]: r[1] for r in rows(db, "select post_id, sentiment from predictions")}
    assert sentiment["text-pos"] == "positive" and sentiment["text-neg"] == "negative"
