"""SQLAlchemy 2 table definitions. One row per post in ``posts`` and one in ``predictions`` (by post id).

The schema is created and upgraded by Alembic (``storage/migrations``); these definitions are the
source the migrations were written from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Columns carried in the leaves of the covering indexes (PostgreSQL ``INCLUDE``; frozen copies in migration 0002).
CREATED_AT_INCLUDE = ["sentiment", "sentiment_score", "emotion", "text_emotion", "image_emotion", "text_sentiment",
                      "image_sentiment"]
PROCESSED_AT_INCLUDE = ["latency_ms", "cached", "model_version", "fusion"]
POST_HASHTAGS_CREATED_AT_INCLUDE = ["hashtag", "post_id"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PostRow(Base):
    """What we keep of an input post (the caption, a small thumbnail, its hashtags)."""

    __tablename__ = "posts"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(256))
    lang: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(256))
    image_url: Mapped[str | None] = mapped_column(Text)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)  # JPEG, longer side <= 256 px
    has_image: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class PredictionRow(Base):
    """One prediction per post (upserted by post id); probabilities per modality kept as JSON."""

    __tablename__ = "predictions"

    post_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    model_version: Mapped[str] = mapped_column(String(128), nullable=False)
    fusion: Mapped[str] = mapped_column(String(32), nullable=False)
    sentiment: Mapped[str] = mapped_column(String(16), nullable=False)
    sentiment_score: Mapped[float] = mapped_column(Float, nullable=False)
    emotion: Mapped[str] = mapped_column(String(16), nullable=False)
    sentiment_probs: Mapped[dict] = mapped_column(JSON, nullable=False)
    emotion_probs: Mapped[dict] = mapped_column(JSON, nullable=False)
    # Per-modality outputs; NULL when the post had no such modality.
    text_sentiment: Mapped[str | None] = mapped_column(String(16))
    text_emotion: Mapped[str | None] = mapped_column(String(16))
    image_sentiment: Mapped[str | None] = mapped_column(String(16))
    image_emotion: Mapped[str | None] = mapped_column(String(16))
    modalities: Mapped[dict] = mapped_column(JSON, nullable=False)  # Prediction.modalities as JSON
    faces: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)  # max fused sentiment probability
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    cached: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Prediction.uncertain / .conflict (migration 0005); rows written before them read as false.
    uncertain: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    conflict: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())

    __table_args__ = (
        # Covering on PostgreSQL (INCLUDE), so the dashboard's aggregates are index-only scans; plain on SQLite.
        Index("ix_predictions_created_at", "created_at", postgresql_include=CREATED_AT_INCLUDE),
        Index("ix_predictions_processed_at", "processed_at", postgresql_include=PROCESSED_AT_INCLUDE),
        Index("ix_predictions_sentiment_created_at", "sentiment", "created_at"),
        # The Posts page's "uncertain only" / "conflicting only": newest flagged posts without scanning the rest.
        Index("ix_predictions_uncertain_created_at", "created_at", postgresql_where=text("uncertain"),
              sqlite_where=text("uncertain")),
        Index("ix_predictions_conflict_created_at", "created_at", postgresql_where=text("conflict"),
              sqlite_where=text("conflict")),
    )


class PostHashtagRow(Base):
    """Post -> hashtag (lower-case, no '#'); ``created_at`` copied in so per-tag trends need one index."""

    __tablename__ = "post_hashtags"

    post_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    hashtag: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_post_hashtags_hashtag_created_at", "hashtag", "created_at"),
        Index("ix_post_hashtags_created_at", "created_at", postgresql_include=POST_HASHTAGS_CREATED_AT_INCLUDE),
    )


class TrendWindowRow(Base):
    """A closed tumbling window, global (``hashtag = ''``) or per hashtag. Written by replace, never add."""

    __tablename__ = "trend_windows"

    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hashtag: Mapped[str] = mapped_column(String(100), primary_key=True, default="")
    window_s: Mapped[int] = mapped_column(Integer, nullable=False)
    volume: Mapped[int] = mapped_column(Integer, nullable=False)
    negative: Mapped[int] = mapped_column(Integer, nullable=False)
    neutral: Mapped[int] = mapped_column(Integer, nullable=False)
    positive: Mapped[int] = mapped_column(Integer, nullable=False)
    mean_score: Mapped[float] = mapped_column(Float, nullable=False)
    emotions: Mapped[dict] = mapped_column(JSON, nullable=False)  # {emotion: count}
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_trend_windows_hashtag_window_start", "hashtag", "window_start"),)


class TrendRollupRow(Base):
    """Hourly (``window_s = 3600``) and daily (86400) sums of the stored 60 s trend windows, global and per hashtag.

    Kept equal to the sum of its windows by ``storage.rollups`` (in the transaction that replaces them).
    """

    __tablename__ = "trend_rollups"

    window_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    hashtag: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    volume: Mapped[int] = mapped_column(Integer, nullable=False)
    negative: Mapped[int] = mapped_column(Integer, nullable=False)
    neutral: Mapped[int] = mapped_column(Integer, nullable=False)
    positive: Mapped[int] = mapped_column(Integer, nullable=False)
    # Σ round(mean_score · 10⁶) · volume over the windows: their score sum in millionths, an exact integer.
    score_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    emo_anger: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_disgust: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_fear: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_joy: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_sadness: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_surprise: Mapped[int] = mapped_column(Integer, nullable=False)
    emo_neutral: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (Index("ix_trend_rollups_window_s_window_start", "window_s", "window_start"),)


class ModalityWindowRow(Base):
    """Per minute of ``created_at`` (all posts): each modality's emotion counts and text/image agreement."""

    __tablename__ = "modality_windows"

    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    volume: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_anger: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_disgust: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_fear: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_joy: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_sadness: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_surprise: Mapped[int] = mapped_column(Integer, nullable=False)
    fused_neutral: Mapped[int] = mapped_column(Integer, nullable=False)
    text_anger: Mapped[int] = mapped_column(Integer, nullable=False)
    text_disgust: Mapped[int] = mapped_column(Integer, nullable=False)
    text_fear: Mapped[int] = mapped_column(Integer, nullable=False)
    text_joy: Mapped[int] = mapped_column(Integer, nullable=False)
    text_sadness: Mapped[int] = mapped_column(Integer, nullable=False)
    text_surprise: Mapped[int] = mapped_column(Integer, nullable=False)
    text_neutral: Mapped[int] = mapped_column(Integer, nullable=False)
    image_anger: Mapped[int] = mapped_column(Integer, nullable=False)
    image_disgust: Mapped[int] = mapped_column(Integer, nullable=False)
    image_fear: Mapped[int] = mapped_column(Integer, nullable=False)
    image_joy: Mapped[int] = mapped_column(Integer, nullable=False)
    image_sadness: Mapped[int] = mapped_column(Integer, nullable=False)
    image_surprise: Mapped[int] = mapped_column(Integer, nullable=False)
    image_neutral: Mapped[int] = mapped_column(Integer, nullable=False)
    both_modalities: Mapped[int] = mapped_column(Integer, nullable=False)  # posts with text and image predictions
    agree_sentiment: Mapped[int] = mapped_column(Integer, nullable=False)
    agree_emotion: Mapped[int] = mapped_column(Integer, nullable=False)
    uncertain: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")  # posts flagged uncertain
    conflict: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")  # text and image conflict


class PipelineWindowRow(Base):
    """Per minute of ``processed_at``, model version and fusion: how many were processed, cached, how slowly."""

    __tablename__ = "pipeline_windows"

    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(128), primary_key=True)
    fusion: Mapped[str] = mapped_column(String(32), primary_key=True)
    processed: Mapped[int] = mapped_column(Integer, nullable=False)
    cached: Mapped[int] = mapped_column(Integer, nullable=False)
    latency_sum: Mapped[float] = mapped_column(Float, nullable=False)  # ms
    last_processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AlertRow(Base):
    """A sentiment-shift alert on a hashtag, with the numbers that triggered it."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # f"{hashtag}:{window_start iso}"
    hashtag: Mapped[str] = mapped_column(String(100), nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    mean_score: Mapped[float] = mapped_column(Float, nullable=False)
    baseline: Mapped[float] = mapped_column(Float, nullable=False)
    delta: Mapped[float] = mapped_column(Float, nullable=False)
    volume: Mapped[int] = mapped_column(Integer, nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)  # "up" | "down"
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_alerts_raised_at", "raised_at"),)


class AlertDeliveryRow(Base):
    """The outbox: one row per alert and sink, written in the alert's own transaction; the delivery loop
    (``streams.webhooks``) claims due rows, sends them and records the outcome (at least once)."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(200), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False)
    sink: Mapped[str] = mapped_column(String(32), nullable=False)  # "webhook"
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | retrying | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("alert_id", "sink"),
        Index("ix_alert_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )


class DeadLetterRow(Base):
    """A rejected input (also on ``posts.dlq``), kept so the dashboard can show counts and reasons."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    source_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)  # topic:part:offset:digest
    post_id: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_dead_letters_failed_at", "failed_at"),)
