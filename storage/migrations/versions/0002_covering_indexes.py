"""Covering indexes for the dashboard's range aggregates (PostgreSQL ``INCLUDE``; plain indexes on SQLite).

``predictions (created_at)`` and ``predictions (processed_at)`` gain ``INCLUDE`` columns on PostgreSQL (each is
built under a temporary name, then swapped in, so readers are blocked only for the final drop/rename), and
``post_hashtags (created_at)`` is new on both backends. On SQLite the predictions indexes stay as they are.

Revision ID: 0002_covering_indexes
Revises: 0001_initial
Create Date: 2026-05-10
"""

from __future__ import annotations

from alembic import op

revision: str = "0002_covering_indexes"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of storage.tables' INCLUDE lists (a migration must not change when the models do).
PREDICTIONS = {
    "ix_predictions_created_at": ("created_at", ["sentiment", "sentiment_score", "emotion", "text_emotion",
                                                 "image_emotion", "text_sentiment", "image_sentiment"]),
    "ix_predictions_processed_at": ("processed_at", ["latency_ms", "cached", "model_version", "fusion"]),
}


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _swap(name: str, column: str, include: list[str] | None) -> None:
    """Rebuild ``predictions`` index ``name`` on ``column`` with ``include`` (None: plain), new before old."""
    tmp = f"{name}_new"
    kw = {"postgresql_include": include} if include else {}
    op.create_index(tmp, "predictions", [column], **kw)
    op.drop_index(name, table_name="predictions")
    op.execute(f"ALTER INDEX {tmp} RENAME TO {name}")


def upgrade() -> None:
    op.create_index("ix_post_hashtags_created_at", "post_hashtags", ["created_at"],
                    postgresql_include=["hashtag", "post_id"])
    if _is_pg():
        for name, (column, include) in PREDICTIONS.items():
            _swap(name, column, include)


def downgrade() -> None:
    if _is_pg():
        for name, (column, _include) in PREDICTIONS.items():
            _swap(name, column, None)
    op.drop_index("ix_post_hashtags_created_at", table_name="post_hashtags")
