"""Write side of storage: bulk, idempotent upserts of predictions, alerts and dead letters; a few reads.

Every write is one transaction of multi-row ``INSERT … ON CONFLICT`` statements (PostgreSQL and SQLite),
so a replayed batch leaves exactly the rows the first delivery left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, delete, func, select

from moodstream.clock import as_utc
from moodstream.schema import DeadLetter
from storage.engine import transaction
from storage.outbox import enqueue
from storage.records import PostRecord, hashtag_rows, post_row, prediction_row
from storage.sqlutil import chunks, insert
from storage.tables import AlertRow, DeadLetterRow, PostHashtagRow, PostRow, PredictionRow
from storage.trends import (
    TrendLock,
    TrendWindow,
    recompute_trend_windows,
    recompute_windows,
    recount_trend_windows,
    stored_trend_windows,
)

__all__ = [
    "PostRecord",
    "TrendWindow",
    "count_predictions",
    "duplicate_post_ids",
    "get_prediction",
    "insert_alerts",
    "insert_dead_letters",
    "recompute_trend_windows",
    "recount_trend_windows",
    "stored_trend_windows",
    "upsert_predictions",
]

_IDS_PER_QUERY = 1000


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str],
            keep_if_null: tuple[str, ...] = ()) -> None:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` every other column; ``keep_if_null`` columns keep old values.

    One statement compiled once and run over all rows (executemany: a single pipeline on psycopg 3, one C loop
    on SQLite); no per-statement bind-parameter limit applies.
    """
    if not rows:
        return
    stmt = insert(conn, table)
    set_ = {}
    for c in table.columns:
        if c.name in keys:
            continue
        new = stmt.excluded[c.name]
        set_[c.name] = func.coalesce(new, c) if c.name in keep_if_null else new
    conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_=set_), rows)


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> int:
    """``INSERT … ON CONFLICT (keys) DO NOTHING`` over all rows; the number of rows actually inserted."""
    if not rows:
        return 0
    stmt = insert(conn, table).on_conflict_do_nothing(index_elements=[table.c[k] for k in keys])
    result = conn.execute(stmt, rows, execution_options={"preserve_rowcount": True})
    return max(result.rowcount, 0)


def _stored_times(conn: Connection, ids: list[str]) -> tuple[list[datetime], list[datetime]]:
    """``created_at`` (post and prediction) and ``processed_at`` of the posts already stored among ``ids``:
    the trend and pipeline windows they are counted in now."""
    t, p = PostRow.__table__, PredictionRow.__table__
    created: list[datetime] = []
    processed: list[datetime] = []
    for group in chunks(ids, _IDS_PER_QUERY):
        q = (select(t.c.created_at, p.c.created_at.label("predicted_at"), p.c.processed_at)
             .select_from(t.outerjoin(p, p.c.post_id == t.c.id)).where(t.c.id.in_(list(group))))
        for row in conn.execute(q):
            created += [row.created_at] + ([row.predicted_at] if row.predicted_at is not None else [])
            processed += [row.processed_at] if row.processed_at is not None else []
    return created, processed


def _stored_hashtags(conn: Connection, ids: list[str]) -> set[str]:
    """Hashtags the posts already stored among ``ids`` carry now: their windows lose them if a replay drops them."""
    tags = PostHashtagRow.__table__
    out: set[str] = set()
    for group in chunks(ids, _IDS_PER_QUERY):
        out.update(conn.execute(select(tags.c.hashtag).where(tags.c.post_id.in_(list(group)))).scalars())
    return out


def upsert_predictions(engine: Engine, records: list[PostRecord], *, window_s: int | None = None,
                       trend_lock: TrendLock = "window") -> int:
    """Upsert posts, predictions and (replaced) hashtags of ``records`` in one transaction; return posts written.

    A post id seen twice in one batch keeps its last record. With ``window_s``, the trend windows the batch
    touches (including the old windows of posts whose timestamp moved) are recomputed in the same transaction,
    and with them the summary tables (``storage.rollups``) the dashboard reads.
    """
    latest = {rec.post.id: rec for rec in records}
    batch = [latest[i] for i in sorted(latest)]  # a fixed lock order, so concurrent batches cannot deadlock
    if not batch:
        return 0
    ids = [rec.post.id for rec in batch]
    posts = PostRow.__table__
    tags = PostHashtagRow.__table__
    with transaction(engine) as conn:
        touched, processed = _stored_times(conn, ids) if window_s else ([], [])
        old_tags = _stored_hashtags(conn, ids) if window_s else set()
        _upsert(conn, posts, [post_row(r) for r in batch], ["id"], keep_if_null=("thumbnail",))
        _upsert(conn, PredictionRow.__table__, [prediction_row(r) for r in batch], ["post_id"])
        for group in chunks(ids, _IDS_PER_QUERY):
            conn.execute(delete(tags).where(tags.c.post_id.in_(list(group))))
        _insert_ignore(conn, tags, [h for r in batch for h in hashtag_rows(r)], ["post_id", "hashtag"])
        if window_s:
            touched += [as_utc(r.prediction.created_at) for r in batch]
            processed += [as_utc(r.prediction.processed_at) for r in batch]
            new_tags = {h["hashtag"] for r in batch for h in hashtag_rows(r)}
            recompute_windows(conn, [as_utc(dt) for dt in touched], window_s, [as_utc(dt) for dt in processed],
                              lock=trend_lock, hashtags=old_tags | new_tags)
    return len(batch)


def _as_dict(item: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    return item.model_dump() if isinstance(item, BaseModel) else dict(item)


def insert_alerts(engine: Engine, alerts: Iterable[BaseModel | Mapping[str, Any]], sinks: Iterable[str] = ()) -> int:
    """Store alerts (dicts or models with ``AlertRow``'s fields); an id already stored is skipped. Returns new rows.

    For each new alert, one outbox row per sink in ``sinks`` (``storage.outbox``) is written in the same
    transaction: an alert is stored with its deliveries or not at all.
    """
    cols = {c.name for c in AlertRow.__table__.columns}
    rows: dict[str, dict[str, Any]] = {}
    for a in alerts:
        d = {k: v for k, v in _as_dict(a).items() if k in cols}
        for k in ("window_start", "raised_at"):
            d[k] = as_utc(d[k])
        rows.setdefault(d["id"], d)
    if not rows:
        return 0
    sinks = list(sinks)
    a = AlertRow.__table__
    with transaction(engine) as conn:
        new = list(rows)
        if sinks:
            stored = set(conn.execute(select(a.c.id).where(a.c.id.in_(new))).scalars())
            new = [i for i in new if i not in stored]
        inserted = _insert_ignore(conn, a, list(rows.values()), ["id"])
        if sinks and new:
            enqueue(conn, new, sinks, datetime.now(UTC))
        return inserted


def source_key(item: DeadLetter) -> str:
    """``topic:partition:offset:digest`` — where a dead letter came from and a digest of its bytes: its idempotency
    key. The digest keeps apart two messages at the same offset of a log that was lost and rebuilt (a broker
    restart), while a replay of one message still maps to one row."""
    digest = hashlib.blake2b(item.raw_b64.encode(), digest_size=8).hexdigest()
    return f"{item.topic}:{item.partition}:{item.offset}:{digest}"


def _no_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a dead letter's reason may echo input that does."""
    return text.replace("\x00", "\\x00") if text is not None else None


def insert_dead_letters(engine: Engine, items: Iterable[DeadLetter]) -> int:
    """Store dead letters; one already stored under the same ``source_key`` is skipped. Returns new rows."""
    rows: dict[str, dict[str, Any]] = {}
    for it in items:
        key = source_key(it)
        rows.setdefault(key, {"source_key": _no_nul(key), "post_id": _no_nul(it.post_id), "stage": it.stage,
                              "reason": _no_nul(it.reason), "failed_at": as_utc(it.failed_at)})
    if not rows:
        return 0
    with transaction(engine) as conn:
        return _insert_ignore(conn, DeadLetterRow.__table__, list(rows.values()), ["source_key"])


def count_predictions(engine: Engine) -> int:
    """Number of stored predictions."""
    with transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(PredictionRow.__table__)).scalar_one())


def get_prediction(engine: Engine, post_id: str) -> dict[str, Any] | None:
    """The stored prediction of ``post_id`` with its post's hashtags (``hashtags``), or None."""
    p = PredictionRow.__table__
    t = PostHashtagRow.__table__
    with transaction(engine) as conn:
        row = conn.execute(select(p).where(p.c.post_id == post_id)).mappings().first()
        if row is None:
            return None
        tags = conn.execute(select(t.c.hashtag).where(t.c.post_id == post_id).order_by(t.c.hashtag)).scalars()
        out = dict(row)
        out["hashtags"] = list(tags)
    for k in ("created_at", "processed_at"):
        out[k] = as_utc(out[k])
    return out


def duplicate_post_ids(engine: Engine) -> list[str]:
    """Post ids with more than one prediction row (always empty unless the primary key is gone)."""
    p = PredictionRow.__table__
    stmt = select(p.c.post_id).group_by(p.c.post_id).having(func.count() > 1).order_by(p.c.post_id)
    with transaction(engine) as conn:
        return list(conn.execute(stmt).scalars())
