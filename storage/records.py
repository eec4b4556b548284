"""What the worker hands to storage (``PostRecord``) and how it becomes table rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moodstream.clock import as_utc
from moodstream.schema import ModalityOut, Post, Prediction

HASHTAG_MAX = 100


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A post with its prediction, ready to be stored; ``thumbnail`` is a small JPEG, ``cached`` a cache hit."""

    post: Post
    prediction: Prediction
    thumbnail: bytes | None = None
    cached: bool = False

    def __post_init__(self) -> None:
        if self.post.id != self.prediction.post_id:
            raise ValueError(f"prediction for {self.prediction.post_id!r} paired with post {self.post.id!r}")


def argmax(probs: Mapping[str, float] | None) -> str | None:
    """The label with the highest probability (first one on ties), or None for no probabilities."""
    if not probs:
        return None
    return max(probs, key=probs.__getitem__)


def _modality_labels(m: ModalityOut | None) -> tuple[str | None, str | None]:
    return (argmax(m.sentiment), argmax(m.emotion)) if m is not None else (None, None)


def fused_confidence(pr: Prediction) -> float:
    """The stored ``confidence``: the calibrated ``sentiment.confidence`` when the record has it, else the max fused
    sentiment probability (the same number for a calibrated model; old records carry only the probabilities)."""
    if pr.sentiment.confidence is not None:
        return float(pr.sentiment.confidence)
    return max(pr.sentiment.probs.values()) if pr.sentiment.probs else 0.0


def post_row(rec: PostRecord) -> dict[str, Any]:
    """The ``posts`` row of a record."""
    p = rec.post
    return {
        "id": p.id,
        "created_at": as_utc(p.created_at),
        "text": p.text,
        "author": p.author,
        "lang": p.lang,
        "source": p.source,
        "image_url": p.image.url if p.image is not None else None,
        "thumbnail": rec.thumbnail,
        "has_image": p.image is not None,
    }


def prediction_row(rec: PostRecord) -> dict[str, Any]:
    """The ``predictions`` row of a record: every column filled from the Prediction."""
    pr = rec.prediction
    text_sent, text_emo = _modality_labels(pr.modalities.text)
    image_sent, image_emo = _modality_labels(pr.modalities.image)
    image = pr.modalities.image
    return {
        "post_id": pr.post_id,
        "created_at": as_utc(pr.created_at),
        "processed_at": as_utc(pr.processed_at),
        "model_version": pr.model_version,
        "fusion": pr.fusion,
        "sentiment": pr.sentiment.label,
        "sentiment_score": pr.sentiment.score,
        "emotion": pr.emotion.label,
        "sentiment_probs": dict(pr.sentiment.probs),
        "emotion_probs": dict(pr.emotion.probs),
        "text_sentiment": text_sent,
        "text_emotion": text_emo,
        "image_sentiment": image_sent,
        "image_emotion": image_emo,
        "modalities": pr.modalities.model_dump(mode="json"),
        "faces": image.faces if image is not None else None,
        "confidence": fused_confidence(pr),
        "latency_ms": pr.latency_ms,
        "cached": rec.cached,
        "uncertain": pr.uncertain,
        "conflict": pr.conflict,
    }


def hashtag_rows(rec: PostRecord) -> list[dict[str, Any]]:
    """The ``post_hashtags`` rows of a record (lower-case, no '#', each once)."""
    tags = dict.fromkeys(t.lstrip("#").lower()[:HASHTAG_MAX] for t in rec.post.hashtags or ())
    created = as_utc(rec.post.created_at)
    return [{"post_id": rec.post.id, "hashtag": t, "created_at": created} for t in tags if t]
