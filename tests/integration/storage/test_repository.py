"""Bulk idempotent upserts of predictions, alerts and dead letters on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from moodstream.schema import DeadLetter
from storage.repository import (
    count_predictions,
    duplicate_post_ids,
    get_prediction,
    insert_alerts,
    insert_dead_letters,
    recompute_trend_windows,
    recount_trend_windows,
    stored_trend_windows,
    upsert_predictions,
)
from storage.tables import AlertRow, DeadLetterRow, PostHashtagRow, PostRow

pytestmark = pytest.mark.integration


def _hashtags(engine, post_id: str) -> list[str]:
    t = PostHashtagRow.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(t.c.hashtag).where(t.c.post_id == post_id).order_by(t.c.hashtag)).scalars())


def test_upsert_twice_leaves_identical_rows(engine, fx, take_snapshot) -> None:
    batch = fx.mixed_batch(24)
    assert upsert_predictions(engine, batch) == 24
    recompute_trend_windows(engine, None)
    first = take_snapshot(engine)
    assert len(first["posts"]) == len(first["predictions"]) == 24
    assert len(first["post_hashtags"]) == 6 * 2 + 6 * 2  # derived (topicN, all) and explicit (sunset, beach)
    assert first["trend_windows"]

    assert upsert_predictions(engine, batch) == 24
    recompute_trend_windows(engine, [r.post.created_at for r in batch])
    assert take_snapshot(engine) == first
    assert count_predictions(engine) == 24
    assert duplicate_post_ids(engine) == []
    assert stored_trend_windows(engine) == recount_trend_windows(engine)


def test_stored_prediction_round_trip(engine, fx) -> None:
    both = fx.make_record(1, image=True, thumbnail=b"\xff\xd8x", cached=True)
    text_only = fx.make_record(4)
    img_post = fx.make_post(7, text=False, image=True, url=True)
    image_only = fx.PostRecord(post=img_post, prediction=fx.make_prediction(img_post, 7, faces=0))
    upsert_predictions(engine, [both, text_only, image_only])

    got = get_prediction(engine, both.post.id)
    pr = both.prediction
    assert got["created_at"] == pr.created_at and got["processed_at"] == pr.processed_at
    assert (got["sentiment"], got["emotion"]) == (pr.sentiment.label, pr.emotion.label)
    assert got["sentiment_score"] == pytest.approx(pr.sentiment.score)
    assert got["sentiment_probs"] == pr.sentiment.probs and got["emotion_probs"] == pr.emotion.probs
    assert got["modalities"] == pr.modalities.model_dump(mode="json")
    assert (got["text_sentiment"], got["image_sentiment"], got["faces"]) == ("positive", "negative", 2)
    assert got["confidence"] == pytest.approx(max(pr.sentiment.probs.values()))
    assert got["cached"] is True and got["model_version"] == "pack-1" and got["fusion"] == "late"
    assert got["hashtags"] == ["all", "topic1"]

    t = get_prediction(engine, text_only.post.id)
    assert t["image_sentiment"] is None and t["image_emotion"] is None and t["faces"] is None
    i = get_prediction(engine, image_only.post.id)
    assert i["text_sentiment"] is None and i["text_emotion"] is None and i["image_sentiment"] is not None
    assert i["hashtags"] == [] and i["faces"] == 0
    assert get_prediction(engine, "nope") is None

    posts = PostRow.__table__
    with engine.connect() as conn:
        row = conn.execute(select(posts).where(posts.c.id == both.post.id)).mappings().one()
    assert row["thumbnail"] == b"\xff\xd8x" and row["has_image"] is True and row["author"] == "user1"


def test_update_replaces_hashtags_and_prediction(engine, fx) -> None:
    upsert_predictions(engine, [fx.make_record(9, hashtags=["a", "b"])])
    assert _hashtags(engine, "p00009") == ["a", "b"]
    post = fx.make_post(9, hashtags=["b", "c"])
    newer = fx.make_prediction(post, 1).model_copy(update={"model_version": "pack-2"})
    upsert_predictions(engine, [fx.PostRecord(post=post, prediction=newer)])
    assert _hashtags(engine, "p00009") == ["b", "c"]
    got = get_prediction(engine, "p00009")
    assert got["model_version"] == "pack-2" and got["sentiment"] == newer.sentiment.label
    upsert_predictions(engine, [fx.make_record(9, hashtags=[])])
    assert _hashtags(engine, "p00009") == []
    assert count_predictions(engine) == 1


def test_thumbnail_kept_when_a_replay_has_none(engine, fx) -> None:
    upsert_predictions(engine, [fx.make_record(3, image=True, thumbnail=b"thumb")])
    upsert_predictions(engine, [fx.make_record(3, image=True, thumbnail=None, cached=True)])
    posts = PostRow.__table__
    with engine.connect() as conn:
        assert conn.execute(select(posts.c.thumbnail)).scalar_one() == b"thumb"
    assert get_prediction(engine, "p00003")["cached"] is True


def test_duplicate_ids_in_one_batch_keep_the_last(engine, fx) -> None:
    first = fx.make_record(5, hashtags=["old"])
    last = fx.make_record(5, hashtags=["new"])
    assert upsert_predictions(engine, [first, fx.make_record(6), last]) == 2
    assert _hashtags(engine, "p00005") == ["new"]
    assert upsert_predictions(engine, []) == 0


def test_large_batch(engine, fx) -> None:
    base = datetime(2026, 5, 2, tzinfo=UTC)
    batch = [fx.make_record(i, created_at=base + timedelta(seconds=i), image=i % 2 == 0) for i in range(2000)]
    assert upsert_predictions(engine, batch, window_s=60) == 2000
    assert upsert_predictions(engine, batch, window_s=60) == 2000
    assert count_predictions(engine) == 2000
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PostHashtagRow.__table__)).scalar() == 4000
    assert duplicate_post_ids(engine) == []
    stored = stored_trend_windows(engine)
    assert stored == recount_trend_windows(engine)
    assert sum(w["volume"] for w in stored if w["hashtag"] == "") == 2000


def _dead_letter(offset: int, post_id: str | None = None) -> DeadLetter:
    return DeadLetter(reason=f"bad #{offset}", stage="validate", post_id=post_id, raw_b64="eA==", topic="posts",
                      partition=1, offset=offset, failed_at=datetime(2026, 5, 1, tzinfo=UTC))


def test_dead_letters_idempotent_by_source_key(engine) -> None:
    assert insert_dead_letters(engine, [_dead_letter(1), _dead_letter(2, "p1"), _dead_letter(1)]) == 2
    assert insert_dead_letters(engine, [_dead_letter(2, "p1"), _dead_letter(3)]) == 1
    t = DeadLetterRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.source_key, t.c.post_id, t.c.reason).order_by(t.c.source_key)).all()
    assert [(r[0].rsplit(":", 1)[0], r[1], r[2]) for r in rows] == [
        ("posts:1:1", None, "bad #1"), ("posts:1:2", "p1", "bad #2"), ("posts:1:3", None, "bad #3")]
    assert insert_dead_letters(engine, []) == 0


def test_dead_letters_at_a_reused_offset_are_kept_apart(engine) -> None:
    """A broker that lost its log hands out offsets again: other bytes at the same offset are another letter."""
    first = _dead_letter(7)
    after_restart = first.model_copy(update={"raw_b64": "eQ==", "reason": "other bad input"})
    assert insert_dead_letters(engine, [first]) == 1
    assert insert_dead_letters(engine, [after_restart, first]) == 1  # the replay of the first is still one row
    t = DeadLetterRow.__table__
    with engine.connect() as conn:
        reasons = sorted(conn.execute(select(t.c.reason)).scalars())
    assert reasons == ["bad #7", "other bad input"]


def test_alerts_idempotent_by_id(engine) -> None:
    ws = datetime(2026, 5, 1, 12, tzinfo=UTC)
    alert = {"id": f"cats:{ws.isoformat()}", "hashtag": "cats", "window_start": ws, "mean_score": -0.5,
             "baseline": 0.2, "delta": -0.7, "volume": 12, "direction": "down", "raised_at": ws}
    assert insert_alerts(engine, [alert, alert]) == 1
    assert insert_alerts(engine, [alert, {**alert, "id": "dogs:x", "hashtag": "dogs"}]) == 1
    t = AlertRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.id)).mappings().all()
    assert [r["id"] for r in rows] == ["cats:2026-05-01T12:00:00+00:00", "dogs:x"]
    assert rows[0]["delta"] == pytest.approx(-0.7) and rows[0]["direction"] == "down"


def test_prediction_flags_round_trip(engine, fx) -> None:
    """``uncertain`` / ``conflict`` and the calibrated ``sentiment.confidence`` are stored; a record without the
    flags stores false, and a re-classification replaces them."""
    plain = fx.make_record(1, image=True)
    flagged = fx.flagged(fx.make_record(2, image=True), uncertain=True, conflict=True, confidence=0.42)
    upsert_predictions(engine, [plain, flagged], window_s=60)
    p, f = get_prediction(engine, plain.post.id), get_prediction(engine, flagged.post.id)
    assert (p["uncertain"], p["conflict"]) == (False, False)
    assert (f["uncertain"], f["conflict"]) == (True, True) and f["confidence"] == pytest.approx(0.42)
    upsert_predictions(engine, [fx.flagged(flagged, uncertain=False, conflict=True)], window_s=60)
    again = get_prediction(engine, flagged.post.id)
    assert (again["uncertain"], again["conflict"]) == (False, True)
