"""A realistic demo database without the stack: synthetic posts with predictions written the way the worker writes
them (``storage.repository.upsert_predictions`` with trend windows and summary tables), for screenshots and tries.

The posts come from the synthetic feed (``ops.producers.synthetic``: captions, hashtags, drawn images). Each one
gets a text, an image (with faces) and a fused prediction that mostly, not always, agrees with the label it was
generated with; a calibrated confidence; ``uncertain`` below ``UNCERTAIN_BELOW``; ``conflict`` when text and image
are each confidently polar in opposite directions. A few alerts and dead letters are added, so every page of the
dashboard has something to show. Deterministic for a seed (apart from "now").
"""

from __future__ import annotations

import base64
import math
import random
from datetime import UTC, datetime, timedelta

from moodstream.labels import EMOTIONS, SENTIMENTS
from moodstream.schema import (
    DeadLetter,
    EmotionOut,
    Modalities,
    ModalityOut,
    Post,
    Prediction,
    SentimentOut,
)
from ops.producers.synthetic import SyntheticFeed

UNCERTAIN_BELOW = 0.5  # the demo's stand-in for MOODSTREAM_UNCERTAIN_BELOW
CONFLICT_MIN = 0.6  # text and image each at least this sure, in opposite directions
BATCH = 64
EMOTIONS_OF = {"positive": ("joy", "joy", "surprise"), "negative": ("anger", "sadness", "fear", "disgust"),
               "neutral": ("neutral", "neutral", "surprise")}
OPPOSITE = {"positive": "negative", "negative": "positive", "neutral": "neutral"}


def _probs(labels: tuple[str, ...], top: str, p: float, rng: random.Random) -> dict[str, float]:
    """``top`` at ``p``, the rest of the mass split at random over the other labels (``top`` stays the argmax)."""
    others = [lab for lab in labels if lab != top]
    weights = [rng.random() + 0.05 for _ in others]
    total = sum(weights)
    out = {lab: (1.0 - p) * w / total for lab, w in zip(others, weights, strict=True)}
    if max(out.values()) >= p:  # keep ``top`` the most likely label: split the rest evenly (p > 1/len(labels))
        out = dict.fromkeys(others, (1.0 - p) / len(others))
    out[top] = p
    return {lab: round(out[lab], 6) for lab in labels}


def _guess(label: str, right: float, rng: random.Random) -> str:
    return label if rng.random() < right else rng.choice([s for s in SENTIMENTS if s != label])


def _modality(label: str, right: float, rng: random.Random, faces: int | None = None) -> tuple[ModalityOut, str,
                                                                                              float]:
    said = _guess(label, right, rng)
    conf = rng.uniform(0.4, 0.97)
    emo = rng.choice(EMOTIONS_OF[said])
    out = ModalityOut(sentiment=_probs(SENTIMENTS, said, conf, rng),
                      emotion=_probs(EMOTIONS, emo, rng.uniform(0.35, 0.9), rng), faces=faces)
    return out, said, conf


def prediction_for(post: Post, label: str, rng: random.Random, processed_at: datetime) -> Prediction:
    """A plausible fused prediction of ``post`` (generated with ``label``), with its flags."""
    text = image = None
    t_said = i_said = None
    t_conf = i_conf = 0.0
    if post.text:
        text, t_said, t_conf = _modality(label, 0.82, rng)
    if post.image is not None:
        image, i_said, i_conf = _modality(label, 0.7, rng, faces=rng.choice((0, 0, 0, 1, 1, 2, 3)))
        if t_said in ("positive", "negative") and rng.random() < 0.05:  # a sarcastic caption under a photo
            i_said = OPPOSITE[t_said]
            i_conf = rng.uniform(0.6, 0.9)
            image = image.model_copy(update={"sentiment": _probs(SENTIMENTS, i_said, i_conf, rng)})
    fused_label = _guess(label, 0.9, rng)
    both = text is not None and image is not None
    conflict = bool(both and {t_said, i_said} == {"positive", "negative"} and min(t_conf, i_conf) >= CONFLICT_MIN)
    confidence = rng.uniform(0.35, 0.6) if conflict else 0.36 + 0.62 * rng.random() ** 0.7
    probs = _probs(SENTIMENTS, fused_label, round(min(confidence, 0.98), 6), rng)
    confidence = probs[fused_label]
    emotion = rng.choice(EMOTIONS_OF[fused_label])
    sentiment = SentimentOut(label=fused_label, score=round(probs["positive"] - probs["negative"], 6), probs=probs,
                             confidence=confidence)  # type: ignore[arg-type]
    return Prediction(
        post_id=post.id, model_version="demo-pack", created_at=post.created_at, processed_at=processed_at,
        sentiment=sentiment,
        emotion=EmotionOut(label=emotion, probs=_probs(EMOTIONS, emotion, rng.uniform(0.4, 0.9), rng)),  # type: ignore[arg-type]
        modalities=Modalities(text=text, image=image), fusion="concat",
        latency_ms=round(rng.lognormvariate(math.log(45), 0.35), 2),
        uncertain=confidence < UNCERTAIN_BELOW, conflict=conflict,
    )


def demo_records(minutes: float = 30.0, rate: float = 2.0, seed: int = 7, now: datetime | None = None) -> list:
    """``minutes × 60 × rate`` posts (the rate swinging ±50 % over the span), the newest a few seconds old."""
    from storage.records import PostRecord

    now = now or datetime.now(UTC)
    n = max(1, int(minutes * 60 * rate))
    rng = random.Random(seed)
    span = timedelta(minutes=minutes)
    # created_at: a swinging rate = uneven gaps, scaled to fill the span exactly
    gaps = [1.0 + 0.5 * math.sin(2 * math.pi * k / max(1, n) * 2) for k in range(n)]
    total = sum(gaps)
    out = []
    t = now - span
    for k, sp in enumerate(SyntheticFeed(n, seed=seed, id_prefix="demo").posts(now)):
        t += span * (gaps[k] / total) * 0.995
        post = Post.model_validate({**sp.post, "created_at": t.isoformat(), "author": f"user{rng.randrange(400)}",
                                    "lang": "en"})
        cached = rng.random() < 0.12
        processed = t + timedelta(seconds=rng.uniform(0.2, 1.5))
        thumb = base64.b64decode(sp.post["image"]["b64"]) if "image" in sp.post else None
        out.append(PostRecord(post=post, prediction=prediction_for(post, sp.label, rng, processed),
                              thumbnail=thumb, cached=cached))
    return out


def _dead_letters(now: datetime, rng: random.Random, count: int = 6) -> list[DeadLetter]:
    reasons = [("validate", "not valid JSON: Expecting value"), ("validate", "post has no text and no image"),
               ("fetch", "image.url scheme 'ftp' is not http, https or file"),
               ("decode", "image is not a JPEG, PNG, GIF or WebP"), ("validate", "created_at: invalid datetime")]
    out = []
    for k in range(count):
        stage, reason = reasons[k % len(reasons)]
        out.append(DeadLetter(reason=reason, stage=stage, post_id=f"bad{k}" if k % 2 else None,  # type: ignore[arg-type]
                              raw_b64=base64.b64encode(f"junk {k}".encode()).decode(), topic="posts",
                              partition=k % 4, offset=1000 + k,
                              failed_at=now - timedelta(seconds=rng.uniform(10, 1500))))
    return out


def seed_demo(url: str, minutes: float = 30.0, rate: float = 2.0, seed: int = 7, window_s: int = 60) -> int:
    """Migrate the database at ``url`` and write the demo into it (as the worker would); returns posts written."""
    from storage.engine import make_engine
    from storage.migrate import upgrade
    from storage.repository import insert_alerts, insert_dead_letters, upsert_predictions

    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    rng = random.Random(seed + 1)
    try:
        records = demo_records(minutes, rate, seed, now)
        for i in range(0, len(records), BATCH):
            upsert_predictions(engine, records[i:i + BATCH], window_s=window_s)
        alerts = []
        for k, (tag, mean, base) in enumerate((("election", -0.62, 0.05), ("cats", 0.71, 0.18),
                                               ("mondays", -0.55, -0.02))):
            start = (now - timedelta(minutes=3 + 7 * k)).replace(second=0, microsecond=0)
            alerts.append({"id": f"{tag}:{start.isoformat()}", "hashtag": tag, "window_start": start,
                           "mean_score": mean, "baseline": base, "delta": round(mean - base, 3), "volume": 18 + 3 * k,
                           "direction": "up" if mean > base else "down", "raised_at": start + timedelta(seconds=70)})
        insert_alerts(engine, alerts)
        insert_dead_letters(engine, _dead_letters(now, rng))
    finally:
        engine.dispose()
    return len(records)
