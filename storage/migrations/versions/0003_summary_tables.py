"""Summary tables for the dashboard's long ranges: trend_rollups, modality_windows, pipeline_windows (backfilled).

``trend_rollups`` holds hourly and daily sums of the 60 s trend windows (global and per hashtag),
``modality_windows`` per-minute emotion counts of each modality by ``created_at``, ``pipeline_windows``
per-minute processing counts by ``processed_at``. The upgrade fills them from the stored windows and predictions
in bulk ``INSERT … SELECT`` statements (frozen SQL, so this migration never changes with the code).

Revision ID: 0003_summary_tables
Revises: 0002_covering_indexes
Create Date: 2026-05-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_summary_tables"
down_revision: str | None = "0002_covering_indexes"
branch_labels: str | None = None
depends_on: str | None = None

TZ = sa.DateTime(timezone=True)
EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")  # frozen copy
MODALITIES = {"fused": "emotion", "text": "text_emotion", "image": "image_emotion"}


def _ints(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def _epoch(col: str) -> str:
    """Whole epoch seconds of a timestamp column (what storage.sqlutil.epoch_seconds renders)."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(floor(extract(epoch FROM {col})) AS BIGINT)"
    return f"CAST(strftime('%s', {col}) AS INTEGER)"


def _time(epoch: str) -> str:
    """A timestamp value from epoch seconds, as the dialect stores DateTime."""
    if op.get_bind().dialect.name == "postgresql":
        return f"to_timestamp({epoch})"
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {epoch}, 'unixepoch')"


def _emotion_json(e: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST((emotions ->> '{e}') AS INTEGER)"
    return f"CAST(JSON_EXTRACT(emotions, '$.\"{e}\"') AS INTEGER)"


def _floor(col: str, size: int) -> str:
    return f"({_epoch(col)} - ((({_epoch(col)}) % {size}) + {size}) % {size})"


def _backfill() -> None:
    emo = [f"emo_{e}" for e in EMOTIONS]
    values = ["volume", "negative", "neutral", "positive", "score_micros", *emo]
    cols = ", ".join(["window_s", "hashtag", "window_start", *values])
    hour = _floor("window_start", 3600)
    op.execute(f"""INSERT INTO trend_rollups ({cols})
        SELECT 3600, hashtag, {_time('b')}, {', '.join(values)} FROM (
            SELECT {hour} AS b, hashtag, sum(volume) AS volume, sum(negative) AS negative, sum(neutral) AS neutral,
                   sum(positive) AS positive, sum(CAST(round(mean_score * 1000000) AS BIGINT) * volume) AS score_micros,
                   {', '.join(f'sum({_emotion_json(e)}) AS emo_{e}' for e in EMOTIONS)}
            FROM trend_windows WHERE window_s = 60 GROUP BY {hour}, hashtag) s""")
    day = _floor("window_start", 86400)
    op.execute(f"""INSERT INTO trend_rollups ({cols})
        SELECT 86400, hashtag, {_time('b')}, {', '.join(values)} FROM (
            SELECT {day} AS b, hashtag, {', '.join(f'sum({v}) AS {v}' for v in values)}
            FROM trend_rollups WHERE window_s = 3600 GROUP BY {day}, hashtag) s""")

    minute = _floor("created_at", 60)
    both = "text_sentiment IS NOT NULL AND image_sentiment IS NOT NULL"
    counts = [f"sum(CASE WHEN {col} = '{e}' THEN 1 ELSE 0 END) AS {m}_{e}"
              for m, col in MODALITIES.items() for e in EMOTIONS]
    names = [f"{m}_{e}" for m in MODALITIES for e in EMOTIONS]
    op.execute(f"""INSERT INTO modality_windows (window_start, volume, {', '.join(names)}, both_modalities,
                                                 agree_sentiment, agree_emotion)
        SELECT {_time('b')}, volume, {', '.join(names)}, both_modalities, agree_sentiment, agree_emotion FROM (
            SELECT {minute} AS b, count(*) AS volume, {', '.join(counts)},
                   sum(CASE WHEN {both} THEN 1 ELSE 0 END) AS both_modalities,
                   sum(CASE WHEN {both} AND text_sentiment = image_sentiment THEN 1 ELSE 0 END) AS agree_sentiment,
                   sum(CASE WHEN {both} AND text_emotion = image_emotion THEN 1 ELSE 0 END) AS agree_emotion
            FROM predictions GROUP BY {minute}) s""")

    minute = _floor("processed_at", 60)
    cached = "cached IS true" if op.get_bind().dialect.name == "postgresql" else "cached = 1"
    op.execute(f"""INSERT INTO pipeline_windows (window_start, model_version, fusion, processed, cached, latency_sum,
                                                 last_processed_at)
        SELECT {_time('b')}, model_version, fusion, processed, cached, latency_sum, last_processed_at FROM (
            SELECT {minute} AS b, model_version, fusion, count(*) AS processed,
                   sum(CASE WHEN {cached} THEN 1 ELSE 0 END) AS cached, sum(latency_ms) AS latency_sum,
                   max(processed_at) AS last_processed_at
            FROM predictions GROUP BY {minute}, model_version, fusion) s""")


def upgrade() -> None:
    op.create_table(
        "trend_rollups",
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("hashtag", sa.String(100), nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        *_ints("volume", "negative", "neutral", "positive"),
        sa.Column("score_micros", sa.BigInteger(), nullable=False),
        *_ints(*(f"emo_{e}" for e in EMOTIONS)),
        sa.PrimaryKeyConstraint("window_s", "hashtag", "window_start", name="pk_trend_rollups"),
    )
    op.create_index("ix_trend_rollups_window_s_window_start", "trend_rollups", ["window_s", "window_start"])
    op.create_table(
        "modality_windows",
        sa.Column("window_start", TZ, nullable=False),
        *_ints("volume", *(f"{m}_{e}" for m in MODALITIES for e in EMOTIONS), "both_modalities",
               "agree_sentiment", "agree_emotion"),
        sa.PrimaryKeyConstraint("window_start", name="pk_modality_windows"),
    )
    op.create_table(
        "pipeline_windows",
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("fusion", sa.String(32), nullable=False),
        *_ints("processed", "cached"),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("last_processed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("window_start", "model_version", "fusion", name="pk_pipeline_windows"),
    )
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_trend_rollups_window_s_window_start", table_name="trend_rollups")
    for table in ("pipeline_windows", "modality_windows", "trend_rollups"):
        op.drop_table(table)
