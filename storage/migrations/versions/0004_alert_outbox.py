"""The alert outbox: ``alert_deliveries``, one row per alert and sink, written with the alert in one transaction.

Revision ID: 0004_alert_outbox
Revises: 0003_summary_tables
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_alert_outbox"
down_revision: str | None = "0003_summary_tables"
branch_labels: str | None = None
depends_on: str | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_deliveries_alert_id_alerts",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("alert_id", "sink", name="uq_alert_deliveries_alert_id_sink"),
    )
    op.create_index("ix_alert_deliveries_state_next_attempt_at", "alert_deliveries", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_state_next_attempt_at", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
