"""Rows built from PostRecords: every column filled, per-modality labels, UTC timestamps, hashtags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.records import PostRecord, argmax, hashtag_rows, post_row, prediction_row
from storage.tables import PostRow, PredictionRow


def test_prediction_row_fills_every_column(fx) -> None:
    row = prediction_row(fx.make_record(2, image=True, url=True))
    assert set(row) == {c.name for c in PredictionRow.__table__.columns}
    assert set(post_row(fx.make_record(2)).keys()) == {c.name for c in PostRow.__table__.columns}


def test_both_modalities(fx) -> None:
    rec = fx.make_record(1, image=True, cached=True)
    row = prediction_row(rec)
    pr = rec.prediction
    assert row["sentiment"] == pr.sentiment.label == "positive"
    assert row["sentiment_score"] == pytest.approx(0.5)
    assert row["confidence"] == pytest.approx(0.6)
    assert row["text_sentiment"] == "positive" and row["text_emotion"] == "joy"
    # the factory reverses the probabilities for the image modality
    assert row["image_sentiment"] == "negative" and row["image_emotion"] == "joy"
    assert row["faces"] == 2
    assert row["cached"] is True
    assert row["modalities"]["image"]["faces"] == 2
    assert row["sentiment_probs"] == pr.sentiment.probs and row["emotion_probs"] == pr.emotion.probs


def test_text_only_has_null_image_columns(fx) -> None:
    row = prediction_row(fx.make_record(0))
    assert row["image_sentiment"] is None and row["image_emotion"] is None and row["faces"] is None
    assert row["text_sentiment"] == "negative" and row["text_emotion"] == "anger"
    assert row["modalities"]["image"] is None


def test_image_only_has_null_text_columns(fx) -> None:
    rec = fx.make_record(3, text=False, image=True, thumbnail=b"jpg")
    row, prow = prediction_row(rec), post_row(rec)
    assert row["text_sentiment"] is None and row["text_emotion"] is None
    assert row["image_sentiment"] == "negative" and row["image_emotion"] == "anger"
    assert prow["has_image"] is True and prow["thumbnail"] == b"jpg" and prow["image_url"] is None
    assert prow["text"] is None


def test_url_image_is_kept(fx) -> None:
    prow = post_row(fx.make_record(4, image=True, url=True))
    assert prow["image_url"] == "https://img.example/4.jpg" and prow["has_image"] is True


def test_timestamps_are_stored_as_utc(fx) -> None:
    plus2 = timezone(timedelta(hours=2))
    rec = fx.make_record(0, created_at=datetime(2026, 5, 1, 14, 30, tzinfo=plus2))
    expected = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    assert post_row(rec)["created_at"] == expected and post_row(rec)["created_at"].utcoffset() == timedelta(0)
    assert prediction_row(rec)["created_at"].tzinfo == UTC
    assert all(h["created_at"] == expected for h in hashtag_rows(rec))


def test_hashtags_derived_explicit_and_deduplicated(fx) -> None:
    assert [h["hashtag"] for h in hashtag_rows(fx.make_record(5))] == ["topic2", "all"]
    rec = fx.make_record(5, hashtags=["#Sun", "sun", "SUN", "x" * 150])
    assert [h["hashtag"] for h in hashtag_rows(rec)] == ["sun", "x" * 100]
    assert hashtag_rows(fx.make_record(5, hashtags=[])) == []


def test_argmax() -> None:
    assert argmax({"a": 0.2, "b": 0.7, "c": 0.1}) == "b"
    assert argmax({"a": 0.5, "b": 0.5}) == "a"
    assert argmax({}) is None and argmax(None) is None


def test_record_rejects_mismatched_prediction(fx) -> None:
    post = fx.make_post(1)
    other = fx.make_prediction(fx.make_post(2))
    with pytest.raises(ValueError, match="p00002"):
        PostRecord(post=post, prediction=other)


def test_flags_and_calibrated_confidence(fx) -> None:
    rec = fx.make_record(1, image=True)
    row = prediction_row(rec)
    assert row["uncertain"] is False and row["conflict"] is False  # records without the flags read as false
    assert row["confidence"] == pytest.approx(max(rec.prediction.sentiment.probs.values()))
    row = prediction_row(fx.flagged(rec, uncertain=True, conflict=True, confidence=0.41))
    assert row["uncertain"] is True and row["conflict"] is True
    assert row["confidence"] == pytest.approx(0.41)  # sentiment.confidence when present, not the max probability
    old = rec.prediction.model_copy(update={"sentiment": rec.prediction.sentiment.model_copy(
        update={"confidence": None})})
    assert prediction_row(PostRecord(post=rec.post, prediction=old))["confidence"] == pytest.approx(0.6)
