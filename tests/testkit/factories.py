"""Builders of Posts, Predictions and PostRecords for the storage tests (loaded by path, not as a package)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moodstream.schema import Modalities, ModalityOut, Post, Prediction, emotion_out, sentiment_out
from storage.records import PostRecord

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
PNG_B64 = "iVBORw0KGgo="  # any valid base64 will do: storage never decodes the image

# (sentiment probs, emotion probs) patterns, cycled by post index
SENT = [(0.7, 0.2, 0.1), (0.1, 0.3, 0.6), (0.2, 0.5, 0.3), (0.05, 0.15, 0.8)]
EMO = [
    (0.5, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05),
    (0.05, 0.05, 0.05, 0.6, 0.1, 0.1, 0.05),
    (0.1, 0.1, 0.4, 0.1, 0.1, 0.1, 0.1),
    (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.7),
]


def make_post(i: int, *, text: bool = True, image: bool = False, hashtags: list[str] | None = None,
              created_at: datetime | None = None, url: bool = False) -> Post:
    """Post ``p{i:05d}``; ``hashtags=None`` lets the schema derive them from the text."""
    img = None
    if image:
        img = {"url": f"https://img.example/{i}.jpg"} if url else {"b64": PNG_B64, "mime": "image/png"}
    return Post(
        id=f"p{i:05d}",
        created_at=created_at or T0 + timedelta(seconds=17 * i),
        text=f"post number {i} #Topic{i % 3} #all" if text else None,
        image=img,
        author=f"user{i % 5}",
        lang="en",
        source="test",
        hashtags=hashtags,
    )


def make_prediction(post: Post, i: int = 0, *, model_version: str = "pack-1", latency_ms: float = 12.5,
                    faces: int | None = 2) -> Prediction:
    """A prediction whose modalities mirror what the post has (text and/or image)."""
    s, e = SENT[i % len(SENT)], EMO[i % len(EMO)]
    text_m = image_m = None
    if post.text:
        text_m = ModalityOut(sentiment=sentiment_out(s).probs, emotion=emotion_out(e).probs)
    if post.image is not None:
        image_m = ModalityOut(sentiment=sentiment_out(s[::-1]).probs, emotion=emotion_out(e[::-1]).probs,
                              faces=faces)
    return Prediction(
        post_id=post.id,
        model_version=model_version,
        created_at=post.created_at,
        processed_at=post.created_at + timedelta(seconds=3),
        sentiment=sentiment_out(s),
        emotion=emotion_out(e),
        modalities=Modalities(text=text_m, image=image_m),
        fusion="late",
        latency_ms=latency_ms,
    )


def make_record(i: int, *, thumbnail: bytes | None = None, cached: bool = False, **post_kw: object) -> PostRecord:
    post = make_post(i, **post_kw)  # type: ignore[arg-type]
    return PostRecord(post=post, prediction=make_prediction(post, i), thumbnail=thumbnail, cached=cached)


def mixed_batch(n: int = 24) -> list[PostRecord]:
    """Text-only, image-only and both-modality posts, with derived, explicit and no hashtags."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(make_record(i))  # text only, hashtags from the text
        elif kind == 1:
            out.append(make_record(i, text=False, image=True, thumbnail=b"\xff\xd8jpeg" + bytes([i])))
        elif kind == 2:
            out.append(make_record(i, image=True, url=True, hashtags=["#Sunset", "beach"]))
        else:
            out.append(make_record(i, text=True, hashtags=[], cached=True))  # no hashtags at all
    return out


def flagged(rec: PostRecord, *, uncertain: bool = False, conflict: bool = False,
            confidence: float | None = None) -> PostRecord:
    """``rec`` with the Prediction flags set (and ``sentiment.confidence``, when given)."""
    pr = rec.prediction
    update: dict[str, object] = {"uncertain": uncertain, "conflict": conflict}
    if confidence is not None:
        update["sentiment"] = pr.sentiment.model_copy(update={"confidence": confidence})
    return PostRecord(post=rec.post, prediction=pr.model_copy(update=update), thumbnail=rec.thumbnail,
                      cached=rec.cached)


def flagged_batch(n: int = 24) -> list[PostRecord]:
    """``mixed_batch(n)`` with every third post uncertain and every fourth conflicting (some are both)."""
    return [flagged(r, uncertain=i % 3 == 0, conflict=i % 4 == 2) for i, r in enumerate(mixed_batch(n))]
