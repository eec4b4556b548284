"""Initial schema: posts, predictions, post_hashtags, trend_windows, alerts, dead_letters.

Revision ID: 0001_initial
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("author", sa.String(256), nullable=True),
        sa.Column("lang", sa.String(32), nullable=True),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("has_image", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
    )
    op.create_table(
        "predictions",
        sa.Column("post_id", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("processed_at", TZ, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("fusion", sa.String(32), nullable=False),
        sa.Column("sentiment", sa.String(16), nullable=False),
        sa.Column("sentiment_score", sa.Float(), nullable=False),
        sa.Column("emotion", sa.String(16), nullable=False),
        sa.Column("sentiment_probs", sa.JSON(), nullable=False),
        sa.Column("emotion_probs", sa.JSON(), nullable=False),
        sa.Column("text_sentiment", sa.String(16), nullable=True),
        sa.Column("text_emotion", sa.String(16), nullable=True),
        sa.Column("image_sentiment", sa.String(16), nullable=True),
        sa.Column("image_emotion", sa.String(16), nullable=True),
        sa.Column("modalities", sa.JSON(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_predictions_post_id_posts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_index("ix_predictions_processed_at", "predictions", ["processed_at"])
    op.create_index("ix_predictions_sentiment_created_at", "predictions", ["sentiment", "created_at"])

    op.create_table(
        "post_hashtags",
        sa.Column("post_id", sa.String(128), nullable=False),
        sa.Column("hashtag", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_post_hashtags_post_id_posts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "hashtag", name="pk_post_hashtags"),
    )
    op.create_index("ix_post_hashtags_hashtag_created_at", "post_hashtags", ["hashtag", "created_at"])

    op.create_table(
        "trend_windows",
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("hashtag", sa.String(100), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("neutral", sa.Integer(), nullable=False),
        sa.Column("positive", sa.Integer(), nullable=False),
        sa.Column("mean_score", sa.Float(), nullable=False),
        sa.Column("emotions", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("window_start", "hashtag", name="pk_trend_windows"),
    )
    op.create_index("ix_trend_windows_hashtag_window_start", "trend_windows", ["hashtag", "window_start"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("hashtag", sa.String(100), nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("mean_score", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source_key", sa.String(300), nullable=False),
        sa.Column("post_id", sa.String(128), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("source_key", name="uq_dead_letters_source_key"),
    )
    op.create_index("ix_dead_letters_failed_at", "dead_letters", ["failed_at"])


def downgrade() -> None:
    for index, table in (
        ("ix_dead_letters_failed_at", "dead_letters"),
        ("ix_alerts_raised_at", "alerts"),
        ("ix_trend_windows_hashtag_window_start", "trend_windows"),
        ("ix_post_hashtags_hashtag_created_at", "post_hashtags"),
        ("ix_predictions_sentiment_created_at", "predictions"),
        ("ix_predictions_processed_at", "predictions"),
        ("ix_predictions_created_at", "predictions"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("dead_letters", "alerts", "trend_windows", "post_hashtags", "predictions", "posts"):
        op.drop_table(table)
