"""Prediction flags: ``predictions.uncertain`` and ``predictions.conflict`` (with partial indexes on ``created_at``
of the flagged rows, for the Posts page's filters); their per-minute counts in ``modality_windows``
(``uncertain``, ``conflict``).

Both flags are booleans, not null, default false: rows written before them (and old records without the flags)
read as "not uncertain, no conflict". The new ``modality_windows`` columns start at 0, which is exactly what a
recount of those rows gives, so nothing needs backfilling.

Revision ID: 0005_prediction_flags
Revises: 0003_summary_tables (to be re-chained onto 0004_alert_outbox when merged)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_prediction_flags"
down_revision: str | None = "0004_alert_outbox"
branch_labels: str | None = None
depends_on: str | None = None

FLAGS = ("uncertain", "conflict")


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        for name in FLAGS:
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
    for name in FLAGS:
        op.create_index(f"ix_predictions_{name}_created_at", "predictions", ["created_at"],
                        postgresql_where=sa.text(name), sqlite_where=sa.text(name))
    with op.batch_alter_table("modality_windows") as batch:
        for name in FLAGS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    for name in FLAGS:
        op.drop_index(f"ix_predictions_{name}_created_at", table_name="predictions")
    with op.batch_alter_table("modality_windows") as batch:
        for name in reversed(FLAGS):
            batch.drop_column(name)
    with op.batch_alter_table("predictions") as batch:
        for name in reversed(FLAGS):
            batch.drop_column(name)
