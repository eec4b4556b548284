"""Known predictions for the dashboard and query tests (plain SQLAlchemy inserts on the real tables).

``standard_posts(now)`` is the fixture data set; tests compute what they expect from it, never hard-code
numbers the seed does not imply. Loaded by path (``load_seed()`` in the conftests), not as a package.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from moodstream.labels import EMOTIONS, SENTIMENTS
from storage.tables import AlertDeliveryRow, AlertRow, Base, DeadLetterRow, PostHashtagRow, PostRow, PredictionRow

UNCERTAIN_BELOW = 0.6  # the seed flags posts below this confidence uncertain; "both" posts whose image
# disagrees with the text (every third) carry the conflict flag
XSS_CAPTION = "<script>alert('xss')</script> [click me](javascript:alert(1)) **bold** #cats"


@dataclass
class SeedPost:
    id: str
    created_at: datetime
    sentiment: str
    emotion: str
    hashtags: list[str] = field(default_factory=list)
    text: str | None = "a caption"
    text_sentiment: str | None = None  # None: no text modality
    text_emotion: str | None = None
    image_sentiment: str | None = None  # None: no image modality
    image_emotion: str | None = None
    confidence: float = 0.8
    latency_ms: float = 20.0
    cached: bool = False
    model_version: str = "pack-1"
    thumbnail: bytes | None = None
    uncertain: bool = False  # Prediction flags (issue #14)
    conflict: bool = False

    @property
    def score(self) -> float:
        return round(_probs(SENTIMENTS, self.sentiment, self.confidence)["positive"]
                     - _probs(SENTIMENTS, self.sentiment, self.confidence)["negative"], 6)


def _probs(labels: tuple[str, ...], top: str, p: float) -> dict[str, float]:
    rest = (1.0 - p) / (len(labels) - 1)
    return {lab: round(p if lab == top else rest, 6) for lab in labels}


def tiny_jpeg(color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, format="JPEG")
    return buf.getvalue()


def standard_posts(now: datetime | None = None) -> list[SeedPost]:
    """20 posts in the last 100 minutes plus 4 older ones (26-30 h ago) for the previous period."""
    now = now or datetime.now(UTC)
    spec = [  # (sentiment, emotion, hashtags, modalities, confidence, latency, cached)
        ("positive", "joy", ["cats"], "both", 0.90, 10.0, False),
        ("positive", "joy", ["cats", "sun"], "both", 0.85, 12.0, True),
        ("positive", "surprise", ["cats"], "text", 0.70, 14.0, False),
        ("positive", "joy", ["cats"], "image", 0.60, 16.0, False),
        ("positive", "joy", ["sun"], "both", 0.95, 18.0, True),
        ("positive", "joy", ["sun"], "text", 0.55, 20.0, False),
        ("positive", "joy", [], "text", 0.65, 22.0, False),
        ("positive", "joy", ["cats"], "both", 0.75, 24.0, False),
        ("neutral", "neutral", ["cats"], "text", 0.50, 26.0, False),
        ("neutral", "neutral", ["news"], "text", 0.52, 28.0, True),
        ("neutral", "neutral", ["news"], "both", 0.58, 30.0, False),
        ("neutral", "surprise", [], "image", 0.45, 32.0, False),
        ("neutral", "neutral", [], "text", 0.60, 34.0, False),
        ("negative", "sadness", ["rain"], "both", 0.88, 36.0, False),
        ("negative", "sadness", ["rain"], "text", 0.80, 38.0, False),
        ("negative", "anger", ["rain", "news"], "both", 0.92, 40.0, True),
        ("negative", "sadness", ["rain"], "image", 0.70, 42.0, False),
        ("negative", "fear", ["rain"], "text", 0.66, 44.0, False),
        ("negative", "anger", ["news"], "text", 0.77, 46.0, False),
        ("negative", "disgust", [], "both", 0.81, 48.0, False),
    ]
    posts = []
    for i, (sent, emo, tags, mods, conf, lat, cached) in enumerate(spec):
        has_text, has_image = mods in ("both", "text"), mods in ("both", "image")
        # In "both" posts the image disagrees with the text on every third post.
        img_sent = sent if i % 3 else ("neutral" if sent != "neutral" else "positive")
        text = " ".join([f"post {i} caption", *(f"#{t}" for t in tags)]) if has_text else None
        if i == 0:
            text = XSS_CAPTION
        posts.append(SeedPost(
            id=f"p{i:02d}", created_at=now - timedelta(minutes=5 * i + 1), sentiment=sent, emotion=emo,
            hashtags=tags, text=text,
            text_sentiment=sent if has_text else None, text_emotion=emo if has_text else None,
            image_sentiment=img_sent if has_image else None, image_emotion=emo if has_image else None,
            confidence=conf, latency_ms=lat, cached=cached, thumbnail=tiny_jpeg() if has_image else None,
            uncertain=conf < UNCERTAIN_BELOW, conflict=mods == "both" and i % 3 == 0,
        ))
    for j in range(4):  # previous period (24-48 h before now): #news was busier, #old only then
        posts.append(SeedPost(
            id=f"old{j}", created_at=now - timedelta(hours=26 + j), sentiment="neutral", emotion="neutral",
            hashtags=["news", "old"] if j < 3 else ["old"], text_sentiment="neutral", text_emotion="neutral",
            model_version="pack-0",
        ))
    return posts


def _modalities(p: SeedPost) -> dict:
    out: dict = {"text": None, "image": None}
    if p.text_sentiment:
        out["text"] = {"sentiment": _probs(SENTIMENTS, p.text_sentiment, p.confidence),
                       "emotion": _probs(EMOTIONS, p.text_emotion or "neutral", p.confidence), "faces": None}
    if p.image_sentiment:
        out["image"] = {"sentiment": _probs(SENTIMENTS, p.image_sentiment, 0.6),
                        "emotion": _probs(EMOTIONS, p.image_emotion or "neutral", 0.6), "faces": 1}
    return out


def create_schema(engine: Engine) -> None:
    """The tables, through the Alembic migrations when they exist, else ``create_all``."""
    try:
        from storage.migrate import upgrade
    except ImportError:
        Base.metadata.create_all(engine)
        return
    upgrade(engine.url.render_as_string(hide_password=False))


def seed(engine: Engine, posts: list[SeedPost], now: datetime | None = None, *, extras: bool = True) -> None:
    """Insert posts, predictions and hashtags; with ``extras`` also two alerts (one delivered, one failed for good)
    and three dead letters."""
    now = now or datetime.now(UTC)
    with engine.begin() as c:
        c.execute(insert(PostRow), [
            {"id": p.id, "created_at": p.created_at, "text": p.text, "author": "tester", "lang": "en",
             "source": "seed", "image_url": None, "thumbnail": p.thumbnail, "has_image": bool(p.image_sentiment)}
            for p in posts])
        c.execute(insert(PredictionRow), [
            {"post_id": p.id, "created_at": p.created_at, "processed_at": p.created_at + timedelta(seconds=2),
             "model_version": p.model_version, "fusion": "late", "sentiment": p.sentiment,
             "sentiment_score": p.score, "emotion": p.emotion,
             "sentiment_probs": _probs(SENTIMENTS, p.sentiment, p.confidence),
             "emotion_probs": _probs(EMOTIONS, p.emotion, p.confidence),
             "text_sentiment": p.text_sentiment, "text_emotion": p.text_emotion,
             "image_sentiment": p.image_sentiment, "image_emotion": p.image_emotion,
             "modalities": _modalities(p), "faces": 1 if p.image_sentiment else None,
             "confidence": p.confidence, "latency_ms": p.latency_ms, "cached": p.cached,
             "uncertain": p.uncertain, "conflict": p.conflict}
            for p in posts])
        tags = [{"post_id": p.id, "hashtag": t, "created_at": p.created_at} for p in posts for t in p.hashtags]
        if tags:
            c.execute(insert(PostHashtagRow), tags)
        if not extras:
            return
        c.execute(insert(AlertRow), [
            {"id": f"rain:{(now - timedelta(minutes=30)).isoformat()}", "hashtag": "rain",
             "window_start": now - timedelta(minutes=31), "mean_score": -0.7, "baseline": 0.1, "delta": -0.8,
             "volume": 12, "direction": "down", "raised_at": now - timedelta(minutes=30)},
            {"id": f"cats:{(now - timedelta(minutes=10)).isoformat()}", "hashtag": "cats",
             "window_start": now - timedelta(minutes=11), "mean_score": 0.8, "baseline": 0.2, "delta": 0.6,
             "volume": 15, "direction": "up", "raised_at": now - timedelta(minutes=10)},
        ])
        c.execute(insert(AlertDeliveryRow), [
            {"alert_id": f"rain:{(now - timedelta(minutes=30)).isoformat()}", "sink": "webhook",
             "state": "failed", "attempts": 20, "next_attempt_at": now - timedelta(minutes=1),
             "last_error": "ConnectError: [Errno 111] Connection refused", "created_at": now - timedelta(minutes=30),
             "updated_at": now - timedelta(minutes=1), "delivered_at": None},
            {"alert_id": f"cats:{(now - timedelta(minutes=10)).isoformat()}", "sink": "webhook",
             "state": "delivered", "attempts": 1, "next_attempt_at": now - timedelta(minutes=10),
             "last_error": None, "created_at": now - timedelta(minutes=10),
             "updated_at": now - timedelta(minutes=10), "delivered_at": now - timedelta(minutes=10)},
        ])
        c.execute(insert(DeadLetterRow), [
            {"source_key": f"posts:0:{k}", "post_id": pid, "stage": stage, "reason": reason,
             "failed_at": now - timedelta(minutes=m)}
            for k, (pid, stage, reason, m) in enumerate([
                (None, "validate", "not valid JSON: Expecting value", 50),
                ("bad1", "validate", "post has no text and no image", 20),
                ("bad2", "fetch", "image.url scheme 'ftp' is not http, https or file", 5),
            ])
        ])


def expected_shares(posts: list[SeedPost], start: datetime, end: datetime, tags: list[str] | None = None
                    ) -> dict[str, float]:
    """Counts per sentiment, volume and mean score implied by the seed in [start, end)."""
    sel = [p for p in posts if start <= p.created_at < end and (not tags or set(tags) & set(p.hashtags))]
    out: dict[str, float] = {s: sum(p.sentiment == s for p in sel) for s in SENTIMENTS}
    out["volume"] = len(sel)
    out["mean_score"] = sum(p.score for p in sel) / len(sel) if sel else float("nan")
    return out
